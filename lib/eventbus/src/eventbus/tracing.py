"""The trace sampler both services' tracer providers get (README: Monitoring).

Production records a tenth of new traces by default: at hundreds of likes a second, recording
every request's spans costs the web worker more CPU than the like itself, and a tenth still
shows every route and every hop. The decision is parent-based: a like's trace is recorded, or
not, the same way in main's web process, main's relay headers and admin's consumer, so a sampled
like's trace continues through the broker into admin whole. Development records every trace.
The standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG variables, when set, choose instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

PRODUCTION_RATIO = 0.1


def sampler(app_env: str, environ: Mapping[str, str] = os.environ) -> Sampler | None:
    """Return the sampler for a TracerProvider; None lets the SDK read OTEL_TRACES_SAMPLER."""
    if environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    if app_env == "production":
        return ParentBased(TraceIdRatioBased(PRODUCTION_RATIO))
    return ParentBased(ALWAYS_ON)

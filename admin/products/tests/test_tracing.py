"""README: Monitoring. Production records a tenth of new traces (parent-based), development all."""

import pytest
from opentelemetry import trace

from config import tracing


@pytest.mark.parametrize(
    ("app_env", "root"),
    [("production", "TraceIdRatioBased{0.1}"), ("development", "AlwaysOnSampler")],
)
def test_the_tracer_provider_samples_as_the_environment_says(monkeypatch, settings, app_env, root):
    providers = []
    monkeypatch.setattr(trace, "set_tracer_provider", providers.append)
    monkeypatch.setattr(tracing, "_configured", False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    settings.APP_ENV = app_env
    tracing.configure_tracing("admin")
    (provider,) = providers
    assert provider.sampler.get_description().startswith(f"ParentBased{{root:{root},")

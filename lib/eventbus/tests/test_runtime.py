"""Backoff, the stop signal and the metrics port of the long-running workers."""

import signal
import threading
import time

import pytest
from eventbus.runtime import Backoff, StopSignal, database_timeouts, metrics_port, weak_secret_problems


def test_backoff_doubles_to_its_cap_and_resets():
    backoff = Backoff(0.5, 4.0, jitter=False)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_backoff_stays_at_its_cap_however_long_the_outage():
    backoff = Backoff(0.5, 5.0, jitter=False)
    assert [backoff.next() for _ in range(5000)][-1] == 5.0


def test_backoff_jitter_stays_within_a_fifth_below():
    backoff = Backoff(1.0, 1.0)
    delays = [backoff.next() for _ in range(200)]
    assert all(0.8 <= d <= 1.0 for d in delays) and len(set(delays)) > 1


def test_a_stop_wakes_a_waiting_worker_at_once():
    stop = StopSignal()
    threading.Timer(0.05, stop.request).start()
    started = time.monotonic()
    assert stop.wait(10) is True
    assert time.monotonic() - started < 2
    assert stop.requested
    stop.close()


def test_sigterm_requests_a_stop_and_restore_puts_the_handler_back():
    previous = signal.getsignal(signal.SIGTERM)
    stop = StopSignal()
    stop.install()
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested
    finally:
        stop.restore()
        stop.close()
    assert signal.getsignal(signal.SIGTERM) is previous


def test_wait_times_out_without_a_stop():
    stop = StopSignal()
    assert stop.wait(0.01) is False
    stop.close()


def test_metrics_port(monkeypatch):
    monkeypatch.delenv("METRICS_PORT", raising=False)
    assert metrics_port(9811) == 9811
    monkeypatch.setenv("METRICS_PORT", "0")
    assert metrics_port(9811) == 0


def test_database_timeouts_default_to_below_the_broker_heartbeat_and_can_be_raised():
    assert database_timeouts({}) == {"connect_timeout": 10, "read_timeout": 20, "write_timeout": 20}
    assert database_timeouts({"DATABASE_TIMEOUT_SECONDS": "600"})["write_timeout"] == 600
    for bad in ("soon", "0", "-1", "1.5"):
        with pytest.raises(ValueError, match="DATABASE_TIMEOUT_SECONDS"):
            database_timeouts({"DATABASE_TIMEOUT_SECONDS": bad})


def test_weak_secret_problems_name_the_variable_never_the_value():
    strong = "k7Hq2vR9xLmP4wZs8NcT1bYf6GdJ3aEu5oKi0rWnVyXpQeMlBhCg"  # pragma: allowlist secret
    database_url = "mysql://u:p@db/x"  # pragma: allowlist secret
    assert weak_secret_problems({"SECRET_KEY": strong, "DATABASE_URL": database_url, "EMPTY": ""}) == []

    problems = weak_secret_problems(
        {
            "SECRET_KEY": "change-me-long-random-string",  # pragma: allowlist secret
            "OTHER_KEY": "short",
            "RABBITMQ_URL": "amqp://svc:CHANGEME@mq/%2F",  # pragma: allowlist secret
            "DATABASE_URL": "mysql://u:p@db/x",  # pragma: allowlist secret
        },
        signing_keys=("SECRET_KEY", "OTHER_KEY"),
    )

    assert [problem.split()[0] for problem in problems] == ["SECRET_KEY", "OTHER_KEY", "RABBITMQ_URL"]
    assert "placeholder" in problems[0] and "too weak" in problems[1] and "placeholder" in problems[2]
    assert not any("CHANGEME" in problem or "short" in problem.split(" is ")[0] for problem in problems)
    assert weak_secret_problems({"SECRET_KEY": "ab" * 40}) != []  # long but only two different characters


def test_production_samples_a_tenth_of_new_traces_and_follows_the_parent():
    from eventbus.tracing import PRODUCTION_RATIO, sampler
    from opentelemetry.sdk.trace import TracerProvider

    assert sampler("production", {}).get_description() == (
        f"ParentBased{{root:TraceIdRatioBased{{{PRODUCTION_RATIO}}},remoteParentSampled:AlwaysOnSampler,"
        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
        "localParentNotSampled:AlwaysOffSampler}"
    )
    assert sampler("development", {}).get_description().startswith("ParentBased{root:AlwaysOnSampler,")
    # The standard variables win: the SDK reads them itself.
    assert sampler("production", {"OTEL_TRACES_SAMPLER": "always_on"}) is None

    # About a tenth of new traces are recorded (the parent rules are in the description above).
    tracer = TracerProvider(sampler=sampler("production", {})).get_tracer("t")
    recorded = sum(tracer.start_span("like").is_recording() for _ in range(5000))
    assert 350 < recorded < 650

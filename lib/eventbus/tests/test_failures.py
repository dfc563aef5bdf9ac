"""Failure headers: what a consumer records when it dead-letters a message, and how they are read back."""

import datetime as dt

import pika
from eventbus import failures


def _raise_here():
    raise KeyError("product 7 is missing")


def _caught(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the test keeps it
        return exc
    raise AssertionError("did not raise")


def test_where_names_the_innermost_frame_of_application_code():
    exc = _caught(_raise_here)
    assert failures.where(exc).endswith("test_failures:_raise_here")


def test_where_skips_the_standard_library_and_installed_packages():
    # json.loads raises deep in the standard library; the first application frame is ours.
    import json

    def parse():
        json.loads("{broken")

    exc = _caught(parse)
    assert failures.where(exc).endswith("test_failures:parse")


def test_the_fingerprint_is_stable_and_tells_causes_apart():
    first, again = _caught(_raise_here), _caught(_raise_here)
    headers = [
        failures.failure_headers(pika.BasicProperties(), reason="handler_error", queue="q", exc=e)
        for e in (first, again)
    ]
    assert headers[0][failures.FINGERPRINT] == headers[1][failures.FINGERPRINT]
    assert len(headers[0][failures.FINGERPRINT]) == 16
    other = failures.failure_headers(
        pika.BasicProperties(), reason="handler_error", queue="q", exc=ValueError("x")
    )
    assert other[failures.FINGERPRINT] != headers[0][failures.FINGERPRINT]


def test_headers_record_the_failure_and_keep_the_history_of_a_retried_message():
    exc = _caught(_raise_here)
    first = failures.failure_headers(
        pika.BasicProperties(headers={"traceparent": "00-abc"}), reason="handler_error", queue="main", exc=exc
    )
    assert first["traceparent"] == "00-abc"  # the message's own headers stay
    assert first[failures.REASON] == "handler_error"
    assert first[failures.EXCEPTION_TYPE] == "KeyError"
    assert "product 7" in first[failures.EXCEPTION_MESSAGE]
    assert first[failures.ATTEMPTS] == 1
    assert first[failures.QUEUE] == "main"
    assert first[failures.HOST]
    assert first[failures.FIRST_AT] == first[failures.LAST_AT]
    # Retried, redelivered twice by the queue, then dead-lettered again.
    again = failures.failure_headers(
        pika.BasicProperties(headers={**first, "x-delivery-count": 2}),
        reason="handler_error",
        queue="main",
        exc=exc,
    )
    assert again[failures.ATTEMPTS] == 1 + 3
    assert again[failures.FIRST_AT] == first[failures.FIRST_AT]
    assert again[failures.LAST_AT] >= first[failures.LAST_AT]


def test_a_huge_exception_message_is_cut():
    headers = failures.failure_headers(
        pika.BasicProperties(), reason="handler_error", queue="q", exc=ValueError("x" * 100_000)
    )
    assert len(headers[failures.EXCEPTION_MESSAGE]) == failures.MESSAGE_LIMIT


def test_read_gives_back_what_the_consumer_wrote():
    exc = _caught(_raise_here)
    headers = failures.failure_headers(pika.BasicProperties(), reason="handler_error", queue="main", exc=exc)
    failure = failures.read(headers)
    assert failure.source == "consumer"
    assert (failure.reason, failure.exception_type, failure.attempts) == ("handler_error", "KeyError", 1)
    assert failure.fingerprint == headers[failures.FINGERPRINT]
    assert failure.as_dict()["first_failed_at"] == headers[failures.FIRST_AT]


def test_read_recognises_the_brokers_x_death():
    at = dt.datetime(2026, 12, 6, 12, 0, 0)  # pika decodes AMQP timestamps as naive UTC
    headers = {
        "x-death": [
            {
                "reason": b"delivery_limit",
                "queue": b"main",
                "count": 1,
                "time": at,
                "exchange": b"",
                "routing-keys": [b"product.created"],
            }
        ]
    }
    failure = failures.read(headers, delivery_limit=5)
    assert failure.source == "broker"
    assert failure.reason == "delivery_limit"
    assert failure.exception_type is None
    assert failure.attempts == 6
    assert failure.last_at == "2026-12-06T12:00:00+00:00"
    assert failure.fingerprint == failures.fingerprint_of("broker", "delivery_limit", "main")
    rejected = failures.read({"x-death": [{**headers["x-death"][0], "reason": "rejected"}]})
    assert rejected.fingerprint != failure.fingerprint and rejected.attempts == 1


def test_a_later_broker_death_wins_over_an_earlier_consumer_failure():
    ours = failures.failure_headers(
        pika.BasicProperties(), reason="handler_error", queue="main", exc=ValueError("x")
    )
    ours[failures.LAST_AT] = "2026-12-06T11:00:00+00:00"
    later = {
        **ours,
        "x-death": [
            {"reason": "delivery_limit", "queue": "main", "count": 1, "time": dt.datetime(2026, 12, 6, 12, 0)}
        ],
    }
    failure = failures.read(later, delivery_limit=5)
    assert failure.source == "broker" and failure.attempts == 1 + 6
    assert failure.first_at == ours[failures.FIRST_AT]  # the history is kept
    earlier = {
        **ours,
        "x-death": [
            {"reason": "rejected", "queue": "main", "count": 1, "time": dt.datetime(2026, 12, 6, 10, 0)}
        ],
    }
    assert failures.read(earlier).source == "consumer"


def test_read_survives_garbage_headers():
    failure = failures.read({"x-death": "nonsense", failures.ATTEMPTS: "many", failures.FINGERPRINT: None})
    assert failure.source == "broker" and failure.attempts == 0
    assert failures.read(None).reason is None

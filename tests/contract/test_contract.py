"""Contract tests: what one service builds, the other parses.

Both services keep their own stdlib-only `contract.py`. These tests load both files as standalone
modules (no Django, no Flask) and prove, for every event type and schema version, that an envelope
built by the producer's `envelope(...)` is accepted by the consumer's `parse(...)` with the same
meaning, that the two sides agree on which types flow in which direction, that broken messages are
rejected with `InvalidEvent`, and that the README's event catalogue lists exactly these types.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import pathlib
import re
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN_CONTRACT = ROOT / "admin" / "messaging" / "contract.py"
MAIN_CONTRACT = ROOT / "main" / "app" / "messaging" / "contract.py"
README = ROOT / "README.md"

ADMIN_TO_MAIN = {"product.created", "product.updated", "product.deleted", "catalogue.snapshot"}
MAIN_TO_ADMIN = {"product.liked", "product.unliked", "product.likes_counted"}
ENVELOPE_KEYS = {"id", "type", "version", "occurred_at", "producer", "data"}


def _load(name: str, path: pathlib.Path):
    """Load a contract module from its file, without importing its package."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules[module.__name__].
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


admin = _load("contract_under_test_admin", ADMIN_CONTRACT)
main = _load("contract_under_test_main", MAIN_CONTRACT)


def _published(side) -> dict:
    """Return {type: {version: schema}} of what `side` publishes."""
    return side.PUBLISHES if side is admin else side.PUBLISHED


def _consumed(side) -> dict:
    """Return {type: {version: schema}} of what `side` consumes."""
    return side.CONSUMES if side is admin else side.CONSUMED


# Valid data per type, including edge values (0 counts, empty lists, unicode, empty image).
SAMPLES: dict[str, list[dict]] = {
    "product.created": [
        {"id": 1, "title": "Lamp", "image": "https://example.com/lamp.png", "version": 1},
        {"id": 987654321, "title": "Chaise longue — ünïcødé ✓", "image": "", "version": 1},
    ],
    "product.updated": [
        {"id": 7, "title": "Lamp v2", "image": "https://example.com/lamp2.png", "version": 2},
        {"id": 7, "title": "x" * 200, "image": "https://e.x/" + "i" * 480, "version": 10_000},
    ],
    "product.deleted": [{"id": 7, "version": 3}, {"id": 2**31, "version": 1}],
    "catalogue.snapshot": [
        {"ids": [1, 2, 5, 9], "max_id": 9},
        {"ids": [], "max_id": 0},
        {"ids": list(range(1, 1001)), "max_id": 1000},
    ],
    "product.liked": [
        {"product_id": 3, "likes": 1, "seq": 1},
        {"product_id": 3, "likes": 10**6, "seq": 10**6},
    ],
    "product.unliked": [{"product_id": 3, "likes": 0, "seq": 2}],
    "product.likes_counted": [
        {"product_id": 3, "likes": 0, "seq": 0},
        {"product_id": 4, "likes": 17, "seq": 40},
    ],
}

DIRECTIONS = [(admin, main, t) for t in sorted(ADMIN_TO_MAIN)] + [
    (main, admin, t) for t in sorted(MAIN_TO_ADMIN)
]
CASES = [
    pytest.param(producer, consumer, t, i, id=f"{producer.PRODUCER}->{consumer.PRODUCER}:{t}#{i}")
    for producer, consumer, t in DIRECTIONS
    for i in range(len(SAMPLES[t]))
]


def _body(envelope: dict) -> bytes:
    """Serialise an envelope the way the relay publishes it (the producer's dumps when it has one)."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _valid_envelope(producer, event_type: str) -> dict:
    return producer.envelope(event_type, copy.deepcopy(SAMPLES[event_type][0]))


# ---------------------------------------------------------------------------------------------
# Direction and version agreement
# ---------------------------------------------------------------------------------------------


def test_admin_publishes_exactly_the_types_main_consumes():
    assert set(_published(admin)) == ADMIN_TO_MAIN
    assert set(_consumed(main)) == ADMIN_TO_MAIN


def test_main_publishes_exactly_the_types_admin_consumes():
    assert set(_published(main)) == MAIN_TO_ADMIN
    assert set(_consumed(admin)) == MAIN_TO_ADMIN


@pytest.mark.parametrize(
    ("producer", "consumer"), [(admin, main), (main, admin)], ids=["admin->main", "main->admin"]
)
def test_every_published_version_is_consumed_with_the_same_fields(producer, consumer):
    published, consumed = _published(producer), _consumed(consumer)
    for event_type, versions in published.items():
        assert set(versions) <= set(consumed[event_type]), f"{event_type}: versions not consumed"
        for version, schema in versions.items():
            assert set(schema) == set(consumed[event_type][version]), (
                f"{event_type} v{version}: fields differ"
            )


def test_both_sides_name_the_types_alike_and_produce_schema_version_1():
    for name in (
        "PRODUCT_CREATED",
        "PRODUCT_UPDATED",
        "PRODUCT_DELETED",
        "CATALOGUE_SNAPSHOT",
        "PRODUCT_LIKED",
        "PRODUCT_UNLIKED",
        "PRODUCT_LIKES_COUNTED",
    ):
        assert getattr(admin, name) == getattr(main, name)
    assert admin.SCHEMA_VERSION == main.SCHEMA_VERSION == 1
    assert (admin.PRODUCER, main.PRODUCER) == ("admin", "main")


# ---------------------------------------------------------------------------------------------
# What one side builds the other side parses
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("producer", "consumer", "event_type", "index"), CASES)
def test_what_the_producer_builds_the_consumer_parses(producer, consumer, event_type, index):
    data = copy.deepcopy(SAMPLES[event_type][index])
    before = dt.datetime.now(dt.UTC)
    env = producer.envelope(event_type, data)
    after = dt.datetime.now(dt.UTC)

    assert set(env) == ENVELOPE_KEYS
    assert str(uuid.UUID(env["id"])) == env["id"] and uuid.UUID(env["id"]).version == 4
    assert (env["type"], env["version"], env["producer"]) == (event_type, 1, producer.PRODUCER)
    assert env["data"] == SAMPLES[event_type][index]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", env["occurred_at"]), env["occurred_at"]

    body = producer.dumps(env).encode("utf-8") if hasattr(producer, "dumps") else _body(env)
    event = consumer.parse(body, message_id=env["id"], amqp_type=event_type)

    assert event.id == env["id"]
    assert event.type == event_type
    assert event.version == 1
    assert event.producer == producer.PRODUCER
    assert event.data == SAMPLES[event_type][index]
    assert event.occurred_at.tzinfo is not None
    # occurred_at keeps microseconds, so it lands between the two clock reads around envelope().
    assert before - dt.timedelta(microseconds=1) <= event.occurred_at <= after + dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("producer", "consumer", "event_type"),
    DIRECTIONS,
    ids=[f"{p.PRODUCER}->{c.PRODUCER}:{t}" for p, c, t in DIRECTIONS],
)
def test_the_consumer_parses_without_amqp_properties_and_tolerates_extra_fields(
    producer, consumer, event_type
):
    env = _valid_envelope(producer, event_type)
    assert consumer.parse(_body(env)).data == env["data"]
    extended = copy.deepcopy(env)
    extended["data"]["added_in_a_later_minor_release"] = "ignored"
    extended["trace"] = {"note": "unknown envelope keys are tolerated as well"}
    parsed = consumer.parse(_body(extended), message_id=env["id"], amqp_type=event_type)
    assert {k: parsed.data[k] for k in env["data"]} == env["data"]


BOUNDARY_PRODUCTS = [
    {"title": "", "image": ""},
    {"title": "x", "image": ""},
    {"title": "x" * 200, "image": "i" * 500},
    {"title": "x" * 201, "image": "i"},
    {"title": "x", "image": "i" * 501},
    {"title": " ", "image": "not a url"},
]


@pytest.mark.parametrize("event_type", ["product.created", "product.updated"])
@pytest.mark.parametrize(
    "fields", BOUNDARY_PRODUCTS, ids=lambda f: f"title{len(f['title'])}-image{len(f['image'])}"
)
def test_admin_builds_no_product_event_that_main_would_dead_letter(event_type, fields):
    # A product event admin can build but main rejects lands in main.dlq forever: the replica drifts.
    data = {"id": 5, "version": 2, **fields}
    try:
        env = admin.envelope(event_type, data)
    except ValueError:
        return  # refused at the source: the web request fails instead of the replica drifting
    main.parse(_body(env), message_id=env["id"], amqp_type=event_type)


@pytest.mark.parametrize(
    ("producer", "consumer", "event_type"),
    DIRECTIONS,
    ids=[f"{p.PRODUCER}->{c.PRODUCER}:{t}" for p, c, t in DIRECTIONS],
)
def test_each_envelope_gets_a_fresh_id(producer, consumer, event_type):
    ids = {_valid_envelope(producer, event_type)["id"] for _ in range(50)}
    assert len(ids) == 50


# ---------------------------------------------------------------------------------------------
# Producers refuse to build what the contract does not allow
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [admin, main], ids=["admin", "main"])
def test_a_producer_refuses_types_it_does_not_publish(side):
    for event_type in sorted(_consumed(side)) + ["product.exploded"]:
        with pytest.raises(ValueError):
            side.envelope(event_type, copy.deepcopy(SAMPLES.get(event_type, [{}])[0]))


@pytest.mark.parametrize(
    ("producer", "event_type"),
    [(p, t) for p, _, t in DIRECTIONS],
    ids=[f"{p.PRODUCER}:{t}" for p, _, t in DIRECTIONS],
)
def test_a_producer_refuses_missing_or_mistyped_fields(producer, event_type):
    good = SAMPLES[event_type][0]
    for field in good:
        broken = {k: v for k, v in good.items() if k != field}
        with pytest.raises(ValueError):
            producer.envelope(event_type, broken)
        for wrong in ("7", None, True, -1, 1.5):
            if isinstance(good[field], str) and isinstance(wrong, str):
                continue
            with pytest.raises(ValueError):
                producer.envelope(event_type, {**good, field: wrong})


# ---------------------------------------------------------------------------------------------
# Consumers reject bad bodies with InvalidEvent (-> nack without requeue -> DLQ)
# ---------------------------------------------------------------------------------------------


def _mutations(env: dict):
    """Yield (label, body bytes, message_id, amqp_type) variants that break the contract."""
    event_id, event_type = env["id"], env["type"]
    yield "not JSON", b"{not json", None, None
    yield "truncated JSON", _body(env)[:-5], event_id, event_type
    yield "not UTF-8", b"\xff\xfe\x00garbage", event_id, event_type
    yield "JSON array", b"[1, 2, 3]", None, None
    yield "JSON string", b'"product.created"', None, None
    yield "empty body", b"", None, None
    for key in sorted(ENVELOPE_KEYS):
        yield f"missing {key}", _body({k: v for k, v in env.items() if k != key}), None, None
    yield "unknown type", _body({**env, "type": "product.exploded"}), None, None
    yield "type not a string", _body({**env, "type": 5}), None, None
    yield "version 99", _body({**env, "version": 99}), None, None
    yield "version as string", _body({**env, "version": "1"}), None, None
    yield "version true", _body({**env, "version": True}), None, None
    yield "id not a uuid", _body({**env, "id": "not-a-uuid"}), None, None
    yield "id a number", _body({**env, "id": 12}), None, None
    yield "message_id differs from id", _body(env), str(uuid.uuid4()), event_type
    yield "AMQP type differs from type", _body(env), event_id, "product.exploded"
    yield "occurred_at without zone", _body({**env, "occurred_at": "2026-11-22T03:00:00.123456"}), None, None
    yield "occurred_at garbage", _body({**env, "occurred_at": "yesterday"}), None, None
    yield "occurred_at a number", _body({**env, "occurred_at": 1763780400}), None, None
    # Out of range once turned to UTC: datetime raises OverflowError, not ValueError.
    yield (
        "occurred_at past year 9999 in UTC",
        _body({**env, "occurred_at": "9999-12-31T23:59:59-01:00"}),
        None,
        None,
    )
    yield (
        "occurred_at before year 1 in UTC",
        _body({**env, "occurred_at": "0001-01-01T00:00:00+01:00"}),
        None,
        None,
    )
    # Deeply nested JSON: the decoder raises RecursionError.
    yield "100,000 nested arrays", b"[" * 100_000, None, None
    yield "deeply nested data", _body({**env, "data": {}})[:-2] + b'{"x":' * 50_000, None, None
    yield "huge body", _body({**env, "data": {"x": "y" * 5_000_000}}), None, None
    yield "data not an object", _body({**env, "data": [1, 2]}), None, None
    yield "data null", _body({**env, "data": None}), None, None
    for field, value in env["data"].items():
        yield (
            f"data.{field} missing",
            _body({**env, "data": {k: v for k, v in env["data"].items() if k != field}}),
            None,
            None,
        )
        wrongs = [None, True, [value], {"v": value}]
        wrongs += ["12"] if not isinstance(value, str) else [12]
        if isinstance(value, int):
            wrongs += [-1, 1.5]
        for wrong in wrongs:
            yield f"data.{field}={wrong!r}", _body({**env, "data": {**env["data"], field: wrong}}), None, None


@pytest.mark.parametrize(
    ("producer", "consumer", "event_type"),
    DIRECTIONS,
    ids=[f"{p.PRODUCER}->{c.PRODUCER}:{t}" for p, c, t in DIRECTIONS],
)
def test_the_consumer_rejects_bad_bodies_with_invalid_event(producer, consumer, event_type):
    env = _valid_envelope(producer, event_type)
    accepted = []
    for label, body, message_id, amqp_type in _mutations(env):
        try:
            consumer.parse(body, message_id=message_id, amqp_type=amqp_type)
        except consumer.InvalidEvent as exc:
            assert exc.reason, label
            continue
        except Exception as exc:  # anything else would crash the consumer instead of dead-lettering
            accepted.append(f"{label}: raised {type(exc).__name__}: {exc}")
            continue
        accepted.append(f"{label}: accepted")
    assert not accepted, "\n".join(accepted)


@pytest.mark.parametrize("consumer", [admin, main], ids=["admin", "main"])
def test_a_consumer_rejects_the_types_it_publishes_itself(consumer):
    for event_type in sorted(_published(consumer)):
        env = consumer.envelope(event_type, copy.deepcopy(SAMPLES[event_type][0]))
        with pytest.raises(consumer.InvalidEvent):
            consumer.parse(_body(env), message_id=env["id"], amqp_type=event_type)


@pytest.mark.parametrize("consumer", [admin, main], ids=["admin", "main"])
def test_invalid_event_names_the_event_for_the_log(consumer):
    producer = main if consumer is admin else admin
    event_type = sorted(_published(producer))[0]
    env = _valid_envelope(producer, event_type)
    with pytest.raises(consumer.InvalidEvent) as caught:
        consumer.parse(_body({**env, "version": 99}), message_id=env["id"], amqp_type=event_type)
    assert (caught.value.event_id, caught.value.event_type) == (env["id"], event_type)
    with pytest.raises(consumer.InvalidEvent) as caught:
        consumer.parse(b"{oops", message_id="m-1", amqp_type="product.x")
    assert (caught.value.event_id, caught.value.event_type) == ("m-1", "product.x")


# ---------------------------------------------------------------------------------------------
# The README's event catalogue lists exactly these types
# ---------------------------------------------------------------------------------------------


def _catalogue_rows() -> list[dict[str, str]]:
    """Return the rows of the markdown table under the README heading 'Event catalogue'."""
    assert README.exists(), "README.md is missing"
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"^#{1,6}\s+.*event catalogue", line, re.IGNORECASE)),
        None,
    )
    assert start is not None, "README.md has no 'Event catalogue' section"
    table = []
    for line in lines[start + 1 :]:
        if re.match(r"^#{1,6}\s", line):
            break
        if line.strip().startswith("|"):
            table.append(line.strip())
        elif table:
            break
    assert len(table) >= 3, "the Event catalogue section has no markdown table"
    cells = [[c.strip().strip("`").strip() for c in row.strip("|").split("|")] for row in table]
    header = [h.lower() for h in cells[0]]
    for column in ("type", "version", "producer", "consumer"):
        assert column in header, f"catalogue table lacks a {column!r} column: {header}"
    return [dict(zip(header, row, strict=False)) for row in cells[2:]]


def test_readme_event_catalogue_lists_exactly_the_contract_types():
    rows = _catalogue_rows()
    listed = {(row["type"], row["version"]) for row in rows}
    expected = {
        (t, str(v)) for side in (admin, main) for t, versions in _published(side).items() for v in versions
    }
    assert listed == expected
    for row in rows:
        direction = (row["producer"].lower(), row["consumer"].lower())
        assert direction == (("admin", "main") if row["type"] in ADMIN_TO_MAIN else ("main", "admin")), row
        fields_column = next((v for k, v in row.items() if "field" in k), "")
        producer = admin if row["type"] in ADMIN_TO_MAIN else main
        for field in _published(producer)[row["type"]][int(row["version"])]:
            assert field in fields_column, f"{row['type']}: field {field} not in catalogue row"


def _rejection_codes(producer, consumer, event_type) -> dict[str, str]:
    """Return {mutation label: InvalidEvent code} for the envelope-level mutations (not data.*)."""
    codes = {}
    for label, body, message_id, amqp_type in _mutations(_valid_envelope(producer, event_type)):
        if label.startswith("data."):
            continue
        with pytest.raises(consumer.InvalidEvent) as rejected:
            consumer.parse(body, message_id=message_id, amqp_type=amqp_type)
        codes[label] = rejected.value.code
    return codes


def test_both_contracts_apply_the_same_envelope_rules():
    # The twin contract modules stay per service by design; what a body must be to be an event
    # (JSON, the envelope keys, a UUID id that matches message_id, an aware occurred_at in range,
    # version 1, a known type) must not drift between them: the same flaw, the same dead-letter code.
    main_rules = _rejection_codes(admin, main, "product.updated")
    admin_rules = _rejection_codes(main, admin, "product.liked")
    assert main_rules == admin_rules
    assert len(main_rules) >= 30 and len(set(main_rules.values())) >= 3

"""The event contract: what main builds, what it accepts and everything it refuses."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from app.messaging import contract
from tests.messaging.conftest import admin_event

PRODUCT = {"id": 7, "title": "Mug", "image": "https://img/mug.png", "version": 3}


def body(envelope):
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("event_type", sorted(contract.PUBLISHED))
def test_envelope_has_the_agreed_shape(event_type):
    env = contract.envelope(event_type, {"product_id": 5, "likes": 2, "seq": 9})

    assert set(env) == {"id", "type", "version", "occurred_at", "producer", "data"}
    assert uuid.UUID(env["id"]).version == 4
    assert env["type"] == event_type
    assert env["version"] == contract.SCHEMA_VERSION == 1
    assert env["producer"] == contract.PRODUCER == "main"
    assert env["data"] == {"product_id": 5, "likes": 2, "seq": 9}
    assert env["occurred_at"].endswith("Z")
    moment = contract.parse_timestamp(env["occurred_at"])
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5
    json.dumps(env)  # serialisable as is


def test_every_envelope_gets_a_new_id():
    data = {"product_id": 1, "likes": 0, "seq": 0}
    ids = {contract.envelope(contract.PRODUCT_LIKED, data)["id"] for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize(
    "data",
    [
        {"product_id": 0, "likes": 1, "seq": 1},
        {"product_id": -1, "likes": 1, "seq": 1},
        {"product_id": "1", "likes": 1, "seq": 1},
        {"product_id": True, "likes": 1, "seq": 1},
        {"product_id": 1, "likes": -1, "seq": 1},
        {"product_id": 1, "likes": 1.0, "seq": 1},
        {"product_id": 1, "likes": 1, "seq": -1},
        {"product_id": 1, "likes": 1},
        {},
    ],
)
def test_envelope_refuses_bad_published_data(data):
    with pytest.raises(contract.InvalidEvent) as err:
        contract.envelope(contract.PRODUCT_LIKED, data)
    assert err.value.code == "bad_data"


def test_envelope_refuses_a_type_main_does_not_publish():
    with pytest.raises(contract.InvalidEvent) as err:
        contract.envelope(contract.PRODUCT_CREATED, PRODUCT)
    assert err.value.code == "unknown_type"


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (contract.PRODUCT_CREATED, PRODUCT),
        (contract.PRODUCT_UPDATED, {**PRODUCT, "image": ""}),
        (contract.PRODUCT_UPDATED, {**PRODUCT, "title": "t" * 200, "image": "i" * 500}),
        (contract.PRODUCT_DELETED, {"id": 7, "version": 4}),
        (contract.CATALOGUE_SNAPSHOT, {"ids": [1, 2, 5], "max_id": 5}),
        (contract.CATALOGUE_SNAPSHOT, {"ids": [], "max_id": 0}),
    ],
)
def test_parse_round_trips_consumed_events(event_type, data):
    env = admin_event(event_type, data)

    event = contract.parse(body(env), env["id"], event_type)

    assert event == contract.Event(
        id=env["id"],
        type=event_type,
        version=1,
        occurred_at=datetime(2026, 11, 22, 3, 0, 0, 123456, tzinfo=UTC),
        producer="admin",
        data=data,
    )


def test_parse_accepts_offsets_and_ignores_unknown_extra_fields():
    env = admin_event(contract.PRODUCT_CREATED, {**PRODUCT, "colour": "red"})
    env["occurred_at"] = "2026-11-22T04:00:00+01:00"

    event = contract.parse(body(env))

    assert event.occurred_at == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert event.data == PRODUCT


def test_parse_without_amqp_properties_still_validates():
    env = admin_event(contract.PRODUCT_DELETED, {"id": 1, "version": 2})
    assert contract.parse(body(env)).id == env["id"]


def _bad(env_changes=None, data=None, event_type=contract.PRODUCT_CREATED, drop=None):
    env = admin_event(event_type, dict(PRODUCT) if data is None else data)
    env.update(env_changes or {})
    if drop:
        del env[drop]
    return env


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'"text"', "bad_json"),
        (body(_bad(drop="id")), "bad_envelope"),
        (body(_bad(drop="data")), "bad_envelope"),
        (body(_bad(drop="occurred_at")), "bad_envelope"),
        (body(_bad({"id": "not-a-uuid"})), "bad_envelope"),
        (body(_bad({"id": 5})), "bad_envelope"),
        (body(_bad({"version": "1"})), "bad_envelope"),
        (body(_bad({"producer": ""})), "bad_envelope"),
        (body(_bad({"producer": "main"})), "bad_envelope"),
        (body(_bad({"occurred_at": "yesterday"})), "bad_envelope"),
        (body(_bad({"occurred_at": "2026-11-22T03:00:00"})), "bad_envelope"),
        (body(_bad({"type": "product.exploded"})), "unknown_type"),
        (
            body(
                _bad(
                    {"type": contract.PRODUCT_LIKED},
                    {"product_id": 1, "likes": 1, "seq": 1},
                )
            ),
            "unknown_type",
        ),
        (body(_bad({"version": 2})), "unsupported_version"),
        (body(_bad(data={**PRODUCT, "id": 0})), "bad_data"),
        (body(_bad(data={**PRODUCT, "id": "7"})), "bad_data"),
        (body(_bad(data={**PRODUCT, "title": ""})), "bad_data"),
        (body(_bad(data={**PRODUCT, "title": "t" * 201})), "bad_data"),
        (body(_bad(data={**PRODUCT, "title": None})), "bad_data"),
        (body(_bad(data={**PRODUCT, "image": "i" * 501})), "bad_data"),
        (body(_bad(data={**PRODUCT, "image": 3})), "bad_data"),
        (body(_bad(data={**PRODUCT, "version": 0})), "bad_data"),
        (body(_bad(data={"id": 7, "title": "x", "image": ""})), "bad_data"),
        (body(_bad(data=[1])), "bad_data"),
        (body(_bad(data={"id": 7}, event_type=contract.PRODUCT_DELETED)), "bad_data"),
        (
            body(
                _bad(
                    data={"ids": [1, "2"], "max_id": 2},
                    event_type=contract.CATALOGUE_SNAPSHOT,
                )
            ),
            "bad_data",
        ),
        (
            body(
                _bad(
                    data={"ids": [0], "max_id": 2},
                    event_type=contract.CATALOGUE_SNAPSHOT,
                )
            ),
            "bad_data",
        ),
        (
            body(
                _bad(
                    data={"ids": {"1": 1}, "max_id": 2},
                    event_type=contract.CATALOGUE_SNAPSHOT,
                )
            ),
            "bad_data",
        ),
        (
            body(
                _bad(
                    data={"ids": [1], "max_id": -1},
                    event_type=contract.CATALOGUE_SNAPSHOT,
                )
            ),
            "bad_data",
        ),
    ],
)
def test_parse_rejects_broken_events(raw, code):
    with pytest.raises(contract.InvalidEvent) as err:
        contract.parse(raw)
    assert err.value.code == code
    assert err.value.reason


def test_parse_rejects_a_message_id_that_is_not_the_envelope_id():
    env = admin_event(contract.PRODUCT_CREATED, PRODUCT)
    with pytest.raises(contract.InvalidEvent) as err:
        contract.parse(body(env), str(uuid.uuid4()), contract.PRODUCT_CREATED)
    assert err.value.code == "mismatch"
    assert err.value.event_id == env["id"]
    assert err.value.event_type == contract.PRODUCT_CREATED


def test_parse_rejects_an_amqp_type_that_is_not_the_envelope_type():
    env = admin_event(contract.PRODUCT_CREATED, PRODUCT)
    with pytest.raises(contract.InvalidEvent) as err:
        contract.parse(body(env), env["id"], contract.PRODUCT_DELETED)
    assert err.value.code == "mismatch"


def test_rejection_carries_the_ids_it_could_read():
    with pytest.raises(contract.InvalidEvent) as err:
        contract.parse(b"{", "abc", "product.created")
    assert (err.value.event_id, err.value.event_type) == ("abc", "product.created")


def test_tables_describe_both_directions():
    assert set(contract.PUBLISHED) == {
        "product.liked",
        "product.unliked",
        "product.likes_counted",
    }
    assert set(contract.CONSUMED) == {
        "product.created",
        "product.updated",
        "product.deleted",
        "catalogue.snapshot",
    }
    # Version 2 (force) exists for the state events a resync sends, nowhere else.
    assert {t: set(v) for t, v in {**contract.PUBLISHED, **contract.CONSUMED}.items() if set(v) != {1}} == {
        "product.likes_counted": {1, 2},
        "product.updated": {1, 2},
    }

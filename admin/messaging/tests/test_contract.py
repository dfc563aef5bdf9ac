"""Admin's contract: what it builds is valid, what it parses is strictly checked."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from messaging import contract
from messaging.contract import InvalidEvent


def likes_body(**overrides) -> dict:
    doc = {
        "id": str(uuid.uuid4()),
        "type": "product.liked",
        "version": 1,
        "occurred_at": "2026-11-22T03:00:00.123456Z",
        "producer": "main",
        "data": {"product_id": 7, "likes": 3, "seq": 4},
    }
    doc.update(overrides)
    return doc


def encode(doc) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (
            "product.created",
            {"id": 1, "title": "Mug", "image": "https://x/m.png", "version": 1},
        ),
        ("product.updated", {"id": 1, "title": "Mug", "image": "", "version": 2}),
        ("product.deleted", {"id": 1, "version": 3}),
        ("catalogue.snapshot", {"ids": [1, 2], "max_id": 2}),
        ("catalogue.snapshot", {"ids": [], "max_id": 0}),
    ],
)
def test_envelope_builds_a_complete_envelope_for_each_published_type(event_type, data):
    env = contract.envelope(event_type, data)
    assert env["type"] == event_type
    assert env["version"] == contract.SCHEMA_VERSION == 1
    assert env["producer"] == contract.PRODUCER == "admin"
    assert env["data"] == data
    assert uuid.UUID(env["id"]).version == 4
    assert env["occurred_at"].endswith("Z")
    parsed = dt.datetime.fromisoformat(env["occurred_at"])
    assert abs((dt.datetime.now(dt.UTC) - parsed).total_seconds()) < 5
    assert json.loads(contract.dumps(env)) == env


def test_envelope_makes_a_new_id_each_time():
    data = {"id": 1, "version": 2}
    assert (
        contract.envelope("product.deleted", data)["id"] != contract.envelope("product.deleted", data)["id"]
    )


@pytest.mark.parametrize(
    ("event_type", "data", "code"),
    [
        ("product.liked", {"product_id": 1, "likes": 0, "seq": 0}, "unknown_type"),
        ("nope", {}, "unknown_type"),
        ("product.created", {"id": 1, "title": "Mug", "image": "i"}, "bad_data"),
        (
            "product.created",
            {"id": 0, "title": "Mug", "image": "i", "version": 1},
            "bad_data",
        ),
        (
            "product.created",
            {"id": True, "title": "Mug", "image": "i", "version": 1},
            "bad_data",
        ),
        (
            "product.created",
            {"id": 1, "title": "", "image": "i", "version": 1},
            "bad_data",
        ),
        (
            "product.created",
            {"id": 1, "title": "t" * 201, "image": "i", "version": 1},
            "bad_data",
        ),
        (
            "product.created",
            {"id": 1, "title": 5, "image": "i", "version": 1},
            "bad_data",
        ),
        (
            "product.created",
            {"id": 1, "title": "t", "image": "i", "version": 0},
            "bad_data",
        ),
        (
            "product.created",
            {"id": 1, "title": "t", "image": "i", "version": 1, "x": 1},
            "bad_data",
        ),
        ("product.deleted", {"id": "1", "version": 1}, "bad_data"),
        ("catalogue.snapshot", {"ids": [1, 0], "max_id": 1}, "bad_data"),
        ("catalogue.snapshot", {"ids": "1,2", "max_id": 2}, "bad_data"),
        ("catalogue.snapshot", {"ids": [1], "max_id": -1}, "bad_data"),
    ],
)
def test_envelope_refuses_what_admin_must_not_publish(event_type, data, code):
    with pytest.raises(InvalidEvent) as info:
        contract.envelope(event_type, data)
    assert info.value.code == code


@pytest.mark.parametrize("event_type", sorted(contract.CONSUMED))
def test_parse_round_trips_every_consumed_type(event_type):
    doc = likes_body(type=event_type, data={"product_id": 5, "likes": 0, "seq": 0})
    event = contract.parse(encode(doc), doc["id"], event_type)
    assert event == contract.Event(
        id=doc["id"],
        type=event_type,
        version=1,
        occurred_at=dt.datetime(2026, 11, 22, 3, 0, 0, 123456, tzinfo=dt.UTC),
        producer="main",
        data={"product_id": 5, "likes": 0, "seq": 0},
    )


def test_parse_is_frozen_and_drops_unknown_extra_fields():
    doc = likes_body(data={"product_id": 1, "likes": 2, "seq": 3, "added_later": "x"})
    event = contract.parse(encode(doc))
    assert event.data == {"product_id": 1, "likes": 2, "seq": 3}
    with pytest.raises(AttributeError):
        event.type = "x"


def test_parse_accepts_an_offset_and_normalises_to_utc():
    event = contract.parse(encode(likes_body(occurred_at="2026-11-22T05:00:00+02:00")))
    assert event.occurred_at == dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)


GOOD_ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("body", "message_id", "amqp_type", "code"),
    [
        (b"{not json", None, None, "bad_json"),
        (b"\xff\xfe", None, None, "bad_json"),
        (b"[1, 2]", None, None, "bad_json"),
        (encode({"id": GOOD_ID}), None, None, "bad_envelope"),
        (encode(likes_body(id="not-a-uuid")), None, None, "bad_envelope"),
        (encode(likes_body(id=12)), None, None, "bad_envelope"),
        (encode(likes_body(id=GOOD_ID)), str(uuid.uuid4()), None, "mismatch"),
        (encode(likes_body(id=GOOD_ID)), GOOD_ID, "product.unliked", "mismatch"),
        (encode(likes_body(type="product.exploded")), None, None, "unknown_type"),
        (encode(likes_body(type="product.created")), None, None, "unknown_type"),
        (encode(likes_body(type=7)), None, None, "bad_envelope"),
        (encode(likes_body(version=2)), None, None, "unsupported_version"),
        (encode(likes_body(version="1")), None, None, "bad_envelope"),
        (encode(likes_body(version=True)), None, None, "bad_envelope"),
        (encode(likes_body(occurred_at="yesterday")), None, None, "bad_envelope"),
        (
            encode(likes_body(occurred_at="2026-11-22T03:00:00")),
            None,
            None,
            "bad_envelope",
        ),
        (encode(likes_body(occurred_at=12)), None, None, "bad_envelope"),
        (encode(likes_body(producer="admin")), None, None, "bad_envelope"),
        (encode(likes_body(data=[])), None, None, "bad_data"),
        (
            encode(likes_body(data={"product_id": 1, "likes": 1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": 0, "likes": 1, "seq": 1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": 1, "likes": -1, "seq": 1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": 1, "likes": 1, "seq": -1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": True, "likes": 1, "seq": 1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": 1, "likes": False, "seq": 1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": 1, "likes": 1.0, "seq": 1})),
            None,
            None,
            "bad_data",
        ),
        (
            encode(likes_body(data={"product_id": "1", "likes": 1, "seq": 1})),
            None,
            None,
            "bad_data",
        ),
    ],
)
def test_parse_rejects_what_can_never_be_applied(body, message_id, amqp_type, code):
    with pytest.raises(InvalidEvent) as info:
        contract.parse(body, message_id, amqp_type)
    assert info.value.code == code
    assert info.value.reason


def test_rejection_names_the_event_id_and_type_for_the_log():
    doc = likes_body(data={"product_id": 1})
    with pytest.raises(InvalidEvent) as info:
        contract.parse(encode(doc), doc["id"], doc["type"])
    assert (info.value.event_id, info.value.event_type) == (doc["id"], "product.liked")


def test_rejection_of_unparsable_body_falls_back_to_the_amqp_properties():
    with pytest.raises(InvalidEvent) as info:
        contract.parse(b"nope", "m-1", "product.liked")
    assert (info.value.event_id, info.value.event_type) == ("m-1", "product.liked")


def test_published_and_consumed_types_do_not_overlap():
    assert set(contract.PUBLISHED).isdisjoint(contract.CONSUMED)
    assert contract.PUBLISHES is contract.PUBLISHED and contract.CONSUMES is contract.CONSUMED

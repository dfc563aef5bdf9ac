"""dev/pin_images.py rewrites every third-party image reference to tag@digest, and only those."""

from __future__ import annotations

import hashlib

from dev import pin_images


def fake_digest(name: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{name}:{tag}".encode()).hexdigest()


COMPOSE = """services:
  redis:
    image: redis:7.4.1-alpine
  admin:
    image: ${IMAGE_REGISTRY:-microservices}/admin:${IMAGE_TAG:?set IMAGE_TAG}
  grafana:
    image: grafana/grafana:11.3.0
"""
DOCKERFILE = """ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
FROM nginxinc/nginx-unprivileged:1.28-alpine
"""


def test_every_third_party_reference_gets_its_digest_and_keeps_its_tag():
    pinned = pin_images.pin(COMPOSE, fake_digest)
    assert f"image: redis:7.4.1-alpine@{fake_digest('redis', '7.4.1-alpine')}" in pinned
    assert f"image: grafana/grafana:11.3.0@{fake_digest('grafana/grafana', '11.3.0')}" in pinned
    assert (
        "image: ${IMAGE_REGISTRY:-microservices}/admin:${IMAGE_TAG:?set IMAGE_TAG}" in pinned
    )  # ours: untouched
    assert pin_images.unpinned(COMPOSE) == ["redis:7.4.1-alpine", "grafana/grafana:11.3.0"]
    assert pin_images.unpinned(pinned) == []

    dockerfile = pin_images.pin(DOCKERFILE, fake_digest)
    assert (
        f"ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm@{fake_digest('python', '3.11.11-slim-bookworm')}"
        in dockerfile
    )
    assert "FROM ${PYTHON_IMAGE} AS build" in dockerfile
    assert (
        f"FROM nginxinc/nginx-unprivileged:1.28-alpine@{fake_digest('nginxinc/nginx-unprivileged', '1.28-alpine')}"
        in dockerfile
    )


def test_pinning_again_moves_the_digest_to_what_the_tag_names_now():
    once = pin_images.pin(COMPOSE, fake_digest)
    again = pin_images.pin(once, lambda name, tag: "sha256:" + "0" * 64)
    assert "image: redis:7.4.1-alpine@sha256:" + "0" * 64 in again
    assert again.count("@sha256:") == 2


def test_the_script_sees_every_third_party_image_of_the_repository():
    import re

    for path in pin_images.FILES:
        text = path.read_text()
        expected = [
            line
            for line in text.splitlines()
            if re.match(r"\s*(image:|FROM\s|ARG PYTHON_IMAGE=)", line) and "${" not in line
        ]
        seen = list(pin_images.REFERENCE.finditer(text))
        assert len(seen) == len(expected), f"{path.name}: the script would miss {expected}"
    assert len(seen) >= 2  # frontend/Dockerfile: node and nginx

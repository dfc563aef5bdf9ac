"""Scrapes and probes come by IP address; only the operations endpoints accept any Host."""

import pytest

from config.hosts import accepted_host

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        ([], "localhost"),
        (["*"], "localhost"),
        ([".example.com"], "example.com"),
        (["admin.example.com"], "admin.example.com"),
    ],
)
def test_accepted_host(allowed, expected):
    assert accepted_host(allowed) == expected


def test_prometheus_scrapes_by_address_while_other_paths_keep_the_host_check(client, settings):
    settings.ALLOWED_HOSTS = ["admin.example.com"]
    by_ip = {"HTTP_HOST": "172.18.0.7:8000"}
    assert client.get("/metrics", **by_ip).status_code == 200
    assert client.get("/api/health", **by_ip).status_code == 200
    assert client.get("/api/products", **by_ip).status_code == 400
    assert client.get("/metrics/", **by_ip).status_code == 400
    assert client.get("/api/products", HTTP_HOST="admin.example.com").status_code != 400

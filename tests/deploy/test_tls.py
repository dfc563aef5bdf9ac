"""RABBITMQ_URL=amqps:// works end to end and refuses certificates it cannot verify.

A throwaway CA signs a server certificate for the name "localhost" only (no IP address in it), and
a RabbitMQ node serves AMQP over TLS with it. Then:
- both services' own connection code (``connection_parameters`` + ``declare_*``) publishes and
  consumes over amqps://localhost with RABBITMQ_CA_FILE pointing at that CA;
- the six real processes of both services run with that URL and CA: a product created in admin
  reaches main and a like reaches admin, and every connection the broker sees is a TLS one;
- with a CA that did not sign the certificate, or with a host name the certificate does not name
  (amqps://127.0.0.1), both services refuse to connect.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pika
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from faults.support import AdminApi, Shop

from harness.pki import make_ca, make_server_cert, pem_key
from harness.polling import eventually
from harness.servers import MariaDB, RabbitNode, free_port
from harness.services import ADMIN_DIR, MAIN_DIR, ServiceSet

logger = logging.getLogger(__name__)

# ----- throwaway PKI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """Files of the throwaway PKI: the trusted CA, an unrelated CA, and the server's cert and key."""

    ca: Path
    untrusted_ca: Path
    server_cert: Path
    server_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Write a CA, an unrelated CA and a server certificate for "localhost" (DNS name only)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = make_ca("Throwaway test CA")
    _, other_ca_cert = make_ca("Some other CA")
    # Only the DNS name: connecting to 127.0.0.1 must then fail the host name check.
    server_key, server_cert = make_server_cert(ca_key, ca_cert, ["localhost"])
    files = Pki(d / "ca.pem", d / "untrusted-ca.pem", d / "server.pem", d / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.untrusted_ca.write_bytes(other_ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(pem_key(server_key))
    files.server_key.chmod(0o600)
    return files


def test_the_throwaway_certificate_verifies_against_its_ca_only(pki: Pki) -> None:
    # Guards the fixture itself: a test of refusals proves nothing if the good path were broken too.
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    cert.verify_directly_issued_by(ca)
    other = x509.load_pem_x509_certificate(pki.untrusted_ca.read_bytes())
    with pytest.raises(ValueError):
        cert.verify_directly_issued_by(other)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == []


# ----- a RabbitMQ node with a TLS listener -------------------------------------------------------------


class TlsRabbitNode(RabbitNode):
    """A RabbitNode that also listens for AMQP over TLS (amqps) on ssl_port with the given cert."""

    def __init__(self, pki: Pki, **kw) -> None:
        # Set before super().__init__, which writes the config.
        self.pki = pki
        self.ssl_port = free_port()
        super().__init__(**kw)

    def _write_config(self) -> None:
        super()._write_config()
        with open(self.dir / "rabbitmq.conf", "a") as conf:
            conf.write(
                f"listeners.ssl.default = 127.0.0.1:{self.ssl_port}\n"
                f"ssl_options.cacertfile = {self.pki.ca}\n"
                f"ssl_options.certfile = {self.pki.server_cert}\n"
                f"ssl_options.keyfile = {self.pki.server_key}\n"
                # Clients are not asked for certificates: users authenticate with passwords.
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )

    def amqps_url(self, host: str = "localhost") -> str:
        """Return the amqps:// URL of the TLS listener (guest, default vhost) with the given host name."""
        return f"amqps://guest:guest@{host}:{self.ssl_port}/%2F"  # pragma: allowlist secret


@pytest.fixture(scope="module")
def tls_rabbit(pki: Pki) -> Iterator[TlsRabbitNode]:
    """Return a running throwaway RabbitMQ node with a TLS listener (stopped after the module)."""
    node = TlsRabbitNode(pki)
    try:
        node.start()
        yield node
    finally:
        node.cleanup()


# ----- the services' own connection code ---------------------------------------------------------------


def _load(name: str, path: Path) -> ModuleType:
    # admin's `messaging` and main's `app.messaging` are different packages; load each topology
    # module by file under its own name (they import only pika, ssl, os and, lazily, Django).
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOPOLOGIES = {
    "admin": _load("tls_test_admin_topology", ADMIN_DIR / "messaging" / "topology.py"),
    "main": _load("tls_test_main_topology", MAIN_DIR / "app" / "messaging" / "topology.py"),
}


def _params(service: str, url: str, ca_file: Path) -> pika.URLParameters:
    return TOPOLOGIES[service].connection_parameters(url, str(ca_file), client_name=f"tls-test-{service}")


def _consume_one(channel, queue: str, timeout: float = 10) -> tuple[object, bytes]:
    for method, props, body in channel.consume(queue, inactivity_timeout=timeout):
        assert method is not None, f"nothing arrived on {queue} within {timeout}s"
        channel.basic_ack(method.delivery_tag)
        channel.cancel()
        return props, body
    raise AssertionError("consume generator ended")  # pragma: no cover - consume() never ends first


@pytest.mark.parametrize(("publisher", "consumer"), [("admin", "main"), ("main", "admin")])
def test_each_service_publishes_and_consumes_over_amqps(
    tls_rabbit: TlsRabbitNode, pki: Pki, publisher: str, consumer: str
) -> None:
    url = tls_rabbit.amqps_url("localhost")
    pub_topology, sub_topology = TOPOLOGIES[publisher], TOPOLOGIES[consumer]
    params = _params(publisher, url, pki.ca)
    assert params.ssl_options is not None
    assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert params.ssl_options.context.check_hostname is True

    with pika.BlockingConnection(_params(consumer, url, pki.ca)) as sub_conn:
        sub = sub_conn.channel()
        pub_topology.TOPOLOGY.declare_publisher(sub)  # the consumer only looks the publisher's exchange up
        sub_topology.TOPOLOGY.declare_all(sub)
        sub.queue_purge(sub_topology.TOPOLOGY.queue)
        with pika.BlockingConnection(params) as pub_conn:
            pub = pub_conn.channel()
            pub.confirm_delivery()
            pub_topology.TOPOLOGY.declare_all(pub)
            event_id = str(uuid.uuid4())
            body = json.dumps({"id": event_id, "type": "product.updated", "producer": publisher})
            pub.basic_publish(
                pub_topology.TOPOLOGY.events_exchange,
                "product.updated",
                body.encode(),
                pika.BasicProperties(message_id=event_id, delivery_mode=2, content_type="application/json"),
                mandatory=True,
            )
        props, received = _consume_one(sub, sub_topology.TOPOLOGY.queue)
    assert props.message_id == event_id
    assert json.loads(received)["producer"] == publisher


def _refusal(service: str, url: str, ca_file: Path | str) -> str:
    """Connect with the service's parameters, expect a certificate verification error, return its reason."""
    params = TOPOLOGIES[service].connection_parameters(url, str(ca_file))
    # pika re-raises the handshake's own exception: the SSL error, not a generic AMQP one.
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        pika.BlockingConnection(params).close()
    return info.value.verify_message


@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_certificate_from_an_untrusted_ca_is_refused(
    tls_rabbit: TlsRabbitNode, pki: Pki, service: str
) -> None:
    reason = _refusal(service, tls_rabbit.amqps_url("localhost"), pki.untrusted_ca)
    # The broker sends its CA along; the client does not trust it.
    assert reason == "self-signed certificate in certificate chain"


@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_certificate_for_another_host_name_is_refused(
    tls_rabbit: TlsRabbitNode, pki: Pki, service: str
) -> None:
    # Same trusted CA and same listener; only the name differs from the one in the certificate.
    reason = _refusal(service, tls_rabbit.amqps_url("127.0.0.1"), pki.ca)
    assert reason.startswith("IP address mismatch"), reason


@pytest.mark.parametrize("service", ["admin", "main"])
def test_without_a_ca_file_the_private_ca_is_not_trusted(tls_rabbit: TlsRabbitNode, service: str) -> None:
    # RABBITMQ_CA_FILE unset = the system CAs, which do not include the throwaway CA.
    reason = _refusal(service, tls_rabbit.amqps_url("localhost"), "")
    assert reason == "self-signed certificate in certificate chain"


# ----- the six real processes over amqps -------------------------------------------------------------------


def _tls_flags(node: RabbitNode) -> list[tuple[str, str]]:
    res = node.ctl("list_connections", "client_properties", "ssl", "--formatter", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout or "[]")
    out = []
    for row in rows:
        props = row.get("client_properties") or []
        # The JSON formatter renders client_properties as [[key, type, value], ...].
        name = next((p[2] for p in props if isinstance(p, list) and p[0] == "connection_name"), "")
        out.append((str(name), str(row.get("ssl")).lower()))
    return out


def test_both_services_sync_over_amqps(
    tls_rabbit: TlsRabbitNode, pki: Pki, mariadb: MariaDB, tmp_path: Path
) -> None:
    # Own databases on the session MariaDB: the session stack's data stays out of this test.
    # (Not SQLite: with four processes writing, admin's SQLite setup answers "database is locked".)
    services = ServiceSet(
        tls_rabbit.amqps_url("localhost"),
        mariadb.create_db_user("tls_admin_db", "tls_admin_user", "tls-admin-test-pw"),
        mariadb.create_db_user("tls_main_db", "tls_main_user", "tls-main-test-pw"),
        log_dir=tmp_path / "logs",
        web_concurrency=1,
        extra_env={"RABBITMQ_CA_FILE": str(pki.ca)},
    )
    try:
        services.start()
        admin = AdminApi(services.admin_url)
        shop = Shop(services.main_url)
        try:
            created = admin.create("TLS lamp", "https://example.com/lamp.png")
            pid = created["id"]
            seen = eventually(lambda: shop.product(pid), message=f"product {pid} not in main over amqps")
            assert seen["title"] == "TLS lamp"

            shopper = shop.shopper()
            liked = shop.like(shopper, pid)
            assert liked.status_code == 200, liked.text
            eventually(
                lambda: admin.get(pid).json()["likes"] == 1,
                message=f"like of product {pid} not in admin over amqps",
            )
        finally:
            admin.close()

        # Every connection the broker has is a TLS one, and the consumers and relays are among them.
        connections = _tls_flags(tls_rabbit)
        assert connections, "no connections on the broker"
        assert all(flag == "true" for _, flag in connections), connections
        names = {name for name, _ in connections}
        for expected in ("admin-consumer", "admin-relay", "main-consumer", "main-relay"):
            assert expected in names, connections
    except BaseException:
        logger.error("stack over amqps failed:\n%s", services.diagnostics())  # shown by pytest on failure
        raise
    finally:
        services.cleanup()

"""One fresh admin+main pair for the fault suite: its own vhost and databases on the session servers.

The fault tests crash the broker, the database and single processes. They run against their own
ServiceSet (vhost `faults`, databases faults_admin_db / faults_main_db) so the session `stack` used by
other suites never competes for their queues, and what they leave behind (dead letters) stays here.
Every test ends converged, so the next one starts from a clean, agreeing pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from faults.support import Endpoints, StackClients
from harness.servers import MariaDB, RabbitNode
from harness.services import ServiceSet

VHOST = "faults"


@dataclass
class FaultStack(StackClients):
    """The fault suite's services plus the servers they run on."""

    services: ServiceSet
    rabbit: RabbitNode
    mariadb: MariaDB
    amqp_url: str
    ep: Endpoints


def _ctl(rabbit: RabbitNode, *args: str) -> None:
    res = rabbit.ctl(*args)
    if res.returncode != 0 and "already exists" not in (res.stdout + res.stderr):
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {res.stdout}{res.stderr}")


@pytest.fixture(scope="package")
def fault_stack(rabbit: RabbitNode, mariadb: MariaDB, tmp_path_factory) -> Iterator[FaultStack]:
    """Start admin+main (six processes) on a fresh vhost and fresh databases for the fault suite.

    Process logs go to pytest's basetemp (kept for the last runs) so a failure can be read afterwards.
    """
    _ctl(rabbit, "add_vhost", VHOST)
    _ctl(rabbit, "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    amqp_url = f"amqp://guest:guest@127.0.0.1:{rabbit.amqp_port}/{VHOST}"
    admin_db = mariadb.create_db_user("faults_admin_db", "faults_admin", "faults-admin-pw")
    main_db = mariadb.create_db_user("faults_main_db", "faults_main", "faults-main-pw")
    services = ServiceSet(amqp_url, admin_db, main_db, log_dir=tmp_path_factory.mktemp("fault-stack-logs"))
    try:
        services.start()
        yield FaultStack(
            services,
            rabbit,
            mariadb,
            amqp_url,
            Endpoints(services.admin_url, services.main_url, admin_db, main_db),
        )
    finally:
        services.cleanup()


@pytest.fixture
def fs(fault_stack: FaultStack) -> Iterator[FaultStack]:
    """Return the fault stack; afterwards bring back any server or process the test left down."""
    yield fault_stack
    if not fault_stack.rabbit.running:
        fault_stack.rabbit.start()
    if not fault_stack.mariadb.running:
        fault_stack.mariadb.start()
    fault_stack.services.ensure_running()

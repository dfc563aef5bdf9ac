"""Each service's own test suite also passes on the real MariaDB, not only on SQLite.

`make test-admin` / `make test-main` run the suites on SQLite; here the same tests run again with
TEST_DATABASE_URL pointing at the session's MariaDB, where transactions, row locks, unique
constraints and SKIP LOCKED behave as in production. Left out: the live-server schemathesis runs
(SQLite by design) and the tests that start their own RabbitMQ node (no database under test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTEST = str(Path(sys.executable).with_name("pytest"))
DESELECT = "not schemathesis and not broker"
# root may create the databases each suite makes for itself (Django's test_<name>, main's test_main_*).
DATABASE_PATH = {"admin": "admin_suite", "main": ""}


@pytest.mark.parametrize("service", ["admin", "main"])
def test_service_suite_passes_on_mariadb(mariadb, service):
    url = f"mysql://root@127.0.0.1:{mariadb.port}/{DATABASE_PATH[service]}"
    result = subprocess.run(
        [PYTEST, "-q", "-p", "no:cacheprovider", "-k", DESELECT],
        cwd=ROOT / service,
        env={**os.environ, "TEST_DATABASE_URL": url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    assert result.returncode == 0, f"{service} suite on MariaDB: {summary}\n{result.stdout[-6000:]}"
    assert " passed" in summary and " failed" not in summary, summary

"""Throwaway MariaDB server for main's MySQL tests: the repository's shared test harness."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT / "tests"), str(_ROOT)]  # the harness, and dev/ which it builds on

from harness.servers import MariaDB as _HarnessMariaDB  # noqa: E402
from harness.servers import free_port  # noqa: E402

__all__ = ["MariaDB", "free_port"]


class MariaDB(_HarnessMariaDB):
    """A throwaway server on a free port in a temp dir."""

    @property
    def root_url(self) -> str:
        """Return a URL for root without a database."""
        return f"mysql://root@127.0.0.1:{self.port}/"

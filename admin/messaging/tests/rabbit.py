"""Throwaway RabbitMQ node for admin's broker tests: the repository's shared test harness.

Every real-server test of the repository starts its RabbitMQ nodes through dev/servers.py (the
same code that runs `make run`'s broker), so this module only makes it importable and adapts two
names.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root: dev/

from dev.servers import RabbitNode as _DevRabbitNode  # noqa: E402
from dev.servers import free_port  # noqa: E402

__all__ = ["RabbitNode", "free_port"]


class RabbitNode(_DevRabbitNode):
    """A throwaway node on free ports in a temp dir."""

    def kill(self) -> None:
        """Crash the node (SIGKILL)."""
        self.kill9()

    def remove(self) -> None:
        """Stop the node and delete its files."""
        self.cleanup()

"""Throwaway RabbitMQ node for main's broker tests: the repository's shared test harness.

Every real-server test of the repository starts its servers through tests/harness/servers.py,
so this module only makes that package importable and adapts two names.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

from harness.servers import RabbitNode as _HarnessRabbitNode  # noqa: E402
from harness.servers import free_port  # noqa: E402

__all__ = ["RabbitNode", "free_port"]


class RabbitNode(_HarnessRabbitNode):
    """A throwaway node on free ports in a temp dir."""

    def kill(self) -> None:
        """Crash the node (SIGKILL)."""
        self.kill9()

    def remove(self) -> None:
        """Stop the node and delete its files."""
        self.cleanup()

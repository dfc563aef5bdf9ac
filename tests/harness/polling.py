"""Poll for an asynchronous outcome with a deadline instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    timeout: float = 30,
    interval: float = 0.1,
    message: str = "condition not met",
) -> T:
    """Call check until it returns a truthy value (returned) or the deadline passes (AssertionError).

    Exceptions raised by check count as "not yet"; the last value or exception is put in the error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - "not yet" until the deadline
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} within {timeout}s (last: {last!r})")
        time.sleep(interval)

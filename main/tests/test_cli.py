"""The worker commands are registered and hand over to the messaging modules."""

import sys
import types

import pytest


@pytest.mark.parametrize(
    ("args", "module", "function", "expected"),
    [
        (["consume"], "app.messaging.consumer", "run_consumer", ()),
        (["relay-outbox"], "app.messaging.relay", "run_relay", ()),
        (["resync-likes"], "app.messaging.resync", "resync_likes", (False,)),
        (["resync-likes", "--force"], "app.messaging.resync", "resync_likes", (True,)),
        (
            ["dlq", "redrive", "--limit", "7"],
            "app.messaging.dlq",
            "dlq_command",
            ("redrive", 7),
        ),
        (["dlq", "list"], "app.messaging.dlq", "dlq_command", ("list", None)),
    ],
)
def test_command_calls_the_messaging_entry_point(app, runner, monkeypatch, args, module, function, expected):
    calls = []
    fake = types.ModuleType(module)
    setattr(fake, function, lambda flask_app, *rest: calls.append((flask_app, *rest)))
    monkeypatch.setitem(sys.modules, module, fake)

    result = runner.invoke(args=args)

    assert result.exit_code == 0, result.output
    assert calls == [(app, *expected)]


def test_dlq_rejects_unknown_actions(runner):
    result = runner.invoke(args=["dlq", "explode"])
    assert result.exit_code != 0

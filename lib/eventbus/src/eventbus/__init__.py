"""The messaging machinery admin and main share (lib/eventbus/README.md)."""

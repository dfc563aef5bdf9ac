"""Fault tests: crash or stop servers and processes on purpose, then prove nothing was lost or doubled."""

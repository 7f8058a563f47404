"""Scenario tests: real worker subprocesses, SIGKILL and crash points, restart, verify."""

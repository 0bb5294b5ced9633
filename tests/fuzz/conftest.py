"""Prints how many mutated deliveries the fuzz properties ran, and how many were refused (4xx)."""

from __future__ import annotations

import pytest

from tests.fuzz.fuzz_kit import EXAMPLES, REFUSED, RUNS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUNS:
        return
    write = terminalreporter.write_line
    write(f"webhook fuzz: {sum(RUNS.values())} calls on mutated deliveries (FUZZ_EXAMPLES={EXAMPLES})")
    for name in sorted(RUNS):
        write(f"  {name:<40} {RUNS[name]:>7} calls, {REFUSED[name]:>7} refused with a WebhookError")

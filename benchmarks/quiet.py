"""What every benchmark script does first: only warnings and errors reach the console, so its
figures are not lost among the engine's info lines."""

from __future__ import annotations

import logging

import structlog


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

"""The public surface: what `import nexus` offers, what a driver author's import pulls in, and
the frozen values the fluent API hands out."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nexus


def test_every_public_name_resolves_and_is_listed() -> None:
    assert set(nexus.__all__) == {"__version__", *nexus._MODULE_OF}
    for name in nexus.__all__:
        assert getattr(nexus, name) is not None, name
    assert nexus.__version__ and nexus.__version__ != "0.0.0"
    with pytest.raises(AttributeError):
        nexus.NotAName  # noqa: B018


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return loaded.stdout.split()


def test_the_driver_contract_stands_alone() -> None:
    layers = ("nexus.channels", "nexus.domain", "nexus.storage", "nexus.sync", "nexus.engine", "sqlalchemy")
    loaded = _loaded_after("import nexus.drivers")
    assert [m for m in loaded if m.startswith(layers)] == []


def test_importing_an_error_does_not_start_the_engine() -> None:
    loaded = _loaded_after("from nexus import NexusError")
    assert "nexus.engine" not in loaded and "nexus.storage.models" not in loaded


def test_every_error_and_event_is_public() -> None:
    import dataclasses
    import inspect

    from nexus import errors, events

    raised = {n for n, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == "nexus.errors"}
    emitted = {
        n
        for n, c in inspect.getmembers(events, inspect.isclass)
        if c.__module__ == "nexus.events" and dataclasses.is_dataclass(c) and c.__dataclass_params__.frozen  # type: ignore[attr-defined]
    }
    assert raised - set(nexus.__all__) == set()
    assert emitted - set(nexus.__all__) == set()

"""The sandboxes depend on the core, never the reverse: a production process imports no emulator."""

from __future__ import annotations

import subprocess
import sys


def test_running_nexus_loads_no_sandbox() -> None:
    code = (
        "import sys, nexus, nexus.engine, nexus.runtime, nexus.cli.main, nexus.web.app, nexus.web.server;"
        "print(sorted(m for m in sys.modules if m.startswith('nexus.sandbox')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"

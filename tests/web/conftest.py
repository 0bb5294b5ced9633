from __future__ import annotations

import sys
from pathlib import Path

# The testhmac driver and delivery helpers live beside the webhook tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "webhooks"))

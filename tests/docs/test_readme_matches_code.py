"""Documentation that matches the code (issue 11 point 5): every setting of every channel's
settings model is in that channel's README section with its default, and the public API's
accepted values are listed. A new setting without a README row fails here."""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path

import pytest

from nexus.config import ChannelSettings
from nexus.domain.vocabulary import ConflictPolicy, MovementReason, Priority

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
SECTIONS = {
    "shopify": "## Connecting a real Shopify store",
    "woocommerce": "## Connecting a WooCommerce store",
    "amazon": "## Connecting an Amazon seller account (SP-API)",
    "etsy": "## Connecting an Etsy shop",
    "rest": '## A channel described in configuration (`driver = "rest"`)',
}


def section(heading: str) -> str:
    start = README.index(heading)
    end = README.find("\n## ", start + len(heading))
    return README[start : end if end != -1 else None]


def settings_model(driver: str) -> type[ChannelSettings]:
    model = getattr(import_module(f"nexus.channels.{driver}").create_driver, "settings_model", None)
    assert isinstance(model, type) and issubclass(model, ChannelSettings), driver
    return model


@pytest.mark.parametrize("driver", sorted(SECTIONS))
def test_every_channel_setting_is_in_its_readme_section_with_its_default(driver: str) -> None:
    text = section(SECTIONS[driver])
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `([A-Za-z0-9_]+)` \|[^\n]*$", text, flags=re.MULTILINE)
    }
    missing = []
    for name, info in settings_model(driver).model_fields.items():
        key = info.alias or name
        row = rows.get(key)
        if row is None:
            missing.append(key)
            continue
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        default = cells[2]
        if info.is_required():
            assert default == "required", row
        elif not isinstance(info.default, ChannelSettings | dict) and info.default_factory is None:
            value = info.default
            shown = (
                {None: "none", True: "`true`", False: "`false`"}.get(value)
                if not isinstance(value, int | float | str | tuple) or isinstance(value, bool)
                else None
            )
            if shown is None and isinstance(value, str):
                shown = f'`"{value}"`'
            if shown is None and isinstance(value, int | float):
                shown = f"`{value}`"
            if shown is not None:
                assert default == shown, f"{driver}: {key} defaults to {value!r}, README says {default}"
    assert not missing, f"README section {SECTIONS[driver]!r} lacks rows for: {', '.join(missing)}"


def test_the_public_apis_accepted_values_are_listed() -> None:
    text = section("## Using Nexus from Python")
    for value in [*MovementReason, *ConflictPolicy]:
        assert f"`{value.value}`" in text, value
    for priority in Priority:
        assert f"`{priority.name}`" in text, priority

"""Driver discovery: the `nexus.drivers` entry-point group, plus factories given to `Nexus.extend`.

A channel package also names its normaliser (the channel's product payload -> `NexusProduct`)
in the `nexus.normalizers` group under the same name, so a third-party channel's normaliser is
found exactly like a built-in one's and the driver contract imports no channel.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from nexus.drivers.contract import ChannelContext, InventoryDriver
from nexus.drivers.dto import NexusProduct
from nexus.errors import UnknownDriverError

DriverFactory = Callable[[ChannelContext], InventoryDriver]
Normalizer = Callable[..., NexusProduct]
ENTRY_POINT_GROUP = "nexus.drivers"
NORMALIZER_GROUP = "nexus.normalizers"


class DriverRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, DriverFactory] = {}
        self._normalizers: dict[str, Normalizer] = {}

    def register(self, name: str, factory: DriverFactory, *, normalizer: Normalizer | None = None) -> None:
        self._factories[name] = factory
        if normalizer is not None:
            self._normalizers[name] = normalizer

    def names(self) -> list[str]:
        return sorted({*self._factories, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})

    def factory(self, name: str) -> DriverFactory:
        if name not in self._factories:
            self._factories[name] = _load(ENTRY_POINT_GROUP, name, self.names())
        return self._factories[name]

    def normalizer(self, name: str) -> Normalizer:
        """The function turning channel `name`'s product payload into a `NexusProduct`."""
        if name not in self._normalizers:
            known = sorted({*self._normalizers, *(ep.name for ep in entry_points(group=NORMALIZER_GROUP))})
            self._normalizers[name] = _load(NORMALIZER_GROUP, name, known)
        return self._normalizers[name]


def _load(group: str, name: str, known: list[str]) -> Any:
    for entry_point in entry_points(group=group, name=name):
        return entry_point.load()
    raise UnknownDriverError(
        f"no {group.removeprefix('nexus.').rstrip('s')} named {name!r}; known: {', '.join(known) or 'none'}. "
        f"Register one with Nexus.extend() or the {group!r} entry-point group."
    )

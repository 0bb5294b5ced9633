"""Driver discovery: the `nexus.drivers` entry-point group, plus factories given to `Nexus.extend`."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from nexus.drivers.contract import ChannelContext, InventoryDriver
from nexus.errors import UnknownDriverError

DriverFactory = Callable[[ChannelContext], InventoryDriver]
ENTRY_POINT_GROUP = "nexus.drivers"


class DriverRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, DriverFactory] = {}

    def register(self, name: str, factory: DriverFactory) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted({*self._factories, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})

    def factory(self, name: str) -> DriverFactory:
        if name in self._factories:
            return self._factories[name]
        for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=name):
            factory: DriverFactory = entry_point.load()
            self._factories[name] = factory
            return factory
        raise UnknownDriverError(
            f"no driver named {name!r}; known: {', '.join(self.names()) or 'none'}. "
            f"Register one with Nexus.extend() or the {ENTRY_POINT_GROUP!r} entry-point group."
        )

"""One page of a listing that pages by offset (dead letters, webhook deliveries): what the CLI
prints and the REST API will answer, built the same way by every listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar


class AsDict(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=AsDict)


@dataclass(frozen=True)  # no slots: a slotted frozen dataclass cannot be built through OffsetPage[X](...)
class OffsetPage(Generic[T]):
    items: list[T]
    total: int  # how many match, over every page
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.items)
        return following if following < self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": [item.as_dict() for item in self.items],
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": self.next_offset,
        }

    def footer(self, noun: str) -> str:
        """`1-50 of 120 <noun>; next page: --offset 50`, for a table's last line."""
        shown = f"{self.offset + 1}-{self.offset + len(self.items)} of {self.total} {noun}"
        return shown + (f"; next page: --offset {self.next_offset}" if self.next_offset is not None else "")

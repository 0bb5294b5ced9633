"""How much of the available stock each channel shows, and how urgently it must hear about it."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from nexus.config import AllocationRule
from nexus.domain.vocabulary import Priority


def allocate(available: int, rule: AllocationRule) -> int:
    """The quantity a channel should show. Rules apply in a fixed order:

    1. `fixed` pins the quantity whatever the stock;
    2. `zero_at`: available at or below it shows 0 (keep the last units for other channels);
    3. `buffer` units are held back;
    4. `percentage` of what remains, rounded down;
    5. `max` caps the result.
    Never below 0.
    """
    if rule.fixed is not None:
        return rule.fixed
    if available <= 0 or (rule.zero_at is not None and available <= rule.zero_at):
        return 0
    quantity = available - rule.buffer
    if quantity <= 0:
        return 0
    if rule.percentage < 100:
        # Exact decimal arithmetic on the percentage as written: in binary floating point
        # 1500 * 4.6 / 100 is 68.99999999999999, which would round down to 68 instead of 69.
        quantity = int(quantity * Fraction(str(rule.percentage)) // 100)
    if rule.max is not None:
        quantity = min(quantity, rule.max)
    return max(0, quantity)


def push_priority(quantity: int, low_stock_threshold: int) -> Priority:
    """Running out is urgent: a listing going to 0 or into low stock is pushed before anything else."""
    return Priority.IMMEDIATE if quantity <= low_stock_threshold else Priority.NORMAL


class Allocator:
    """Allocation rules of every configured channel; unknown channels get the default rule."""

    def __init__(self, rules: Mapping[str, AllocationRule], low_stock_threshold: int) -> None:
        self._rules = dict(rules)
        self._default = AllocationRule()
        self.low_stock_threshold = low_stock_threshold

    def desired(self, channel: str, available: int) -> int:
        return allocate(available, self._rules.get(channel, self._default))

    def priority(self, quantity: int) -> Priority:
        return push_priority(quantity, self.low_stock_threshold)

"""Properties of `allocate`: what each channel is shown for a given available stock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.config import AllocationRule
from nexus.domain.allocation import Allocator, allocate, push_priority
from nexus.domain.vocabulary import Priority

SETTINGS = settings(max_examples=50, deadline=None)

available_st = st.integers(min_value=-1_000, max_value=1_000_000)
# Percentages as a merchant writes them in nexus.toml: at most two decimals, in (0, 100].
percentage_st = st.integers(min_value=1, max_value=10_000).map(lambda hundredths: hundredths / 100)
optional_count = st.none() | st.integers(min_value=0, max_value=1_000)


@st.composite
def rules(draw: st.DrawFn, *, allow_fixed: bool = True) -> AllocationRule:
    return AllocationRule(
        buffer=draw(st.integers(min_value=0, max_value=1_000)),
        zero_at=draw(optional_count),
        max=draw(optional_count),
        percentage=draw(st.just(100.0) | percentage_st),
        fixed=draw(optional_count) if allow_fixed else None,
    )


@SETTINGS
@given(available=available_st, rule=rules())
def test_never_negative(available: int, rule: AllocationRule) -> None:
    assert allocate(available, rule) >= 0


@SETTINGS
@given(available=available_st, rule=rules(allow_fixed=False))
def test_never_above_available_without_fixed(available: int, rule: AllocationRule) -> None:
    assert allocate(available, rule) <= max(0, available)


@SETTINGS
@given(available=available_st, fixed=st.integers(min_value=0, max_value=1_000), rule=rules(allow_fixed=False))
def test_fixed_pins_the_quantity_whatever_the_stock(available: int, fixed: int, rule: AllocationRule) -> None:
    pinned = rule.model_copy(update={"fixed": fixed})
    assert allocate(available, pinned) == fixed


@SETTINGS
@given(low=available_st, extra=st.integers(min_value=0, max_value=100_000), rule=rules())
def test_monotone_non_decreasing_in_available(low: int, extra: int, rule: AllocationRule) -> None:
    assert allocate(low, rule) <= allocate(low + extra, rule)


@SETTINGS
@given(available=available_st, cap=st.integers(min_value=0, max_value=1_000), rule=rules(allow_fixed=False))
def test_max_is_respected(available: int, cap: int, rule: AllocationRule) -> None:
    assert allocate(available, rule.model_copy(update={"max": cap})) <= cap


@SETTINGS
@given(threshold=st.integers(min_value=0, max_value=1_000), below=st.integers(min_value=0, max_value=2_000))
def test_zero_at_shows_nothing_at_or_below_the_threshold(threshold: int, below: int) -> None:
    rule = AllocationRule(zero_at=threshold)
    assert allocate(threshold - below, rule) == 0
    # ...and just above it the channel sees the stock again.
    assert allocate(threshold + 1, rule) == threshold + 1


@SETTINGS
@given(
    available=st.integers(min_value=0, max_value=1_000_000),
    hundredths=st.integers(min_value=1, max_value=10_000),
)
def test_percentage_rounds_down_exactly(available: int, hundredths: int) -> None:
    # 4.6 % of 1500 is exactly 69: binary floating point must not turn it into 68.99… -> 68.
    rule = AllocationRule(percentage=hundredths / 100)
    assert allocate(available, rule) == available * hundredths // 10_000


def test_percentage_rounding_examples() -> None:
    assert allocate(1500, AllocationRule(percentage=4.6)) == 69
    assert allocate(10, AllocationRule(percentage=33.3)) == 3
    assert allocate(1, AllocationRule(percentage=99.99)) == 0
    assert allocate(7, AllocationRule(percentage=50)) == 3


@SETTINGS
@given(
    available=st.integers(min_value=-100, max_value=1_000_000),
    shares=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=6).filter(
        lambda shares: sum(shares) <= 10_000
    ),
    buffers=st.lists(st.integers(min_value=0, max_value=50), min_size=6, max_size=6),
)
def test_channels_whose_shares_sum_to_at_most_100_never_oversell(
    available: int, shares: list[int], buffers: list[int]
) -> None:
    allocated = [
        allocate(available, AllocationRule(percentage=share / 100, buffer=buffer))
        for share, buffer in zip(shares, buffers, strict=False)
    ]
    assert sum(allocated) <= max(0, available)


def test_rules_apply_in_the_documented_order() -> None:
    # zero_at looks at the available stock, before the buffer is held back...
    assert allocate(6, AllocationRule(zero_at=5, buffer=3)) == 3
    # ...then buffer, then percentage of what remains, then max.
    assert allocate(110, AllocationRule(buffer=10, percentage=50)) == 50
    assert allocate(110, AllocationRule(buffer=10, percentage=50, max=20)) == 20
    assert allocate(3, AllocationRule(buffer=5)) == 0


@SETTINGS
@given(quantity=st.integers(min_value=-10, max_value=100), threshold=st.integers(min_value=0, max_value=50))
def test_low_stock_is_pushed_first(quantity: int, threshold: int) -> None:
    expected = Priority.IMMEDIATE if quantity <= threshold else Priority.NORMAL
    assert push_priority(quantity, threshold) is expected


def test_allocator_uses_each_channels_rule_and_a_default() -> None:
    allocator = Allocator({"half": AllocationRule(percentage=50), "pinned": AllocationRule(fixed=2)}, 5)
    assert allocator.desired("half", 9) == 4
    assert allocator.desired("pinned", 0) == 2
    assert allocator.desired("unknown", 9) == 9
    assert allocator.desired("unknown", -3) == 0
    assert allocator.priority(5) is Priority.IMMEDIATE
    assert allocator.priority(6) is Priority.NORMAL

"""What the webhook fuzz tests share: the hypothesis profile, mutations of real deliveries, and the
one rule every outcome is held to.

Profiles (registered here, applied per test with `@FUZZ`, never loaded globally, so other property
tests keep their own settings):

    fuzz        FUZZ_EXAMPLES examples per property (default 40), for `make test`
    FUZZ_EXAMPLES=2000 (what `make fuzz` sets) turns every property into a soak

The rule (`outcome`): a call either returns or raises a `WebhookError` (the receiver's documented
401 / 413 / 400). Any other exception is a bug: the receiver answers it with a 500. Events carry
whole quantities: a sale sells at least one unit, a level is >= 0 unless the channel's format
allows oversold (negative) levels, and nothing is beyond `MAX_QUANTITY` (the stock columns).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from nexus.drivers.contract import MAX_QUANTITY, InboundEvent, ObservedLevel, SaleEvent, WebhookRequest
from nexus.errors import WebhookError

T = TypeVar("T")

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES,
    deadline=None,  # RSA signing and the first certificate load make timings uneven
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    # The soak looks for new failures; make test replays the saved ones first either way.
    print_blob=True,
)
FUZZ = settings(settings.get_profile("fuzz"))


# Examples run and refusals met per property; printed at the end of the session (conftest.py).
RUNS: Counter[str] = Counter()
REFUSED: Counter[str] = Counter()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Drive a driver coroutine to its end on a fresh loop (hypothesis calls tests synchronously)."""
    return asyncio.run(coroutine)


def outcome(name: str, call: Callable[[], T]) -> T | WebhookError:
    """The value of `call()`, or the WebhookError it raised; anything else propagates and fails."""
    RUNS[name] += 1
    try:
        return call()
    except WebhookError as refused:
        REFUSED[name] += 1
        return refused


def check_events(events: object, *, negative_levels: bool) -> list[InboundEvent]:
    assert isinstance(events, list), f"parse returned {type(events).__name__}, not a list"
    for event in events:
        assert isinstance(event, SaleEvent | ObservedLevel), f"not an inbound event: {event!r}"
        quantity = event.quantity
        assert isinstance(quantity, int) and not isinstance(quantity, bool), f"{quantity!r} is not whole"
        assert abs(quantity) <= MAX_QUANTITY, f"beyond the 32-bit stock columns: {event!r}"
        if isinstance(event, SaleEvent):
            assert quantity >= 1, f"a sale of {quantity} units: {event!r}"
            assert event.order_id and event.line_id, f"a sale without its keys: {event!r}"
        elif not negative_levels:
            assert quantity >= 0, f"a negative level this channel never sends: {event!r}"
        listing = event.listing
        assert listing.remote_id or listing.inventory_id or listing.remote_sku, f"no listing: {event!r}"
    return events  # type: ignore[return-value]


def with_body(request: WebhookRequest, body: bytes) -> WebhookRequest:
    return replace(request, body=body)


def with_headers(request: WebhookRequest, headers: dict[str, str]) -> WebhookRequest:
    return replace(request, headers=headers)


# -- values ----------------------------------------------------------------------------------------

HUGE_INTS = st.sampled_from(
    [0, -1, -7, 2**31 - 1, 2**31, -(2**31), 2**53 + 1, 2**63, -(2**63), 2**64, 10**20, 10**100]
)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "007",
        " 5 ",
        "1e3",
        "1_000",
        "\u0661\u0662\u0663",  # Arabic-Indic digits: str.isdigit() says yes, int() agrees
        "²",  # superscript two: isdigit() says yes, int() refuses
        "9" * 5000,  # longer than int() converts
        "gid://shopify/ProductVariant/-1",
        "gid://shopify/ProductVariant/",
        "\x00",
        "\ud800",  # a lone surrogate: json.dumps escapes it, encode() would refuse it
        "🛒" * 3,
        "NaN",
        "0001-01-01T00:00:00+01:00",  # ISO time whose UTC instant is before year 1
        "9999-12-31T23:59:59-01:00",  # ... and after year 9999
        "2026-13-45T99:99:99Z",
        "http://[::1/v3/application/shops/10051834/receipts/1",
        "https://openapi.etsy.com\uff0f/v3/application/shops/10051834/receipts/1",
    ]
)
SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),  # json.dumps writes NaN / Infinity, loads reads them
    st.text(max_size=20),
    ODD_TEXT,
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

# Raw JSON text spliced in where a value was: what json.dumps cannot produce.
DEEP = "\x00fuzz-deep\x00"
RAW_TOKENS = [
    "[" * 50_000 + "]" * 50_000,  # nesting deeper than the JSON decoder recurses
    "{" + '"a":{' * 20_000 + "}" * 20_000 + "}",
    "9" * 5000,  # an integer literal longer than int() converts
    "1e999",  # a float literal that overflows to inf
    "-0",
    '"\\ud800"',  # an escaped lone surrogate
]


# -- mutations -------------------------------------------------------------------------------------

Path = tuple[Any, ...]


def paths(document: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path to a value under `document` (not the root itself)."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def _parent(document: Any, path: Path) -> Any:
    for step in path[:-1]:
        document = document[step]
    return document


def _retype(value: Any) -> Any:
    """The same datum in another JSON type: 3 -> "3", "3" -> 3, [x] -> {"0": x}, {..} -> [..]."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return int(value) if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return "null"


@st.composite
def json_mutation(
    draw: st.DrawFn, document: Any, hot_keys: frozenset[str] = frozenset(), raw: bool = True
) -> bytes:
    """`document` with one to three values deleted, replaced, retyped or nested, as JSON bytes.

    Paths ending in one of `hot_keys` (quantities, ids, timestamps) are drawn as often as all
    the others together, so small example counts still reach the fields that matter."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        every = list(paths(document))
        if not every:
            break
        hot = [p for p in every if p and str(p[-1]) in hot_keys]
        path = draw(st.sampled_from(hot)) if hot and draw(st.booleans()) else draw(st.sampled_from(every))
        parent = _parent(document, path)
        key = path[-1]
        actions = ["delete", "replace", "retype", "wrap", "negate"] + (["deep"] if raw else [])
        action = draw(st.sampled_from(actions))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(VALUES)
        elif action == "retype":
            parent[key] = _retype(parent[key])
        elif action == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
        elif action == "deep":
            parent[key] = DEEP
        else:
            value = parent[key]
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            parent[key] = -value if is_number else draw(HUGE_INTS)
    if draw(st.booleans()) and isinstance(document, dict):
        document = draw(st.sampled_from([[document], {"wrapped": document}, document]))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    token = json.dumps(DEEP)
    while token in text:
        text = text.replace(token, draw(st.sampled_from(RAW_TOKENS)), 1)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate written raw (ensure_ascii=False)
        return text.encode("utf-8", "surrogatepass")


@st.composite
def byte_mutation(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` with bytes flipped, cut, inserted, dropped or repeated (one to three times)."""
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "repeat", "token"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 32))]
        else:
            data[at:at] = draw(
                st.sampled_from([b"\xff\xfe", b"\xc3", b"\x00", b'"', b",", b"}", b"]", b"NaN", b"-"])
            )
    return bytes(data)


def mutated_body(
    body: bytes, hot_keys: frozenset[str] = frozenset(), raw: bool = True
) -> st.SearchStrategy[bytes]:
    """A real delivery's body after JSON-level or byte-level mutation (or both); `raw` splices in
    JSON text json.dumps cannot write (`RAW_TOKENS`: nesting 50,000 deep, 5,000-digit numbers)."""
    document = json.loads(body)
    structural = json_mutation(document, hot_keys, raw)
    return st.one_of(structural, byte_mutation(body), structural.flatmap(byte_mutation))


def wrong_base64_signature(correct: str) -> st.SearchStrategy[str]:
    """base64 strings that are certainly not `correct`'s digest: flipped, cut, random, garbage."""
    digest = base64.b64decode(correct)

    def flipped(at_mask: tuple[int, int]) -> str:
        at, mask = at_mask
        data = bytearray(digest)
        data[at % len(data)] ^= mask
        return base64.b64encode(bytes(data)).decode()

    return st.one_of(
        st.tuples(st.integers(0, 10_000), st.integers(1, 255)).map(flipped),
        st.integers(0, len(digest) - 1).map(lambda n: base64.b64encode(digest[:n]).decode()),
        st.binary(min_size=32, max_size=32)
        .filter(lambda b: b != digest)
        .map(lambda b: base64.b64encode(b).decode()),
        st.text(max_size=60).filter(lambda t: t.strip() != correct.strip()),
        st.just(correct[:-2]),  # padding dropped: not valid base64 any more
        st.just(f"{correct}, {correct}"),  # a proxy joining a duplicated header
        st.just(correct.swapcase()),
    )

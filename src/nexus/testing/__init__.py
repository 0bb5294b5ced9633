"""Test helpers for driver authors and users: the conformance kit every built-in driver passes, and
`MemoryChannel`, an in-memory channel that passes it too (see the README's "Testing" section)."""

from nexus.testing.conformance import ConformanceChannel, DriverConformance, ProductFixture
from nexus.testing.memory import MemoryChannel, MemoryChannelFactory, encode_events, sign, signed_headers

__all__ = [
    "ConformanceChannel",
    "DriverConformance",
    "MemoryChannel",
    "MemoryChannelFactory",
    "ProductFixture",
    "encode_events",
    "sign",
    "signed_headers",
]

"""Test helpers for driver authors: the conformance kit every built-in driver passes."""

from nexus.testing.conformance import ConformanceChannel, DriverConformance, ProductFixture

__all__ = ["ConformanceChannel", "DriverConformance", "ProductFixture"]

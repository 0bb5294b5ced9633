"""Local emulators of real channel APIs, for the demo, the tests and the benchmarks."""

from nexus.sandbox.server import LoopbackServer, serve_app

__all__ = ["LoopbackServer", "serve_app"]

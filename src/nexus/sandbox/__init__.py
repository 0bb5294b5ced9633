"""Local emulators of real channel APIs, for the demo, the tests and the benchmarks. They depend
on the core; nothing in the core imports them (serve them with `nexus.web.server.serve_app`)."""

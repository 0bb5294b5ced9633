"""Local emulators of real channel APIs, for the demo, the tests and the benchmarks. They depend
on the core; nothing in the core imports them (serve them with `nexus.web.server.serve_app`).

Shared by the four sandboxes (`shopify`, `woocommerce`, `etsy`, `amazon`): `base` (the `Sandbox`
protocol), `delivery` (the webhook delivery queue: retry policies as data, injectable faults),
`control` (the `/_sandbox` control routes), `stats` (`SandboxStats`), `barcodes` (`ean13`). The
demo (`demo`, `demo_channels`) runs on them. The Shopify sandbox needs graphql-core, the
`sandbox` extra (`pip install 'nexus-sync[sandbox]'`).
"""

"""The counters a test, benchmark or the demo reads to see what a sandbox went through.

One type for every sandbox: the shared counters first (requests, refusals, quantity writes, the
webhook counters the delivery queue keeps), then the ones only some channels have, each named
after what it counts; a sandbox leaves the others at zero. `GET /_sandbox/stats` answers
`as_dict()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SandboxStats:
    # --- every sandbox ---------------------------------------------------------------------
    requests: int = 0  # authenticated API requests (Etsy: those that passed the key check)
    throttled: int = 0  # requests refused for a rate limit (429, or Shopify's THROTTLED)
    unauthorized: int = 0  # requests refused for a missing, unknown or expired credential
    set_count_by_sku: dict[str, int] = field(default_factory=dict)  # quantity writes per SKU
    # --- webhooks (counted by nexus.sandbox.delivery) ----------------------------------------
    webhooks_sent: int = 0  # deliveries answered with a success status (first copy only)
    webhooks_failed: int = 0  # deliveries given up after the last retry (or the only attempt)
    webhooks_duplicated: int = 0  # extra copies sent by the duplicate_rate fault
    webhooks_dropped: int = 0  # deliveries never sent, by the drop_rate fault
    webhook_attempts_failed: int = 0  # individual attempts answered otherwise or not at all
    # --- Shopify, WooCommerce -------------------------------------------------------------------
    failed: int = 0  # requests refused by fail_next with a status other than 429
    # --- Shopify -------------------------------------------------------------------------------
    max_cost_exceeded: int = 0
    mutations: int = 0  # inventorySetQuantities calls that were executed (not replays)
    idempotent_replays: int = 0
    answers_lost: int = 0  # calls applied whose answer lose_next replaced by a 5xx or a dropped connection
    user_errors: int = 0  # executed calls answered with userErrors (nothing applied)
    # --- Shopify, Amazon -----------------------------------------------------------------------
    quantities_set: int = 0  # quantity updates applied (Shopify: items of successful calls)
    # --- WooCommerce ---------------------------------------------------------------------------
    batches: int = 0  # batch requests executed
    batch_too_large: int = 0  # batch requests refused 413
    items_updated: int = 0  # batch update entries saved
    item_errors: int = 0  # batch update entries answered with an error object
    orders: int = 0
    webhooks_disabled: int = 0  # webhooks disabled after too many consecutive failures
    pings_sent: int = 0  # creation pings answered 200
    pings_failed: int = 0
    # --- Etsy ----------------------------------------------------------------------------------
    throttled_daily: int = 0  # of the throttled requests, those refused by the daily quota
    token_refreshes: int = 0
    inventory_gets: int = 0
    inventory_puts: int = 0  # accepted PUTs
    inventory_put_errors: int = 0  # PUTs refused with 400
    products_deleted: int = 0  # products that a PUT left out (Etsy deletes them)
    receipt_gets: int = 0
    # --- Amazon --------------------------------------------------------------------------------
    token_requests: int = 0  # LWA refresh_token grants answered
    requests_by_operation: dict[str, int] = field(default_factory=dict)
    patches: int = 0  # patchListingsItem calls answered ACCEPTED or INVALID
    feeds_created: int = 0
    feed_messages: int = 0  # messages processed in finished feeds
    webhooks_unconfirmed: int = 0  # notifications not sent: the subscription was never confirmed
    subscriptions_confirmed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

"""Secrets never reach the audit log or the dead-letter queue."""

from __future__ import annotations

from nexus.masking import MASK, mask_secrets


def test_secret_looking_keys_are_masked_at_any_depth() -> None:
    payload = {
        "sku": "SKU-1",
        "access_token": "shpat_abc",
        "headers": {"Authorization": "Bearer xyz", "X-Shopify-Access-Token": "shpat_def", "Accept": "json"},
        "items": [
            {"api_key": "k1", "quantity": 3},
            {"apiKey": "k2"},
            ("client_secret", "kept: a value not a key"),
        ],
        "Password": "hunter2",
        "hmac_signature": "c2lnbmVk",
        "credentials": {"anything": "inside"},
    }
    masked = mask_secrets(payload)
    assert masked["sku"] == "SKU-1"
    assert masked["access_token"] == MASK
    assert masked["headers"] == {"Authorization": MASK, "X-Shopify-Access-Token": MASK, "Accept": "json"}
    assert masked["items"][0] == {"api_key": MASK, "quantity": 3}
    assert masked["items"][1] == {"apiKey": MASK}
    assert masked["Password"] == MASK
    assert masked["hmac_signature"] == MASK
    assert masked["credentials"] == MASK
    for secret in ("shpat_abc", "Bearer xyz", "shpat_def", "k1", "k2", "hunter2", "c2lnbmVk", "inside"):
        assert secret not in repr(masked)


def test_masking_copies_and_never_mutates_the_original() -> None:
    original = {"token": "t", "nested": {"secret": "s"}}
    mask_secrets(original)
    assert original == {"token": "t", "nested": {"secret": "s"}}


def test_plain_values_pass_through() -> None:
    assert mask_secrets([1, "a", None, {"quantity": 2}]) == [1, "a", None, {"quantity": 2}]

"""Barcodes the sandboxes seed their catalogs with."""

from __future__ import annotations


def ean13(number: int, prefix: str = "200") -> str:
    """A valid EAN-13 in the in-store range (prefix 200-299), deterministic in `number`."""
    body = f"{prefix}{number:09d}"[-12:]
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - weighted % 10) % 10)

"""Nexus: keep inventory in sync across sales channels."""

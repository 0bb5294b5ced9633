"""The web side of Nexus: `create_app(nexus)` returns the FastAPI application."""

from nexus.web.app import create_app, create_metrics_app

__all__ = ["create_app", "create_metrics_app"]

"""The dashboard at `/nexus/`: server-rendered pages (Jinja2 templates and one small script,
shipped in the package: no front-end build, nothing loaded from another site).

    GET  /nexus/login, POST /nexus/login     sign in by pasting an API token (a session cookie)
    POST /nexus/logout                       sign out
    GET  /nexus/                             channel cards and the alert banner, updated live
    GET  /nexus/events                       the live updates: server-sent events, about 1 a second
    GET  /nexus/batches[?open=<id>]          the batch monitor; a batch's failed members in a drawer
    GET  /nexus/webhook-log[/<id>]           the webhook log: search, pages, one delivery whole
    GET  /nexus/dead-letters[/<id>]          the dead-letter manager: filter, select, replay, resolve
    GET  /nexus/audit                        the push audit (masked payloads)
    GET  /nexus/health                       success rates per channel over 1 h / 24 h / 7 d

Every form that changes something is a POST carrying the session's CSRF token, and needs a
`manage` token (`nexus.web.auth.manage_access`); a `view` session sees no such button, and the
server refuses the POST anyway. Every manage action is recorded (`nexus.access.actions`). The
pages call the same services as the CLI and the REST API; they hold no SQL.
"""

from nexus.web.dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]

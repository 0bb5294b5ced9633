"""The dashboard's pages, its live stream and its forms (see the package's docstring)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from nexus.access.actions import record_action
from nexus.access.tokens import Principal
from nexus.domain.vocabulary import DeadLetterStatus, WebhookStatus
from nexus.errors import NexusError
from nexus.storage.models import utcnow
from nexus.sync.batches import list_batches, retry_failed, show_batch
from nexus.sync.dead_letters import (
    OPEN,
    DeadLetterFilter,
    list_dead_letters,
    replay_dead_letters,
    resolve_dead_letters,
    show_dead_letter,
)
from nexus.sync.history import PUSH_STATUSES, list_push_audit
from nexus.sync.overview import ChannelCard, channel_overview, health_rates
from nexus.web.api.schemas import NUL_PROBLEM, has_nul
from nexus.web.auth import csrf_token, manage_access, session_principal, sign_in, sign_out
from nexus.web.dashboard import present
from nexus.web.errors import ApiError
from nexus.webhooks.log import WebhookFilter, list_webhooks, reprocess_webhooks, show_webhook, webhook_days

if TYPE_CHECKING:
    from nexus.engine import Nexus

PREFIX = "/nexus"
HERE = Path(__file__).parent
STATIC = HERE / "static"
PAGE_SIZE = 50
LIVE_INTERVAL = 1.0  # seconds between two live updates
# A stream ends after this long and the browser reconnects (EventSource does, after `retry`): a
# server shutting down waits for open responses, and a revoked session loses its stream here.
STREAM_SECONDS = 5.0
CACHE_SECONDS = 0.5  # one overview read serves every open dashboard within this long

WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
WINDOW_LABELS = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
LETTER_STATUSES: dict[str, frozenset[DeadLetterStatus] | None] = {
    "open": OPEN,
    "failed": frozenset({DeadLetterStatus.FAILED}),
    "replaying": frozenset({DeadLetterStatus.REPLAYING}),
    "resolved": frozenset({DeadLetterStatus.RESOLVED}),
    "all": None,
}
AGES = {"": None, "1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}

# Content-Security-Policy: the pages load nothing but their own script and stylesheet, run no
# inline script and may not be framed (a framed dashboard invites click-jacking of its buttons).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Notices:
    """One-shot messages shown after a form's redirect (post/redirect/get). Kept here, keyed by a
    random id in the redirect's query, rather than carried in the URL: a crafted link cannot
    make the dashboard say anything."""

    def __init__(self, keep: int = 256) -> None:
        self._keep = keep
        self._notes: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def add(self, level: str, text: str) -> str:
        key = secrets.token_urlsafe(8)
        self._notes[key] = (level, text)
        while len(self._notes) > self._keep:
            self._notes.popitem(last=False)
        return key

    def pop(self, key: str | None) -> dict[str, str] | None:
        if not key or key not in self._notes:
            return None
        level, text = self._notes.pop(key)
        return {"level": level, "text": text}


async def refuse_nul(request: Request) -> None:
    """A NUL in a search field or a note reaches PostgreSQL as an error (a 500): refuse it first,
    as the API does."""
    values: list[Any] = [request.path_params, request.query_params.multi_items()]
    if request.method == "POST":
        values.append([value for _, value in (await request.form()).multi_items() if isinstance(value, str)])
    if has_nul(values):
        raise ApiError(422, "invalid_request", NUL_PROBLEM)


def dashboard_router(nexus: Nexus) -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(refuse_nul)])
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(
        stamp=present.stamp,
        duration=present.duration,
        ms=present.milliseconds,
        rate=present.rate,
        state_label=present.state_label,
        outcome=present.outcome,
    )
    env.globals.update(
        fields=lambda card: present.card_fields(card, utcnow()),
        bucket=present.bucket_fill,
        progress_text=lambda batch: _batch_text(batch.processed, batch.failed, batch.total),
    )
    notices = Notices()
    static_files = {path.name for path in STATIC.iterdir() if path.is_file()}
    live = LiveOverview(nexus)

    async def page(
        request: Request, principal: Principal, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        overview = await live.get()
        response = templates.TemplateResponse(
            request,
            template,
            {
                "principal": principal,
                "may_manage": principal.may_manage,
                "csrf": csrf_token(request),
                "alerts": overview["alerts"],
                "dead_letter_total": overview["dead_letters"],
                "notice": notices.pop(request.query_params.get("notice")),
                "channels": list(nexus.settings.channels),
                **context,
            },
            status_code=status_code,
            headers=SECURITY_HEADERS,
        )
        return response

    def login_redirect(request: Request) -> RedirectResponse:
        # Back to the page after signing in; a form's POST cannot be replayed, so the overview.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = f"{PREFIX}/"
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303)

    def back(path: str, level: str, text: str, query: dict[str, str] | None = None) -> RedirectResponse:
        params = {**(query or {}), "notice": notices.add(level, text)}
        return RedirectResponse(f"{PREFIX}{path}?{urlencode(params)}", status_code=303)

    Handler = Callable[[Request, Principal], Awaitable[Response]]

    def viewer(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page for any signed-in person; the sign-in page otherwise."""

        async def endpoint(request: Request) -> Response:
            principal = await session_principal(request)
            if principal is None:
                return login_redirect(request)
            return await handler(request, principal)

        endpoint.__name__ = handler.__name__
        return endpoint

    def manager(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A form that changes something: a `manage` session with the form's CSRF token, else a
        page saying why, with the status the API would answer (401, 403)."""

        async def endpoint(request: Request) -> Response:
            try:
                principal = await manage_access(request)
            except ApiError as error:
                if error.status == 401:
                    return login_redirect(request)
                return await refusal(request, error)
            return await handler(request, principal)

        endpoint.__name__ = handler.__name__
        return endpoint

    async def refusal(request: Request, error: ApiError) -> Response:
        principal = await session_principal(request)
        if principal is None:
            return HTMLResponse(error.message, status_code=error.status, headers=SECURITY_HEADERS)
        return await page(request, principal, "refused.html", status_code=error.status, error=error, nav="")

    # -- signing in and out -----------------------------------------------------------------

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": _local(request.query_params.get("next")), "failed": False},
            headers=SECURITY_HEADERS,
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "").strip()
        target = _local(str(form.get("next") or ""))
        response = RedirectResponse(target, status_code=303)
        principal = await sign_in(request, response, token) if token else None
        if principal is None:
            # Never echo the token back, not even into the form.
            return templates.TemplateResponse(
                request,
                "login.html",
                {"next": target, "failed": True},
                status_code=401,
                headers=SECURITY_HEADERS,
            )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        await sign_out(request, response)
        return response

    # -- static files -----------------------------------------------------------------------

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in static_files:  # only the files shipped here, never a path
            return Response(status_code=404)
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    # -- the overview and its live stream ---------------------------------------------------

    async def overview(request: Request, principal: Principal) -> Response:
        data = await live.get()
        return await page(request, principal, "overview.html", nav="overview", cards=data["cards"])

    router.add_api_route("/", viewer(overview), methods=["GET"])

    @router.get("/events")
    async def events(request: Request) -> Response:
        principal = await session_principal(request)
        if principal is None:
            return Response("sign in first", status_code=401)

        async def stream() -> AsyncIterator[str]:
            yield f"retry: {int(LIVE_INTERVAL * 1000)}\n\n"
            ends = time.monotonic() + STREAM_SECONDS
            while time.monotonic() < ends and not await request.is_disconnected():
                data = await live.get()
                yield f"event: overview\ndata: {json.dumps(live.wire(data))}\n\n"
                await asyncio.sleep(LIVE_INTERVAL)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def pause(request: Request, principal: Principal) -> Response:
        channel = request.path_params["channel"]
        form = await request.form()
        reason = str(form.get("reason") or "").strip() or None
        try:
            await nexus.channel_states.pause(channel, reason=reason, actor=principal.actor)
        except NexusError as exc:
            return back("/", "error", str(exc))
        await record_action(nexus.db, principal, "channel.pause", channel, {"reason": reason})
        live.forget()
        return back("/", "info", f"{channel} is paused: nothing is pushed to it until it is resumed.")

    async def resume(request: Request, principal: Principal) -> Response:
        channel = request.path_params["channel"]
        try:
            await nexus.channel_states.resume(channel, actor=principal.actor)
        except NexusError as exc:
            return back("/", "error", str(exc))
        await record_action(nexus.db, principal, "channel.resume", channel)
        live.forget()
        return back("/", "info", f"{channel} is resumed: its queued listings are pushed.")

    router.add_api_route("/channels/{channel}/pause", manager(pause), methods=["POST"])
    router.add_api_route("/channels/{channel}/resume", manager(resume), methods=["POST"])

    # -- batches ----------------------------------------------------------------------------

    async def batches(request: Request, principal: Principal) -> Response:
        offset = _int(request.query_params.get("offset"), 0)
        views, total = await list_batches(nexus.db, limit=PAGE_SIZE, offset=offset)
        opened = request.query_params.get("open")
        detail = None
        missing = None
        if opened:
            try:
                detail = await show_batch(nexus.db, opened)
            except NexusError as exc:
                missing = str(exc)
        return await page(
            request,
            principal,
            "batches.html",
            nav="batches",
            batches=views,
            total=total,
            offset=offset,
            pager=_pager(offset, len(views), total, request),
            detail=detail,
            missing=missing,
        )

    async def retry_batch(request: Request, principal: Principal) -> Response:
        batch_id = request.path_params["batch_id"]
        query = {"open": batch_id}
        try:
            result = await retry_failed(nexus.db, batch_id, actor=principal.actor)
        except NexusError as exc:
            return back("/batches", "error", str(exc), query)
        if result.channels:
            nexus.notify(result.channels)  # running workers push them now
        await record_action(nexus.db, principal, "batch.retry_failed", batch_id, result.as_dict())
        live.forget()
        text = f"{present.count(len(result.replaying), 'failed member')} of batch {batch_id} queued again."
        return back("/batches", "info", text, query)

    router.add_api_route("/batches", viewer(batches), methods=["GET"])
    router.add_api_route("/batches/{batch_id}/retry", manager(retry_batch), methods=["POST"])

    # -- the webhook log --------------------------------------------------------------------

    async def webhook_log(request: Request, principal: Principal) -> Response:
        query = request.query_params
        keys = ("channel", "topic", "status", "verified", "remote_id", "window", "from", "to")
        search = {key: (query.get(key) or "").strip() for key in keys}
        search["window"] = search["window"] if search["window"] in WINDOWS else "30d"
        offset = _int(query.get("offset"), 0)
        where, problem = _webhook_filter(search)
        page_ = await list_webhooks(nexus.db, where, limit=PAGE_SIZE, offset=offset)
        return await page(
            request,
            principal,
            "webhooks.html",
            nav="webhooks",
            search=search,
            deliveries=page_.items,
            page=page_,
            pager=_pager(offset, len(page_.items), page_.total, request),
            statuses=[str(status) for status in WebhookStatus],
            windows=WINDOW_LABELS,
            problem=problem,
            ranged=where.since is None,
            chart=present.day_chart(await webhook_days(nexus.db, days=30, channel=search["channel"] or None)),
        )

    async def webhook_detail(request: Request, principal: Principal) -> Response:
        log_id = _int(request.path_params["log_id"], -1)
        try:
            detail = await show_webhook(nexus.db, log_id)
        except NexusError as exc:
            return await page(
                request, principal, "missing.html", status_code=404, nav="webhooks", message=str(exc)
            )
        return await page(
            request,
            principal,
            "webhook.html",
            nav="webhooks",
            detail=detail,
            delivery=detail.delivery,
            headers_json=json.dumps(detail.headers, indent=2, sort_keys=True),
        )

    async def reprocess(request: Request, principal: Principal) -> Response:
        log_id = _int(request.path_params["log_id"], -1)
        path = f"/webhook-log/{log_id}"
        try:
            result = await reprocess_webhooks(nexus, [log_id])
        except NexusError as exc:
            return back(path, "error", str(exc))
        await record_action(nexus.db, principal, "webhook.reprocess", str(log_id), result.as_dict())
        status = result.statuses.get(log_id, "unknown")
        error = result.errors.get(log_id)
        return back(
            path,
            "error" if error else "info",
            f"Processed again: {status}" + (f" ({error})" if error else "."),
        )

    router.add_api_route("/webhook-log", viewer(webhook_log), methods=["GET"])
    router.add_api_route("/webhook-log/{log_id}", viewer(webhook_detail), methods=["GET"])
    router.add_api_route("/webhook-log/{log_id}/reprocess", manager(reprocess), methods=["POST"])

    # -- dead letters -----------------------------------------------------------------------

    async def dead_letters(request: Request, principal: Principal) -> Response:
        search = _letter_search(request.query_params)
        offset = _int(request.query_params.get("offset"), 0)
        where = _letter_filter(search)
        letters = await list_dead_letters(nexus.db, where, limit=PAGE_SIZE, offset=offset)
        return await page(
            request,
            principal,
            "dead_letters.html",
            nav="dead_letters",
            search=search,
            letters=letters.items,
            page=letters,
            pager=_pager(offset, len(letters.items), letters.total, request),
            selective=where.selective,
            statuses=list(LETTER_STATUSES),
            ages={"": "any age", "1h": "over an hour", "24h": "over a day", "7d": "over a week"},
        )

    async def dead_letter(request: Request, principal: Principal) -> Response:
        letter_id = _int(request.path_params["letter_id"], -1)
        try:
            detail = await show_dead_letter(nexus.db, letter_id)
        except NexusError as exc:
            return await page(
                request, principal, "missing.html", status_code=404, nav="dead_letters", message=str(exc)
            )
        return await page(
            request,
            principal,
            "dead_letter.html",
            nav="dead_letters",
            detail=detail,
            letter=detail.letter,
            payload_json=json.dumps(detail.payload, indent=2, sort_keys=True, default=str),
        )

    async def replay(request: Request, principal: Principal) -> Response:
        form = await request.form()
        ids = [_int(str(value), -1) for value in form.getlist("id")]
        search = _letter_search(form)
        kept = {key: value for key, value in search.items() if value}
        by_filter = form.get("scope") == "filter"
        try:
            if by_filter:
                # Only what the page's filter matched, never every dead letter at once: the
                # service refuses a filter that does not narrow the selection.
                result = await replay_dead_letters(
                    nexus.db,
                    None,
                    _letter_filter(search),
                    actor=principal.actor,
                    note="replayed from the dashboard",
                )
            else:
                if not ids:
                    return back("/dead-letters", "error", "Select the dead letters to replay first.", kept)
                result = await replay_dead_letters(
                    nexus.db, ids, None, actor=principal.actor, note="replayed from the dashboard"
                )
        except NexusError as exc:
            return back("/dead-letters", "error", str(exc), kept)
        if result.channels:
            nexus.notify(result.channels)  # running workers push them now
        detail = {**result.as_dict(), "filter": kept if by_filter else None}
        await record_action(
            nexus.db, principal, "dead_letters.replay", _targets(ids, kept, by_filter), detail
        )
        live.forget()
        text = (
            f"{present.count(len(result.replaying), 'dead letter')} queued for a push of what the listing "
            "should show now"
        )
        if result.gone:
            text += f"; {len(result.gone)} resolved (the listing is gone)"
        return back("/dead-letters", "info", text + ".", kept)

    async def resolve(request: Request, principal: Principal) -> Response:
        form = await request.form()
        ids = [_int(str(value), -1) for value in form.getlist("id")]
        kept = {key: value for key, value in _letter_search(form).items() if value}
        if not ids:
            return back("/dead-letters", "error", "Select the dead letters to resolve first.", kept)
        try:
            result = await resolve_dead_letters(
                nexus.db, ids, actor=principal.actor, note="resolved from the dashboard"
            )
        except NexusError as exc:
            return back("/dead-letters", "error", str(exc), kept)
        await record_action(
            nexus.db, principal, "dead_letters.resolve", _targets(ids, kept, False), result.as_dict()
        )
        live.forget()
        text = f"{present.count(len(result.resolved), 'dead letter')} resolved without a replay"
        if result.already:
            text += f"; {len(result.already)} already were"
        return back("/dead-letters", "info", text + ".", kept)

    router.add_api_route("/dead-letters", viewer(dead_letters), methods=["GET"])
    router.add_api_route("/dead-letters/replay", manager(replay), methods=["POST"])
    router.add_api_route("/dead-letters/resolve", manager(resolve), methods=["POST"])
    router.add_api_route("/dead-letters/{letter_id}", viewer(dead_letter), methods=["GET"])

    # -- push audit and health --------------------------------------------------------------

    async def audit(request: Request, principal: Principal) -> Response:
        query = request.query_params
        search = {key: (query.get(key) or "").strip() for key in ("channel", "sku", "status")}
        offset = _int(query.get("offset"), 0)
        error = None
        try:
            rows = await list_push_audit(
                nexus.db,
                channel=search["channel"] or None,
                sku=search["sku"] or None,
                status=search["status"] or None,
                limit=PAGE_SIZE,
                offset=offset,
            )
        except NexusError as exc:
            error = str(exc)
            rows = await list_push_audit(nexus.db, limit=PAGE_SIZE)
        return await page(
            request,
            principal,
            "audit.html",
            nav="audit",
            search=search,
            rows=rows.items,
            page=rows,
            pager=_pager(offset, len(rows.items), rows.total, request),
            statuses=PUSH_STATUSES,
            error=error,
            payload_json=lambda payload: json.dumps(payload, indent=2, sort_keys=True, default=str),
        )

    async def health(request: Request, principal: Principal) -> Response:
        data = await live.get()
        return await page(
            request,
            principal,
            "health.html",
            nav="health",
            rates=await health_rates(nexus),
            states={card.channel: card for card in data["cards"]},
        )

    router.add_api_route("/audit", viewer(audit), methods=["GET"])
    router.add_api_route("/health", viewer(health), methods=["GET"])
    return router


class LiveOverview:
    """The channel cards and the banner, read at most once per `CACHE_SECONDS` whoever asks:
    every open dashboard polls through its stream, and one read serves them all."""

    def __init__(self, nexus: Nexus) -> None:
        self.nexus = nexus
        self._read_at = -1.0
        self._data: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """A form just changed something: the next read is fresh."""
        self._data = None

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._data is None or time.monotonic() - self._read_at >= CACHE_SECONDS:
                cards = await channel_overview(self.nexus)
                now = utcnow()
                # The latest batches, finished ones too: a row must see its last update.
                latest, _ = await list_batches(self.nexus.db, limit=10)
                self._data = {
                    "cards": cards,
                    "alerts": present.alerts(cards),
                    "dead_letters": sum(card.dead_letters for card in cards),
                    "batches": latest,
                    "now": now,
                }
                self._read_at = time.monotonic()
            return self._data

    @staticmethod
    def wire(data: dict[str, Any]) -> dict[str, Any]:
        """What one live update carries: texts and fills, formatted as the page formats them."""
        now: datetime = data["now"]
        cards: list[ChannelCard] = data["cards"]
        return {
            "at": present.stamp(now),
            "cards": {card.channel: present.card_payload(card, now) for card in cards},
            "alerts": [alert.as_dict() for alert in data["alerts"]],
            "dead_letters": data["dead_letters"],
            "batches": {
                batch.id: {
                    "done": batch.processed + batch.failed,
                    "total": batch.total,
                    "text": _batch_text(batch.processed, batch.failed, batch.total),
                    "status": batch.status,
                }
                for batch in data["batches"]
            },
        }


def _batch_text(processed: int, failed: int, total: int) -> str:
    return f"{processed + failed:,} of {total:,} ({processed:,} pushed, {failed:,} failed)"


def _webhook_filter(search: dict[str, str]) -> tuple[WebhookFilter, str | None]:
    """The log's filter from the search form, and what was wrong with it (a bad date)."""
    problem = None
    days: dict[str, datetime | None] = {"from": None, "to": None}
    for key in days:
        if search[key]:
            try:
                days[key] = datetime.strptime(search[key], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                problem = f"{search[key]!r} is not a date (YYYY-MM-DD): not applied"
    until = days["to"] + timedelta(days=1) if days["to"] is not None else None  # the whole day
    statuses = {str(status) for status in WebhookStatus}
    where = WebhookFilter(
        channel=search["channel"] or None,
        topic=search["topic"] or None,
        status=WebhookStatus(search["status"]) if search["status"] in statuses else None,
        # A date range replaces the window: "from 1 March" must not stop at the last 30 days.
        since=None if days["from"] or until else WINDOWS[search["window"]],
        verified={"passed": True, "failed": False}.get(search["verified"]),
        remote_id=search["remote_id"] or None,
        received_from=days["from"],
        received_to=until,
    )
    return where, problem


def _letter_search(values: Any) -> dict[str, str]:
    search = {
        key: str(values.get(key) or "").strip()
        for key in ("channel", "sku", "error", "age", "status", "batch")
    }
    search["status"] = search["status"] if search["status"] in LETTER_STATUSES else "open"
    search["age"] = search["age"] if search["age"] in AGES else ""
    return search


def _letter_filter(search: dict[str, str]) -> DeadLetterFilter:
    return DeadLetterFilter(
        channel=search["channel"] or None,
        sku=search["sku"] or None,
        error=search["error"] or None,
        older_than=AGES[search["age"]],
        statuses=LETTER_STATUSES[search["status"]],
        batch=search["batch"] or None,
    )


def _targets(ids: list[int], kept: dict[str, str], by_filter: bool) -> str:
    if by_filter:
        return "filter " + ", ".join(f"{key}={value}" for key, value in sorted(kept.items()))
    return "dead letters " + ", ".join(str(letter_id) for letter_id in ids)


def _pager(offset: int, shown: int, total: int, request: Request) -> dict[str, Any]:
    """Previous/next links that keep the page's search."""

    def link(to: int) -> str:
        params = {
            key: value for key, value in request.query_params.items() if key not in ("offset", "notice")
        }
        params["offset"] = str(to)
        return f"{request.url.path}?{urlencode(params)}"

    return {
        "first": offset + 1 if shown else 0,
        "last": offset + shown,
        "total": total,
        "previous": link(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        "next": link(offset + shown) if offset + shown < total else None,
    }


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default


def _local(target: str | None) -> str:
    """Where to go after signing in: a dashboard path only, never another site."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"

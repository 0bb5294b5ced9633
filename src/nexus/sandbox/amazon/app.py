"""The ASGI app: LWA's token endpoint, Listings Items 2021-08-01, Feeds 2021-06-30, and the
presigned document URLs. Paths under `/_sandbox/` are not part of any Amazon API: the presigned
URLs play S3 under /_sandbox/s3, and the rest is the shared control surface
(`nexus.sandbox.control`; an edit is Seller Central's MFN quantity, a sale answers the
ORDER_CHANGE notification, a subscription subscribes an endpoint to the SNS topic for one
notification type).

Every SP-API response carries `x-amzn-RequestId`; every one but a 429 carries
`x-amzn-RateLimit-Limit` (the model marks it deprecated on 429). Errors are `{"errors":
[{"code", "message", "details"}]}`; a throttled request gets 429 `QuotaExceeded`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexus.sandbox.amazon.feeds import JSON_LISTINGS_FEED
from nexus.sandbox.control import ControlSurface, control_routes

if TYPE_CHECKING:
    from nexus.sandbox.amazon.sandbox import AmazonSandbox

Handler = Callable[[Request], Awaitable[Response]]
LISTINGS = "/listings/2021-08-01/items"
FEEDS = "/feeds/2021-06-30"
CONTROL = ControlSurface("Amazon", sale_key="notification", topic_key="notification_type")


def error(
    status: int, code: str, message: str, details: str = "", headers: dict[str, str] | None = None
) -> Response:
    body = {"errors": [{"code": code, "message": message, "details": details}]}
    return JSONResponse(
        body, status_code=status, headers={"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})}
    )


def build_app(sandbox: AmazonSandbox) -> Starlette:
    def operation(name: str, handler: Handler) -> Handler:
        """Authenticate, take a token from the operation's usage plan, stamp the headers."""

        async def endpoint(request: Request) -> Response:
            stats = sandbox.stats
            refusal = sandbox.check_token(request.headers.get("x-amz-access-token"))
            if refusal is not None:
                stats.unauthorized += 1
                return error(403, "Unauthorized", "Access to requested resource is denied.", refusal)
            stats.requests += 1
            stats.requests_by_operation[name] = stats.requests_by_operation.get(name, 0) + 1
            if not sandbox.plans.take(name):
                stats.throttled += 1
                return error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
            response = await handler(request)
            response.headers["x-amzn-RateLimit-Limit"] = str(sandbox.plans.rate(name))
            response.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
            return response

        return endpoint

    async def token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed by hand: Starlette's form parser needs an extra package.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        return sandbox.grant_token({key: values[0] for key, values in form.items()})

    async def search(request: Request) -> Response:
        if request.path_params["seller_id"] != sandbox.seller_id:
            return error(403, "Unauthorized", "Access to requested resource is denied.", "Unknown sellerId.")
        marketplace = _marketplace(request, sandbox.marketplace_id)
        if marketplace is not None:
            return marketplace
        try:
            size = int(request.query_params.get("pageSize", "10"))
            offset = (
                int(request.query_params.get("pageToken") or "0", 16)
                if request.query_params.get("pageToken")
                else 0
            )
        except ValueError:
            return error(400, "InvalidInput", "pageSize or pageToken is invalid.")
        if not 1 <= size <= 20:
            return error(400, "InvalidInput", "pageSize must be between 1 and 20.")
        listings = list(sandbox.store.listings.values())
        page = listings[offset : offset + size]
        included = _included(request)
        body: dict[str, Any] = {
            "numberOfResults": len(listings),
            "items": [sandbox.store.item(listing, included) for listing in page],
        }
        pagination: dict[str, str] = {}
        if offset + size < len(listings):
            pagination["nextToken"] = format(offset + size, "x")
        if offset > 0:
            pagination["previousToken"] = format(max(offset - size, 0), "x")
        if pagination:
            body["pagination"] = pagination
        return JSONResponse(body)

    async def get_item(request: Request) -> Response:
        found = _listing(request)
        if isinstance(found, Response):
            return found
        return JSONResponse(sandbox.store.item(found, _included(request)))

    async def patch_item(request: Request) -> Response:
        found = _listing(request)
        if isinstance(found, Response):
            return found
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "InvalidInput", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return error(400, "InvalidInput", "The request body must be a JSON object.")
        return JSONResponse(sandbox.patch(found.sku, body))

    def _listing(request: Request) -> Any:
        if request.path_params["seller_id"] != sandbox.seller_id:
            return error(403, "Unauthorized", "Access to requested resource is denied.", "Unknown sellerId.")
        marketplace = _marketplace(request, sandbox.marketplace_id)
        if marketplace is not None:
            return marketplace
        sku = request.path_params["sku"]
        listing = sandbox.store.listings.get(sku)
        if listing is None:
            # *unconfirmed*: the status and code Amazon uses for an unknown SKU.
            return error(404, "NOT_FOUND", f"Requested item '{sku}' not found.")
        return listing

    async def create_document(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        content_type = body.get("contentType") if isinstance(body, dict) else None
        if not isinstance(content_type, str) or not content_type:
            return error(400, "InvalidInput", "Invalid input", "contentType is required.")
        document = sandbox.feeds.create_document(content_type)
        url = _presigned(request, document.document_id)
        return JSONResponse({"feedDocumentId": document.document_id, "url": url}, status_code=201)

    async def get_document(request: Request) -> Response:
        document = sandbox.feeds.documents.get(request.path_params["document_id"])
        if document is None or document.content is None:
            return error(404, "NotFound", "The specified resource does not exist.")
        body: dict[str, Any] = {
            "feedDocumentId": document.document_id,
            "url": _presigned(request, document.document_id),
        }
        if document.compression:
            body["compressionAlgorithm"] = document.compression
        return JSONResponse(body)

    async def create_feed(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return error(400, "InvalidInput", "Invalid input", "The body must be a JSON object.")
        feed_type, marketplaces, document_id = (
            body.get("feedType"),
            body.get("marketplaceIds"),
            body.get("inputFeedDocumentId"),
        )
        if feed_type != JSON_LISTINGS_FEED:
            return error(
                400, "InvalidInput", "Invalid input", "The sandbox supports JSON_LISTINGS_FEED only."
            )
        if not isinstance(marketplaces, list) or not 1 <= len(marketplaces) <= 25:
            return error(400, "InvalidInput", "Invalid input", "marketplaceIds must hold 1 to 25 ids.")
        document = sandbox.feeds.documents.get(document_id) if isinstance(document_id, str) else None
        if document is None or document.content is None:
            return error(400, "InvalidInput", "Invalid input", "inputFeedDocumentId has no uploaded content.")
        feed = sandbox.feeds.create_feed(feed_type, [str(m) for m in marketplaces], document)
        return JSONResponse({"feedId": feed.feed_id}, status_code=202)

    async def get_feed(request: Request) -> Response:
        feed = sandbox.feeds.feeds.get(request.path_params["feed_id"])
        if feed is None:
            return error(404, "NotFound", "The specified resource does not exist.")
        return JSONResponse(feed.as_json())

    async def s3_object(request: Request) -> Response:
        """The presigned URL (S3's role): PUT the feed content, GET a result document."""
        document = sandbox.feeds.documents.get(request.path_params["document_id"])
        if document is None:
            return Response(
                _s3_error("NoSuchKey", "The specified key does not exist."), 404, media_type="application/xml"
            )
        if request.method == "PUT":
            if request.headers.get("content-type") != document.content_type:
                # The presigned URL signs the content type given to createFeedDocument.
                message = "The request signature we calculated does not match the signature you provided."
                return Response(
                    _s3_error("SignatureDoesNotMatch", message), 403, media_type="application/xml"
                )
            document.content = await request.body()
            return Response(status_code=200)
        if document.content is None:
            return Response(
                _s3_error("NoSuchKey", "The specified key does not exist."), 404, media_type="application/xml"
            )
        return Response(document.content, media_type=document.content_type)

    def info() -> dict[str, Any]:
        return {
            "seller_id": sandbox.seller_id,
            "marketplace_id": sandbox.marketplace_id,
            "sns_topic_arn": sandbox.sns.arn,
            "listings": len(sandbox.store.listings),
        }

    return Starlette(
        routes=[
            Route("/auth/o2/token", token, methods=["POST"]),
            Route(f"{LISTINGS}/{{seller_id}}", operation("searchListingsItems", search), methods=["GET"]),
            Route(
                f"{LISTINGS}/{{seller_id}}/{{sku:path}}",
                operation("getListingsItem", get_item),
                methods=["GET"],
            ),
            Route(
                f"{LISTINGS}/{{seller_id}}/{{sku:path}}",
                operation("patchListingsItem", patch_item),
                methods=["PATCH"],
            ),
            Route(f"{FEEDS}/documents", operation("createFeedDocument", create_document), methods=["POST"]),
            Route(
                f"{FEEDS}/documents/{{document_id}}",
                operation("getFeedDocument", get_document),
                methods=["GET"],
            ),
            Route(f"{FEEDS}/feeds", operation("createFeed", create_feed), methods=["POST"]),
            Route(f"{FEEDS}/feeds/{{feed_id}}", operation("getFeed", get_feed), methods=["GET"]),
            Route("/_sandbox/s3/{document_id}", s3_object, methods=["GET", "PUT"]),
            *control_routes(sandbox, CONTROL, info=info),
        ]
    )


def _included(request: Request) -> set[str]:
    value = request.query_params.get("includedData") or "summaries"
    return {part.strip() for part in value.split(",") if part.strip()}


def _marketplace(request: Request, expected: str) -> Response | None:
    given = request.query_params.get("marketplaceIds")
    if not given:
        return error(400, "InvalidInput", "Missing required 'marketplaceIds'.")
    if "," in given:
        return error(400, "InvalidInput", "Only one marketplaceId is supported per request.")
    if given != expected:
        return error(400, "InvalidInput", f"The marketplace '{given}' is not one of the seller's.")
    return None


def _presigned(request: Request, document_id: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/_sandbox/s3/{document_id}?X-Amz-Signature={uuid.uuid4().hex}"


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()

"""Every error the API answers has one JSON shape, with a stable code a script can test:

    {"error": {"code": "not_found", "message": "no dead letter 42", "detail": {}}}

Codes: `unauthenticated` (401), `forbidden` and `csrf` (403), `not_found` (404),
`method_not_allowed` (405), `conflict` (409), `invalid_request` (422, FastAPI's validation),
`unfiltered` (422, a bulk action without a selection or filter), `internal` (500: no traceback and
no exception text in the answer; the log has it).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "error_body", "install_error_handlers"]

log = structlog.get_logger("nexus.web")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or {}


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


def _json(status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, detail), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _json(exc.status, exc.code, exc.message, exc.detail)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        return _json(exc.status_code, code, str(exc.detail))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"where": ".".join(str(part) for part in error.get("loc", ())), "problem": error.get("msg", "")}
            for error in exc.errors()
        ]
        return _json(422, "invalid_request", "the request does not match the API", {"problems": problems})

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # The type only: an exception's text may carry a URL with credentials or a payload.
        log.error("api request failed", path=request.url.path, error=type(exc).__name__)
        return _json(500, "internal", "internal error; the server log has the details")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, internal)

"""The API's OpenAPI document describes every answer, and its reference page works offline:
served by the app, listing every operation, loading nothing from another site."""

from __future__ import annotations

import re
from html import escape

from tests.web.api.conftest import PREFIX, Api

SUCCESS = {"200", "201", "202"}


async def test_the_document_describes_every_answer(api: Api) -> None:
    served = await api.client.get(f"{PREFIX}/openapi.json")
    assert served.status_code == 200
    document = served.json()
    assert document == (await api.client.get("/openapi.json")).json()
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith(PREFIX)
        for method, operation in item.items()
    ]
    assert len(operations) == 28
    for path, method, operation in operations:
        [success] = [code for code in operation["responses"] if code in SUCCESS]
        schema = operation["responses"][success]["content"]["application/json"]["schema"]
        assert "$ref" in schema, (method, path)  # a named model, not "any"
        assert {"401", "403", "422"} <= set(operation["responses"]), (method, path)
        assert operation["x-required-role"] == ("view" if method == "get" else "manage"), (method, path)


async def test_the_reference_page_lists_every_operation_offline(api: Api) -> None:
    page = await api.client.get("/nexus/api/docs")  # no token: it documents, it shows no data
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    document = (await api.client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert f"id='op-{method}" in html
            assert escape(path) in html, path
            assert escape(operation["summary"]) in html, operation["summary"]
    assert "role: manage" in html and "role: view" in html
    assert "Idempotency-Key" in html and "DeadLetterSelectionIn" in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html

    for cdn_page in ("/docs", "/redoc"):  # FastAPI's pages load their assets from a CDN: off
        assert (await api.client.get(cdn_page)).status_code == 404

"""The API's reference page, served by the app itself: `/nexus/api/docs`.

FastAPI's Swagger UI loads its script and style from a CDN, which an offline or locked-down
deployment cannot reach; this page is plain HTML built on the server from the app's own OpenAPI
document (every operation: method, path, summary, the role it needs, parameters, request body
and answers; then every schema), with an inline style sheet and no script. The document itself
is served at `/nexus/api/v1/openapi.json` (and FastAPI's `/openapi.json`).
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from nexus.web.api.common import ROLE_KEY

DOCS_PATH = "/nexus/api/docs"
OPENAPI_PATH = "/nexus/api/v1/openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 1.5rem;color:#1b1b1b}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:2px solid #ccc}
code,.path{font-family:ui-monospace,monospace}
.op{border:1px solid #bbb;border-radius:6px;margin:1rem 0;padding:.6rem .9rem}
.op h3{margin:.1rem 0 .4rem;font-size:1.05rem}
.method{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}
.role{float:right;border:1px solid #555;border-radius:4px;padding:0 .4rem;font-size:.85rem}
table{border-collapse:collapse;margin:.3rem 0 .6rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}
nav ul{columns:2}
"""


def docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_PATH)
    async def api_docs(request: Request) -> HTMLResponse:
        return HTMLResponse(render_docs(request.app.openapi()))

    @router.get(OPENAPI_PATH)
    async def api_openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    return router


def render_docs(document: dict[str, Any]) -> str:
    """The reference page of an OpenAPI document, as one HTML string."""
    info = document.get("info", {})
    operations = [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(info.get('title', 'API'))} API reference</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'API'))} API reference</h1>",
        f"<p>Version {escape(str(info.get('version', '')))}. "
        "Send <code>Authorization: Bearer &lt;token&gt;</code> "
        "(<code>nexus token create NAME --role view|manage</code>). Errors answer "
        '<code>{"error": {"code", "message", "detail"}}</code>. '
        f"The machine-readable document: <a href='{OPENAPI_PATH}'><code>{OPENAPI_PATH}</code></a>.</p>",
        "<nav><h2>Operations</h2><ul>",
    ]
    for path, method, _ in operations:
        parts.append(
            f"<li><a href='#{_anchor(method, path)}'><span class='method'>{method}</span>"
            f"<span class='path'>{escape(path)}</span></a></li>"
        )
    parts.append("</ul></nav><h2>Operations</h2>")
    parts.extend(_operation(path, method, operation) for path, method, operation in operations)
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        parts.append("<h2>Schemas</h2>")
        parts.extend(_schema(name, schema) for name, schema in schemas.items())
    parts.append("</body></html>")
    return "".join(parts)


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    role = operation.get(ROLE_KEY)
    parts = [
        f"<section class='op' id='{_anchor(method, path)}'>",
        f"<h3><span class='method'>{method}</span> <span class='path'>{escape(path)}</span>",
        f"<span class='role'>role: {escape(role)}</span>" if role else "<span class='role'>open</span>",
        "</h3>",
        f"<p>{escape(operation.get('summary', ''))}</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>about</th></tr>"
        )
        for parameter in parameters:
            schema = parameter.get("schema", {})
            parts.append(
                f"<tr><td><code>{escape(parameter.get('name', ''))}</code></td>"
                f"<td>{escape(parameter.get('in', ''))}</td><td>{escape(_type(schema))}</td>"
                f"<td>{'yes' if parameter.get('required') else 'no'}</td>"
                f"<td>{escape(parameter.get('description') or schema.get('description') or '')}</td></tr>"
            )
        parts.append("</table>")
    body = operation.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            required = "required" if body.get("required") else "optional"
            shape = _linked(_type(content.get("schema", {})))
            parts.append(f"<p>Request body ({escape(media)}, {required}): {shape}</p>")
    responses = operation.get("responses", {})
    if responses:
        parts.append("<table><tr><th>answer</th><th>body</th><th>when</th></tr>")
        for status, response in responses.items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            parts.append(
                f"<tr><td>{escape(str(status))}</td><td>{_linked(_type(schema)) if schema else '-'}</td>"
                f"<td>{escape(response.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</section>")
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    parts = [f"<section class='op' id='schema-{escape(name)}'><h3>{escape(name)}</h3>"]
    if schema.get("description"):
        parts.append(f"<p>{escape(schema['description'])}</p>")
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    if properties:
        parts.append("<table><tr><th>field</th><th>type</th><th>required</th><th>about</th></tr>")
        for field, definition in properties.items():
            parts.append(
                f"<tr><td><code>{escape(field)}</code></td><td>{_linked(_type(definition))}</td>"
                f"<td>{'yes' if field in required else 'no'}</td>"
                f"<td>{escape(definition.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    elif "enum" in schema:
        parts.append(f"<p>One of: {escape(', '.join(str(value) for value in schema['enum']))}</p>")
    parts.append("</section>")
    return "".join(parts)


def _type(schema: dict[str, Any] | None) -> str:
    """A schema as a short type expression: `Page_ItemOut_`, `list[int]`, `string | null`."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type(option) for option in schema[key])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type(schema["allOf"][0])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type(schema.get('items'))}]"
    if "enum" in schema:
        return " | ".join(repr(value) for value in schema["enum"])
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[string, {_type(schema['additionalProperties'])}]"
    text = str(kind)
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text


def _linked(expression: str) -> str:
    """The type expression with each schema name a link to its section below."""
    words = []
    for word in expression.replace("[", " [ ").replace("]", " ] ").replace("|", " | ").split():
        if word[:1].isupper() and word.replace("_", "").isalnum():
            words.append(f"<a href='#schema-{escape(word)}'>{escape(word)}</a>")
        else:
            words.append(escape(word))
    return " ".join(words).replace(" [ ", "[").replace(" ]", "]")


def _anchor(method: str, path: str) -> str:
    cleaned = "".join(char if char.isalnum() else "-" for char in path)
    return escape(f"op-{method}{cleaned}")

"""/api/v1/docs: the OpenAPI document as a page people can read, rendered on the server.

Swagger UI and ReDoc load their scripts from a CDN, which a workshop network or an offline machine may not
reach; this page needs nothing but the document, and every text in it is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1f}
code,pre{font-family:ui-monospace,monospace;background:#f2f2f5;border-radius:4px;padding:0 .25rem}
.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.method{font-weight:700;text-transform:uppercase;margin-right:.5rem}
table{border-collapse:collapse}
td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left;vertical-align:top}
"""


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    return str(schema.get("type", "any"))


def _parameters(operation: dict[str, Any]) -> str:
    rows = []
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        required = "required" if parameter.get("required") else ""
        default = f" (default {schema['default']!r})" if "default" in schema else ""
        rows.append(
            f"<tr><td><code>{escape(parameter['name'])}</code></td><td>{escape(parameter['in'])}</td>"
            f"<td>{escape(_schema_name(schema))}{escape(default)}</td><td>{required}</td></tr>"
        )
    if not rows:
        return ""
    return "<table><tr><th>Parameter</th><th>In</th><th>Type</th><th></th></tr>" + "".join(rows) + "</table>"


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    parts = [f"<code>{escape(media)}</code>: {escape(_schema_name(spec.get('schema', {})))}"
             for media, spec in content.items()]  # fmt: skip
    return f"<p>Body: {', '.join(parts)}</p>" if parts else ""


def _responses(operation: dict[str, Any]) -> str:
    items = [f"<code>{escape(str(status))}</code> {escape(spec.get('description', ''))}"
             for status, spec in operation.get("responses", {}).items()]  # fmt: skip
    return "<p>Answers: " + "; ".join(items) + "</p>"


def _security(operation: dict[str, Any]) -> str:
    return "<p>Token: <code>Authorization: Bearer exact_…</code></p>" if operation.get("security") else ""


def render_docs(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    sections = []
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            sections.append(
                f'<div class="op"><h3><span class="method">{escape(method)}</span><code>/api/v1{escape(path)}</code>'
                f"</h3><p>{escape(operation.get('summary', ''))}</p>{_security(operation)}{_parameters(operation)}"
                f"{_body(operation)}{_responses(operation)}</div>"
            )
    schemas = document.get("components", {}).get("schemas", {})
    models = []
    for name, schema in schemas.items():
        fields = ", ".join(
            f"<code>{escape(field)}</code> ({escape(_schema_name(spec))})"
            for field, spec in schema.get("properties", {}).items()
        )
        models.append(f"<li><b>{escape(name)}</b>: {fields}</li>")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(info.get('title', 'API'))}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(info.get('title', 'API'))} v{escape(str(info.get('version', '')))}</h1>"
        f"<p>{escape(info.get('summary', ''))}</p><p>{escape(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3). From a '
        "terminal: <code>python -m exact submit --help</code>.</p>"
        f"<h2>Endpoints</h2>{''.join(sections)}<h2>Shapes</h2><ul>{''.join(models)}</ul></body></html>"
    )

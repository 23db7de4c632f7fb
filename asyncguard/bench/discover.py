"""`asyncguard bench APP --discover`: the endpoints to measure, read from the app's own OpenAPI schema.

A GET without required parameters is measured as it is; any other operation where the schema gives an example for
each required part (path and query parameters, a JSON request body: `example`, `examples`, a schema's `example` or
`examples`, a parameter's `default`). What cannot be called so is skipped, and said why. `--print-scenario` writes
the same as a scenario file instead, for the user to edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from asyncguard.bench.manifest import Endpoint

METHODS = ("get", "post", "put", "patch", "delete")
NO_EXAMPLE = object()


@dataclass(frozen=True)
class Skipped:
    method: str
    path: str
    why: str


def discovered(schema: dict) -> tuple[list[Endpoint], list[Skipped]]:
    """The operations of an OpenAPI document that can be called with what it gives, and the others with why not."""
    endpoints, skipped = [], []
    for path, item in sorted((schema.get("paths") or {}).items()):
        for method in METHODS:
            operation = item.get(method) if isinstance(item, dict) else None
            if not isinstance(operation, dict):
                continue
            try:
                endpoints.append(request_of(schema, path, method, operation, item.get("parameters", [])))
            except LookupError as missing:
                skipped.append(Skipped(method.upper(), path, str(missing.args[0])))
    return endpoints, skipped


def request_of(schema: dict, path: str, method: str, operation: dict, shared: list) -> Endpoint:
    """The request an operation's examples make; LookupError names the first required part that has none."""
    query, filled = {}, path
    for parameter in [*shared, *operation.get("parameters", [])]:
        parameter = resolved(schema, parameter)
        place, name = parameter.get("in"), parameter.get("name", "")
        value = example_of(schema, parameter)
        if value is NO_EXAMPLE:
            if parameter.get("required") or place == "path":
                raise LookupError(f"{place} parameter `{name}` has no example")
            continue
        if place == "path":
            filled = filled.replace(f"{{{name}}}", quote(str(value), safe=""))
        elif place == "query" and parameter.get("required"):
            query[name] = value
    headers, body = (), None
    content = (resolved(schema, operation.get("requestBody") or {})).get("content") or {}
    if content:
        media = content.get("application/json")
        value = example_of(schema, media) if isinstance(media, dict) else NO_EXAMPLE
        if value is NO_EXAMPLE:
            if (operation.get("requestBody") or {}).get("required") or media is None:
                raise LookupError("request body has no JSON example" if media is not None else
                                  f"request body is {', '.join(content)}, not JSON")
        else:
            headers, body = (("Content-Type", "application/json"),), json.dumps(value)
    return Endpoint(method.upper(), filled + (f"?{urlencode(query, doseq=True)}" if query else ""), headers, body)


def example_of(schema: dict, holder: dict) -> Any:
    """The first example a parameter or media type gives, its own or its schema's, else NO_EXAMPLE."""
    if "example" in holder:
        return holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict) and examples:
        first = resolved(schema, next(iter(examples.values())))
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    inner = resolved(schema, holder.get("schema") or {})
    if "example" in inner:
        return inner["example"]
    if isinstance(inner.get("examples"), list) and inner["examples"]:
        return inner["examples"][0]
    if "default" in inner and "in" in holder:
        return inner["default"]
    return NO_EXAMPLE


def resolved(schema: dict, node: Any) -> Any:
    """A `$ref` followed within the document (a few levels), or the node itself."""
    for _ in range(8):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str) or not node["$ref"].startswith("#/"):
            return node
        target: Any = schema
        for part in node["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
    return node


def scenario_text(app: str, endpoints: list[Endpoint], skipped: list[Skipped]) -> str:
    """A scenario file of the discovered endpoints, the skipped ones as comments (`asyncguard.bench.scenario`)."""
    import tomli_w

    entries = []
    for endpoint in endpoints:
        entry: dict[str, Any] = {"method": endpoint.method, "path": endpoint.path}
        if endpoint.body is not None:
            value = json.loads(endpoint.body)
            if isinstance(value, dict) and not has_null(value):
                entry["json"] = value
            else:  # TOML has no null, and `json` takes a table
                entry["body"], entry["content_type"] = endpoint.body, "application/json"
        entries.append(entry)
    notes = "".join(f"# skipped {s.method} {s.path}: {s.why}\n" for s in skipped)
    server = {"url": app} if app.startswith("http://") else {"app": app}
    return notes + tomli_w.dumps({**server, "endpoint": entries})


def has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(has_null(item) for item in value)
    return value is None

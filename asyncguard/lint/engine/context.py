"""Where a function runs, in FastAPI's words: "path operation GET /users/{user_id}", "dependency get_db".

The facts are collected while the module is walked (decorators, `Depends(...)`, `FastAPI(lifespan=...)`,
`add_task(...)`, `StreamingResponse(...)`, middleware classes) and read once the walk is over, so a dependency
declared after its use is still named as one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable

from asyncguard.lint.engine.syntax import keyword, own_nodes, positional, string_value, unstarred

if TYPE_CHECKING:
    from asyncguard.lint.engine.analysis import Resolver, Scope

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options", "trace")
ROUTE_HOLDERS = ("FastAPI", "APIRouter", "Starlette", "Router")
STREAMING_RESPONSES = frozenset({"StreamingResponse", "EventSourceResponse"})
"""Responses that iterate their content: an async iterator on the loop, a sync one in Starlette's threadpool."""
SERVERS = ("uvicorn.", "hypercorn.", "granian.")
"""ASGI servers a module may start itself (`await uvicorn.Server(config).serve()`) on its coroutines' loop."""


@dataclass(eq=False)
class FunctionFrame:
    """A function (or lambda) being walked, and whether its body runs on the event loop."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    name: str
    is_async: bool
    class_path: str | None
    parent: "FunctionFrame | None"
    on_loop: bool
    offloaded_names: set[str] = field(default_factory=set)
    owner: str | None = None
    """For code off the loop: the qualified name of the sync function whose summary its calls go into (itself, or
    the function that calls this nested one directly); None where nothing would run it (a lambda)."""
    from_parameters: dict[str, tuple[str, tuple[tuple[str, bool], ...]]] = field(default_factory=dict)
    """Locals made by calls on an untyped parameter (`cur` of `with conn.cursor() as cur`): the parameter and the
    steps from it, so that `cur.execute(...)` is weighed as `conn.cursor().execute(...)` at each caller."""

    @property
    def qualname(self) -> str:
        own = f"{self.class_path.rsplit('.', 1)[-1]}.{self.name}" if self.class_path else self.name
        return f"{self.parent.qualname}.{own}" if self.parent else own

    @cached_property
    def direct_calls(self) -> set[str]:
        """Names called in this body itself (not in nested functions): `helper()` runs where we run."""
        return self._calls_in_body[0]

    @cached_property
    def streamed_calls(self) -> set[str]:
        """Names called only as a streaming response's content (`StreamingResponse(chunks())`): a sync generator
        called there runs in the threadpool, a plain function that builds the iterator runs here."""
        return self._calls_in_body[1] - self._calls_in_body[0]

    @cached_property
    def _calls_in_body(self) -> tuple[set[str], set[str]]:
        found: set[str] = set()
        streamed: set[str] = set()
        contents: set[int] = set()
        for node in own_nodes(self.node.body):  # in source order: a response before its content
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name):
                    (streamed if id(node) in contents else found).add(node.func.id)
                if called_name(node) in STREAMING_RESPONSES:
                    contents.add(id(streamed_content(node)))
        return found, streamed


@dataclass
class FastApiFacts:
    """Roles the module gives its functions, by name or by the function node itself."""

    roles: dict[int, str] = field(default_factory=dict)
    """Role of a decorated function, by `id(node)`."""
    named_roles: dict[str, str] = field(default_factory=dict)
    """Role of a function referred to by name (`Depends(get_db)`, `lifespan=lifespan`)."""
    sync_on_loop: set[int] = field(default_factory=set)
    """Plain `def`s that run on the loop all the same (`@app.on_event("startup")`), by `id(node)`."""
    middleware_classes: set[str] = field(default_factory=set)
    router_prefixes: dict[str, str] = field(default_factory=dict)
    builds_app: bool = False
    """The module builds an application or router (`FastAPI()`, `APIRouter()`)."""
    serves: bool = False
    """The module starts an ASGI server itself (`SERVERS`)."""
    runs_own_loop: bool = False
    """The module runs a coroutine to completion itself: `asyncio.run(main())`, `anyio.run(main)` or
    `loop.run_until_complete(main())`, under `if __name__ == "__main__":` or at module level."""
    loop_entries: set[str] = field(default_factory=set)
    """The functions whose coroutines it runs so (`main`)."""

    @property
    def is_script(self) -> bool:
        """A script's coroutines run on the event loop it starts, not on a server's: it runs one itself and builds
        no app or router, registers no route, dependency or handler, and starts no server."""
        return self.runs_own_loop and not (self.builds_app or self.serves or self.roles or self.named_roles
                                           or self.middleware_classes)

    def note_class(self, node: ast.ClassDef, path: str, resolver: "Resolver", scope: "Scope") -> None:
        for base in node.bases:
            value = resolver.infer(base, scope)
            name = value.path if value else ""
            if name.endswith("BaseHTTPMiddleware"):
                self.middleware_classes.add(path)

    def note_decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef, resolver: "Resolver", scope: "Scope"
                        ) -> None:
        for expr in node.decorator_list:
            if not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Attribute):
                continue
            method = expr.func.attr
            holder = expr.func.value
            prefix = self.router_prefixes.get(holder.id, "") if isinstance(holder, ast.Name) else ""
            path = _firststring_value(expr)
            role = None
            if method in HTTP_METHODS:
                role = f"path operation {method.upper()} {prefix}{path or ''}".rstrip()
            elif method in {"api_route", "route"}:
                methods = _string_list(keyword(expr, "methods")) or ["GET"]
                role = f"path operation {','.join(m.upper() for m in methods)} {prefix}{path or ''}".rstrip()
            elif method in {"websocket", "websocket_route"}:
                role = f"websocket handler {prefix}{path or ''}".rstrip()
            elif method == "middleware":
                role = "middleware"
            elif method == "exception_handler":
                role = "exception handler"
            elif method == "on_event":
                role = f"{path or 'event'} handler"
                if isinstance(node, ast.FunctionDef):  # Starlette calls a sync event handler on the loop itself
                    self.sync_on_loop.add(id(node))
            if role:
                self.roles[id(node)] = role

    def note_call(self, call: ast.Call, resolver: "Resolver", scope: "Scope") -> None:
        name = called_name(call)
        if name in {"Depends", "Security"}:
            target = positional(call, 0) or keyword(call, "dependency")
            self._name_role(target, lambda name: f"dependency {name}")
        elif name in ROUTE_HOLDERS:
            self.builds_app = True
            self._name_role(keyword(call, "lifespan"), lambda name: "lifespan")
        elif name == "add_task":
            self._name_role(positional(call, 0), lambda name: f"background task {name}")
        elif name in STREAMING_RESPONSES:
            content = streamed_content(call)
            if isinstance(content, ast.Call):
                content = content.func
            self._name_role(content, lambda name: f"streaming response generator {name}")
        elif name == "add_exception_handler":
            self._name_role(positional(call, 1), lambda name: "exception handler")
        elif name in {"add_api_route", "add_route", "add_websocket_route"}:
            path = _firststring_value(call) or ""
            methods = _string_list(keyword(call, "methods")) or ["GET"]
            kind = "websocket handler" if "websocket" in name else f"path operation {','.join(methods).upper()}"
            self._name_role(positional(call, 1) or keyword(call, "endpoint"), lambda name: f"{kind} {path}")
        elif name == "add_middleware":
            target = positional(call, 0)
            value = resolver.infer(target, scope) if target is not None else None
            if value is not None:
                self.middleware_classes.add(value.path)

    def note_router(self, name: str, call: ast.Call) -> None:
        prefix = string_value(keyword(call, "prefix"))
        if prefix:
            self.router_prefixes[name] = prefix

    def _name_role(self, target: ast.expr | None, role: Callable[[str], str]) -> None:
        """The role of the function `target` names, from its name (never `str.format`: a route path such as
        `/items/{item_id}` is part of the role)."""
        name = target.id if isinstance(target, ast.Name) else \
            target.attr if isinstance(target, ast.Attribute) else None
        if name is not None:
            self.named_roles.setdefault(name, role(name))

    def describe(self, frame: "FunctionFrame") -> str:
        """ "in path operation GET /x", "in dependency get_db", "in nested function f (in middleware)"."""
        if not frame.is_async and frame.parent is not None:
            kind = "lambda" if isinstance(frame.node, ast.Lambda) else f"nested function {frame.name}"
            return f"in {kind} ({self.describe(frame.parent)})"
        role = self.roles.get(id(frame.node))
        if role is None and frame.class_path is not None:
            if frame.class_path in self.middleware_classes and frame.name in {"dispatch", "__call__"}:
                role = f"middleware {frame.class_path.rsplit('.', 1)[-1]}"
        if role is None and frame.parent is None:
            role = self.named_roles.get(frame.name)
        if role is None and "lifespan" in frame.name and frame.parent is None:
            role = "lifespan"
        if role is None:
            role = f"{'method' if frame.class_path else 'async function'} {frame.qualname}"
        return f"in {role}"


def called_name(call: ast.Call) -> str:
    """The last name of what is called: `StreamingResponse` of `responses.StreamingResponse(...)`."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def streamed_content(call: ast.Call) -> ast.expr | None:
    """What a streaming response iterates: its first argument or `content=`."""
    return positional(call, 0) or keyword(call, "content")


def _firststring_value(call: ast.Call) -> str | None:
    return string_value(positional(call, 0)) or string_value(keyword(call, "path"))


def _string_list(node: ast.expr | None) -> list[str]:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [s for s in (string_value(unstarred(e)) for e in node.elts) if s]
    return []

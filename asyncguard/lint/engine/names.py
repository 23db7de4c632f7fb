"""The checked tree as a whole: names imported from the project's own modules resolve to what those modules bind.

`from app.db import SessionLocal` then `db = SessionLocal()` in a handler is a direct blocking call whose type is
only known in `app/db.py`. Modules are indexed on demand (parsed once per process) and every module a file's
analysis consulted is recorded, so the cache can tell when that file's findings must be recomputed.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from asyncguard.lint.engine.context import HTTP_METHODS
from asyncguard.lint.engine.syntax import FUNCTIONS, NESTED_SCOPES, child_fields, child_nodes, parse
from asyncguard.lint.interface.files import absolute_module

if TYPE_CHECKING:
    from asyncguard.lint.engine.analysis import ModuleIndex, Value
    from asyncguard.lint.knowledge.base import Knowledge

STANDARD_LIBRARY = frozenset(getattr(sys, "stdlib_module_names", ())) | {"builtins"}
IMPORT_STATEMENT = re.compile(r"^[ \t]*(?:from[ \t]+\S+[ \t]+)?import[ \t]+(?:\([^)]*\)|[^\n]*)", re.MULTILINE)
"""An import statement's text, in parentheses too (read off the source, before any parse)."""
PROPERTY_DECORATORS = frozenset({"property", "cached_property"})
"""`@property`, `@functools.cached_property`: reading the attribute calls the method."""
UNWRAPPED_ANNOTATIONS = frozenset({
    "Optional", "Annotated", "Union", "Iterator", "Iterable", "Generator", "AsyncIterator", "AsyncIterable",
    "AsyncGenerator",
})
"""Annotations whose first type argument is the type that matters (`Optional[Session]`, `Iterator[Session]`)."""
UNINFORMATIVE_ANNOTATIONS = UNWRAPPED_ANNOTATIONS | {"Any", "object", "ContextManager", "AbstractContextManager",
                                                      "Callable", "Awaitable", "Coroutine"}
"""Return annotations that, unparameterised, name no type a call could be resolved on."""
ABSTRACT_BASES = frozenset({"typing.Protocol", "typing_extensions.Protocol", "abc.ABC"})
"""Bases of an interface: a call of its method runs the implementation's."""
STATE_ASSIGNMENT = re.compile(r"\.state\.(\w+)\s*(?::[^=\n]*)?=(?!=)")
"""`request.state.db = ...`, `app.state.redis: Redis = ...`: where a state holder's attribute may be set."""
LITERALS = (ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Lambda)
KEPT_SOURCE = 4_000_000
"""Characters of source whose parsed trees are kept for reuse (a tree takes some 30 bytes a character): a whole
service's, not a whole site-packages'."""


def search_roots(modules: Iterable[tuple[str, Path]]) -> list[Path]:
    """For `app/routers/users.py` imported as `app.routers.users`: the directory that holds `app/`."""
    roots = {path.parents[name.count(".")] for name, path in modules if len(path.parents) > name.count(".")}
    return sorted(roots)


def module_keys(modules: Iterable[tuple[str, Path]]) -> dict[str, Path]:
    """Every dotted suffix of every module name, kept where it is unambiguous: `src.app.db` is also `app.db`.

    Imports name modules from wherever the application's root is, which need not be the checked directory.
    """
    full: dict[str, Path] = {}
    suffixes: dict[str, Path | None] = {}
    for name, path in modules:
        full[name] = path
        parts = name.split(".")
        for start in range(1, len(parts)):
            key = ".".join(parts[start:])
            suffixes[key] = path if suffixes.get(key, path) == path else None
    return {**{k: v for k, v in suffixes.items() if v is not None}, **full}


def full_names(modules: dict[str, Path]) -> dict[Path, str]:
    """Each module file's full name: its longest key (the shorter ones are suffixes, `db` of `app.db`)."""
    full: dict[Path, str] = {}
    for name, path in modules.items():
        if len(name) > len(full.get(path, "")):
            full[path] = name
    return full


def without_library_suffixes(modules: dict[str, Path], libraries: frozenset[str]) -> dict[str, Path]:
    """The module keys but the suffixes that start with a library's name: `from celery import Celery` in a service
    with a `services/celery/` package means the library (only the full name `app.services.celery` is the
    project's)."""
    kept = set(full_names(modules).values())
    return {name: path for name, path in modules.items() if name in kept or name.split(".", 1)[0] not in libraries}


def layout(files: Iterable) -> tuple[dict[str, Path], list[Path]]:
    """The checked files as a project: module keys (`module_keys`) and search roots (`search_roots`)."""
    named = [(source.module, source.path) for source in files]
    return module_keys(named), search_roots(named)


@dataclass
class Outline:
    """What a module binds, read from its `ast` at a glance: enough to tell whether indexing the module fully can
    tell anything about a name."""

    assigned: set[str] = field(default_factory=set)
    """Module-level names bound by an assignment (not by `def`, `class` or `import`)."""
    constants: set[str] = field(default_factory=set)
    """Assigned names whose every assignment is a literal: no instance of anything that could block."""
    imported: dict[str, str] = field(default_factory=dict)
    """Module-level names bound by an import, with the qualified name they refer to."""
    star_imports: list[str] = field(default_factory=list)
    """Modules whose names `from module import *` binds here."""
    class_attributes: dict[str, set[str]] = field(default_factory=dict)
    """Attribute names a class declares or sets on `self`."""
    producers: set[str] = field(default_factory=set)
    """Functions and methods (`f`, `Class.m`) with a return annotation or a `return`/`yield` of a value."""
    returns: dict[str, str] = field(default_factory=dict)
    """The dotted name a function's or method's return annotation declares (`Session` of `-> Optional[Session]`),
    "" for one that names nothing a call resolves on (`-> dict[str, int]`); absent without an annotation."""
    sync_functions: set[str] = field(default_factory=set)
    """Module-level `def`s (not `async def`): what the whole-program pass may summarise."""
    sync_methods: dict[str, set[str]] = field(default_factory=dict)
    methods: dict[str, set[str]] = field(default_factory=dict)
    """Every method a class defines itself, sync or async: where `super().name` stops."""
    generators: set[str] = field(default_factory=set)
    """Sync functions and methods (`f`, `Class.m`) that yield: calling one runs none of its body."""
    derived: set[str] = field(default_factory=set)
    """Classes with bases: a method they lack may be inherited."""
    bases: dict[str, list[str]] = field(default_factory=dict)
    """The dotted names a class's bases are written with (`base.Repository` of `base.Repository[User]`)."""
    decorated: set[str] = field(default_factory=set)
    """Module-level functions with a decorator: one may make the function an object (`@celery.task`)."""
    properties: dict[str, set[str]] = field(default_factory=dict)
    """The sync properties each class defines (`@property`, `@cached_property`): reading one runs its body."""
    routes: dict[str, list[list[int]]] = field(default_factory=dict)
    """For each module-level `APIRouter()` (`router = APIRouter()`), the first and last lines of the functions
    registered on it (`@router.get(...)`): what runs only if the router is mounted."""

    def to_json(self) -> dict:
        """Sets as sorted lists: what the cache keeps of it."""
        return {name: _jsonable(value) for name, value in vars(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> "Outline":
        """The inverse of `to_json` (each field's shape from its annotation)."""
        made = cls()
        for name, value in data.items():
            kind = OUTLINE_FIELDS[name]
            setattr(made, name, set(value) if kind.startswith("set") else
                    {key: set(item) for key, item in value.items()} if kind == "dict[str, set[str]]" else value)
        return made

    def binds(self, name: str) -> bool:
        """Whether the module binds `name` at its top level by a sync `def`, a class, an assignment or an import
        (what a star import of it may bring)."""
        return (name in self.sync_functions or name in self.sync_methods or name in self.assigned
                or name in self.imported)


OUTLINE_FIELDS = {f.name: str(f.type) for f in fields(Outline)}


def _jsonable(value):
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def outline(tree: ast.Module, package: str) -> Outline:
    result = Outline()
    not_constant: set[str] = set()
    routers: set[str] = set()
    registered: list[tuple[str, list[int]]] = []  # (holder, [first, last line]) of each decorated function
    for node in _module_level(tree.body):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                _dotted(node.value.func).rpartition(".")[2] == "APIRouter":
            routers.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            registered += [(holder, [node.lineno, node.end_lineno or node.lineno]) for holder in _route_holders(node)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            result.assigned.update(names)
            if not isinstance(node.value, LITERALS) or isinstance(node, ast.AnnAssign):
                not_constant.update(names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                result.imported[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(package, node.level, node.module or "")
            for alias in node.names:
                if alias.name == "*":
                    result.star_imports.append(base)
                else:
                    result.imported[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scan = BodyScan(node)
            rebound = scan.globals(node)  # `model = None`, then `global model; model = load()`: not a constant
            result.assigned.update(rebound)
            not_constant.update(rebound)
            if scan.produces(node):
                result.producers.add(node.name)
            if node.returns is not None:
                result.returns[node.name] = annotation_name(node.returns)
            if node.decorator_list:
                result.decorated.add(node.name)
            if isinstance(node, ast.FunctionDef):
                result.sync_functions.add(node.name)
                if scan.yields(node):
                    result.generators.add(node.name)
        elif isinstance(node, ast.ClassDef):
            result.sync_methods[node.name] = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
            result.methods[node.name] = {m.name for m in node.body
                                         if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
            scan = BodyScan(node)
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    rebound = scan.globals(method)
                    result.assigned.update(rebound)
                    not_constant.update(rebound)
            result.generators.update(f"{node.name}.{m.name}" for m in node.body
                                     if isinstance(m, ast.FunctionDef) and scan.yields(m))
            if node.bases:
                result.derived.add(node.name)
                result.bases[node.name] = [name for base in node.bases
                                           if (name := _dotted(base.value if isinstance(base, ast.Subscript) else base))]
            properties = {m.name for m in node.body if isinstance(m, ast.FunctionDef) and _is_property(m)}
            if properties:
                result.properties[node.name] = properties
            attributes = result.class_attributes.setdefault(node.name, set())
            attributes.update(properties, scan.stored)
            for member in scan.functions:
                if scan.produces(member):
                    result.producers.add(f"{node.name}.{member.name}")
                    if member.returns is not None:
                        result.returns[f"{node.name}.{member.name}"] = annotation_name(member.returns)
    result.constants = result.assigned - not_constant
    for holder, span in registered:
        if holder in routers:
            result.routes.setdefault(holder, []).append(span)
    return result


def _route_holders(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """`router` of `@router.get("/x")` (any decorator `name.method(...)` that registers a route)."""
    return [d.func.value.id for d in function.decorator_list
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and isinstance(d.func.value, ast.Name)
            and d.func.attr in (*HTTP_METHODS, "api_route", "websocket")]


def annotation_name(node: ast.expr) -> str:
    """The dotted name an annotation declares, unwrapped as the analyzer unwraps it (`Optional[X]`, `X | None`,
    `Annotated[X, ...]`, `Iterator[X]`, strings); "" when it names no single class."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except (SyntaxError, ValueError, RecursionError):
            return ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return annotation_name(node.left) or annotation_name(node.right)
    if isinstance(node, ast.Subscript):
        if _dotted(node.value).rsplit(".", 1)[-1] not in UNWRAPPED_ANNOTATIONS:
            return ""
        elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return next((found for element in elements if (found := annotation_name(element))), "")
    return _dotted(node)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _module_level(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in (getattr(node, "body", []), getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                yield from _module_level(block)
            for handler in getattr(node, "handlers", []):
                yield from _module_level(handler.body)


def _is_property(function: ast.FunctionDef) -> bool:
    return any((d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else None)
               in PROPERTY_DECORATORS for d in function.decorator_list)


class BodyScan:
    """What `outline` asks of a module-level function or class and of every function inside it, from one walk of
    its tree (not one walk per question and per nested function)."""

    def __init__(self, root: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        """Every function under the root (the root too, if it is one), breadth first."""
        self.stored: set[str] = set()
        """Attribute names assigned (`self.x = ...`) and plain names assigned anywhere in the tree."""
        self._producing: set[int] = set()
        self._yielding: set[int] = set()
        self._globals: dict[int, set[str]] = {}
        # each node with the functions it is inside and the function whose own body runs it (None inside a
        # lambda, a class, or a function's decorators and defaults: what `own_nodes` of that body leaves out)
        pending: deque[tuple[ast.AST, tuple[ast.AST, ...], ast.AST | None]] = deque([(root, (), None)])
        while pending:
            node, enclosing, body_of = pending.popleft()
            if isinstance(node, FUNCTIONS):
                self.functions.append(node)
                inside = (*enclosing, node)
                for name in child_fields(node):
                    value = getattr(node, name, None)
                    owner = node if name == "body" else None
                    for child in value if isinstance(value, list) else [value]:
                        if isinstance(child, ast.AST):
                            pending.append((child, inside, owner))
                continue
            if isinstance(node, (ast.Return, ast.Yield)) and node.value is not None:
                self._producing.update(map(id, enclosing))
            if body_of is not None:
                if isinstance(node, (ast.Yield, ast.YieldFrom)):
                    self._yielding.add(id(body_of))
                elif isinstance(node, ast.Global):
                    self._globals.setdefault(id(body_of), set()).update(node.names)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                self.stored.add(node.attr)
            elif isinstance(node, (ast.AnnAssign, ast.Assign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                self.stored.update(t.id for t in targets if isinstance(t, ast.Name))
            owner = None if isinstance(node, NESTED_SCOPES) else body_of
            pending.extend((child, enclosing, owner) for child in child_nodes(node))

    def produces(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """A return annotation, or a `return`/`yield` of a value anywhere inside (nested functions too)."""
        return function.returns is not None or id(function) in self._producing

    def yields(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Whether the function's own body yields (`syntax.is_generator`)."""
        return id(function) in self._yielding

    def globals(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
        """The names its own body declares `global` (`syntax.declared_globals`)."""
        return self._globals.get(id(function), set())


class Project:
    def __init__(self, modules: dict[str, Path], knowledge: "Knowledge",
                 read: Callable[[Path], str] | None = None, search_roots: Iterable[Path] = ()):
        self.libraries = knowledge.library_roots()
        self.modules = without_library_suffixes(modules, self.libraries)
        self.search_roots = tuple(search_roots)
        """Directories holding the checked files' top-level packages: unchecked project modules are found there."""
        self.missing: set[str] = set()
        self.knowledge = knowledge
        self.read = read or (lambda path: path.read_text(encoding="utf-8-sig"))
        self.outlines: dict[str, Outline] = {}
        self.made_outlines: set[str] = set()
        """The modules outlined by this process, from their source (not given by `known_outline`)."""
        self.known_outline: Callable[[str], Outline | None] = lambda module: None
        """An outline made by an earlier run (the cache's), tried before parsing the module."""
        self.indexes: dict[str, "ModuleIndex | None"] = {}
        self._recent: dict[Path | str, tuple[str, ast.Module | None]] = {}
        """The latest modules parsed (`KEPT_SOURCE`), with their text, by file (one file has several module names:
        `src.app.db` is also `app.db`): a module outlined is often indexed or checked later."""
        self._recent_size = 0
        self._indexed: dict[Path | str, tuple[str, ast.Module]] = {}
        """The text and tree of every module indexed (which holds most of its tree anyway)."""
        self.consulted: set[Path] = set()
        """Files whose bindings the current file's analysis used (its cache dependencies)."""
        self._module_of: dict[str, str | None] = {}
        self._mentioning: dict[str, list[str]] = {}
        self._sources: dict[str, str] | None = None
        self._state_writers: dict[str, list[str]] | None = None
        """The modules that assign each attribute of a state holder (`request.state.db = ...`)."""
        self._implementations: dict[str, list[str]] = {}
        self._tops: dict[str, list[str]] = {}
        self._by_last_name: dict[str, list[str]] | None = None

    def begin_file(self, module_name: str, index: "ModuleIndex") -> None:
        self.indexes[module_name] = index
        self.consulted = set()

    def parse(self, module: str, text: str) -> ast.Module | None:
        """The tree of `text`, the source of `module` (as `syntax.parse` gives it, raising as it does): the one the
        project parsed for the module's outline or index where it read the same text, else parsed now and kept for
        them. Text the project could not parse is parsed again, for the reason."""
        file = self.modules.get(module, module)
        known = self._indexed.get(file) or self._recent.get(file)
        if known is not None and known[0] == text and known[1] is not None:
            return known[1]
        tree = parse(text)
        self._remember(file, text, tree)
        return tree

    # -- what other modules bind -------------------------------------------------------------------------------
    def lookup(self, path: str) -> Value | None:
        """What `path` (a module attribute) is bound to, where its module binds it by assignment or import."""
        module, rest = self._split(path)
        if module is None or len(rest) != 1:
            return None
        found = self.outline_of(module)
        if rest[0] in found.imported:
            from asyncguard.lint.engine.analysis import Value

            return Value(self.knowledge.canonical(found.imported[rest[0]]))
        if rest[0] not in found.assigned:
            return self.star_binding(found.star_imports, rest[0]) if not found.binds(rest[0]) else None
        if rest[0] in found.constants:
            return None
        index = self._load(module)
        return index.scope.names.get(rest[0]) if index is not None else None

    def star_binding(self, modules: Iterable[str], name: str, seen: set[str] | None = None) -> Value | None:
        """`name` as the first of these star-imported project modules that binds it brings it, through their own
        star imports to any depth (`from .all import *` where `all.py` star-imports the modules)."""
        from asyncguard.lint.engine.analysis import Value

        seen = set() if seen is None else seen
        for module in modules:
            if module in seen or self.module_of(f"{module}.{name}") != module:
                continue
            seen.add(module)
            found = self.outline_of(module)
            deeper = None if found.binds(name) else self.star_binding(found.star_imports, name, seen)
            if found.binds(name) or deeper is not None:
                self.consulted.add(self.modules[module])
                return deeper or Value(f"{module}.{name}")
        return None

    def is_sync_generator(self, path: str) -> bool:
        """Whether `path` is a sync generator function or method defined in another module of the project."""
        module, rest = self._split(path)
        return module is not None and ".".join(rest) in self.outline_of(module).generators

    def modules_mentioning(self, word: str) -> list[str]:
        """The project's modules whose source has `word` in it (each by its longest name): where a module-level
        lock may be taken, whether or not the module has a coroutine of its own. A substring search, no parse."""
        if word not in self._mentioning:
            self._mentioning[word] = [name for name, text in self.all_sources().items() if word in text]
        return self._mentioning[word]

    def imported_elsewhere(self, module: str) -> bool:
        """Whether another module of the project imports `module` (or a name from it): a script that runs its
        coroutines on a loop of its own is also a library of the service then."""
        file = self.modules.get(module)
        last = module.rpartition(".")[2]
        word = re.compile(rf"\b{re.escape(last)}\b")
        for other in self.modules_mentioning(last):
            if self.modules.get(other) == file or not any(
                    word.search(statement) for statement in IMPORT_STATEMENT.findall(self.all_sources()[other])):
                continue  # its text imports nothing of that name: no need of its outline (a parse)
            for target in self.outline_of(other).imported.values():  # `from backend.app.rag.store import Store`
                named = target if target in self.modules or self._find_on_disk(target) else self.module_of(target)
                if named is not None and self.modules.get(named) == file:
                    return True
        return False

    def all_sources(self) -> dict[str, str]:
        """Every module's text by its longest name, read once: searched for a word many times in a run (each read
        from disk again, a large project's run spent seconds reading)."""
        if self._sources is None:
            self._sources = {name: self._source(name) or "" for name in self._by_longest_name()}
        return self._sources

    def _by_longest_name(self) -> list[str]:
        """Every module of the project once, by its longest name (`src.app.db`, not also `app.db`)."""
        return sorted(full_names(self.modules).values())

    def instance_attribute(self, class_path: str, attribute: str) -> Value | None:
        """The type of `obj.attribute` for an instance of a project class defined in another module."""
        module, rest = self._split(class_path)
        if module is None or len(rest) != 1:
            return None
        if attribute not in self.outline_of(module).class_attributes.get(rest[0], ()):
            return None
        index = self._load(module)
        attributes = index.class_attributes(class_path) if index is not None else None
        return attributes.get(attribute) if attributes else None

    def delegate(self, class_path: str) -> "Value | None":
        """What a proxy class defined in another module of the project hands its other attributes to."""
        module, rest = self._split(class_path)
        if module is None or len(rest) != 1 or \
                "__getattr__" not in self.outline_of(module).sync_methods.get(rest[0], ()):
            return None
        index = self._load(module)
        return index.delegate(class_path) if index is not None else None

    def state_attribute(self, name: str) -> Value | None:
        """What some module of the project assigns to `<holder>.state.<name>`; only the modules whose source has
        such an assignment are parsed."""
        if self._state_writers is None:  # one scan of the sources for every name, no parse
            self._state_writers = {}
            for module, text in self.all_sources().items():
                for written in dict.fromkeys(STATE_ASSIGNMENT.findall(text)):
                    self._state_writers.setdefault(written, []).append(module)
        for module in self._state_writers.get(name, ()):
            if module in self.indexes and self.indexes[module] is None:
                continue  # being indexed: a cycle
            index = self._load(module)
            found = index.state_attributes().get(name) if index is not None else None
            if found is not None:
                self.consulted.add(self.modules[module])
                return found
        return None

    def implementations(self, interface: str) -> list[str]:
        """The project classes that implement a Protocol or ABC: its subclasses, and the classes that define every
        method it declares. Only the modules whose source names the interface, or defines its first method, are
        outlined."""
        if interface in self._implementations:
            return self._implementations[interface]
        module, rest = self._split(interface)
        if module is None or len(rest) != 1:
            return []
        methods = self.outline_of(module).sync_methods.get(rest[0], set())
        candidates = set(self.modules_mentioning(rest[0]))
        if methods:
            candidates.update(self.modules_mentioning(f"def {min(methods)}("))
        found = []
        for candidate in sorted(candidates):
            outline_of = self.outline_of(candidate)
            for name, defined in outline_of.sync_methods.items():
                path = f"{candidate}.{name}"
                bases = self.class_bases(path)
                if path != interface and (interface in bases or methods and methods <= defined
                                          and not ABSTRACT_BASES & set(bases)):
                    found.append(path)
        self._implementations[interface] = sorted(set(found))
        return self._implementations[interface]

    def decorated_type(self, path: str) -> "Value | None":
        """What its decorator makes of a function defined in another module of the project (`@celery.task`)."""
        module, rest = self._split(path)
        if module is None or len(rest) != 1 or rest[0] not in self.outline_of(module).decorated:
            return None
        index = self._load(module)
        return index.decorated_type(path) if index is not None else None

    def defines_property(self, class_path: str, attribute: str) -> bool:
        """Whether a class defined in another module of the project has a sync property of that name itself."""
        module, rest = self._split(class_path)
        return (module is not None and len(rest) == 1
                and attribute in self.outline_of(module).properties.get(rest[0], ()))

    def class_bases(self, class_path: str) -> list[str]:
        """The qualified names of the bases of a class defined in another module, read from its outline: its
        imports (re-exports followed as `lookup` follows them) or its own classes."""
        module, rest = self._split(class_path)
        if module is None or len(rest) != 1:
            return []
        found = self.outline_of(module)
        qualified = []
        for written in found.bases.get(rest[0], ()):
            first, _, more = written.partition(".")
            if first in found.imported:
                path = self.knowledge.canonical(found.imported[first] + (f".{more}" if more else ""))
                alias = self.lookup(path) if self.module_of(path) is not None else None
                qualified.append(alias.path if alias is not None and not alias.instance else path)
            elif first in found.sync_methods:
                qualified.append(f"{module}.{written}")
        return qualified

    def is_derived(self, class_path: str) -> bool:
        """Whether `class_path` is a class with bases defined in another module of the project."""
        module, rest = self._split(class_path)
        return module is not None and len(rest) == 1 and rest[0] in self.outline_of(module).derived

    def defines_method(self, class_path: str, attribute: str) -> bool:
        """Whether a class defined in another module defines `attribute` as a method of its own, read from its
        outline."""
        module, rest = self._split(class_path)
        return module is not None and len(rest) == 1 and attribute in self.outline_of(module).methods.get(rest[0], ())

    def function_result(self, path: str) -> Value | None:
        """What a project function or method defined in another module returns: read from its outline where the
        return annotation names a class (most typed code), from its parsed body otherwise."""
        module, rest = self._split(path)
        if module is None or ".".join(rest) not in self.outline_of(module).producers:
            return None
        declared = self._declared_return(module, ".".join(rest))
        if declared is not None:
            from asyncguard.lint.engine.analysis import Value

            return Value(declared, instance=True) if declared else None
        index = self._load(module)
        return index.function_result(path) if index is not None and path in index.functions else None

    def result_given(self, path: str, given: tuple) -> Value | None:
        """`ModuleIndex.result_given` of a function of another project module."""
        module, rest = self._split(path)
        if module is None or ".".join(rest) not in self.outline_of(module).producers:
            return None
        index = self._load(module)
        return index.result_given(path, given) if index is not None and path in index.functions else None

    def _declared_return(self, module: str, local: str) -> str | None:
        """The class a return annotation names, resolved in its module's namespace (re-exports followed); "" for
        an annotation that names none; None where the module must be parsed to know (no annotation, a bare
        `-> Generator` whose yields tell, a name the module assigns)."""
        found = self.outline_of(module)
        declared = found.returns.get(local)
        if declared is None or declared.rsplit(".", 1)[-1] in UNINFORMATIVE_ANNOTATIONS:
            return None
        first, _, rest = declared.partition(".")
        if first in found.imported:
            path = found.imported[first] + (f".{rest}" if rest else "")
        elif first in found.sync_methods:  # a class of the module itself
            path = f"{module}.{declared}"
        elif first in found.assigned:  # a type alias: its value tells
            return None
        else:
            return ""  # a builtin (`str`, `dict`) or a name the module does not bind
        for _ in range(4):  # a class re-exported by a package's `__init__`
            alias = self.lookup(path) if self.module_of(path) is not None else None
            if alias is None or alias.instance or alias.path == path:
                break
            path = alias.path
        return self.knowledge.canonical(path)

    # -- modules ---------------------------------------------------------------------------------------------------
    def module_of(self, path: str) -> str | None:
        """The project module with the longest name that prefixes `path` (`app.db` of `app.db.get_session`)."""
        if path in self._module_of:
            return self._module_of[path]
        found = None
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            name = ".".join(parts[:cut])
            if name in self.modules or self._find_on_disk(name):
                found = name
                break
        self._module_of[path] = found
        return found

    def nearest_module(self, module: str, importer: str) -> str | None:
        """The full name of `module` as `importer` imports it, where several services of a monorepo each have one
        (`from wrapper import Wrapper` in each of six services run from their own directories, so no `wrapper`
        key is kept): the one whose file shares the most leading directories with the importer's, if only one does
        (by path: a module named by its path because another service has one of its name, `apps.booking-api.app.auth`,
        is still the nearest of `app.routers.auth` beside it)."""
        top = module.split(".", 1)[0]
        if module in self.modules or top in STANDARD_LIBRARY or top in self.libraries:
            return None  # `from sqlalchemy import select` beside two `infra/sqlalchemy/` packages is the library
        if self._by_last_name is None:
            self._by_last_name = {}
            for name in full_names(self.modules).values():
                self._by_last_name.setdefault(name.rpartition(".")[2], []).append(name)
        candidates = [name for name in self._by_last_name.get(module.rpartition(".")[2], ())
                      if name.endswith(f".{module}")]
        if len(candidates) < 2 or importer in candidates:  # a module never imports itself:
            return None  # `import requests` in each service's own `requests.py` is the library
        importer_path = self.modules.get(importer)
        if importer_path is None:
            return None
        importer_parts = importer_path.parent.parts
        shared = {name: next((i for i, (a, b) in enumerate(zip(self.modules[name].parent.parts, importer_parts))
                              if a != b), min(len(self.modules[name].parent.parts), len(importer_parts)))
                  for name in candidates}
        best = max(shared.values())
        nearest = [name for name, count in shared.items() if count == best]
        return nearest[0] if best and len(nearest) == 1 else None

    def package_of(self, module: str) -> str:
        """What relative imports in `module` are relative to: the module itself where it is a package's
        `__init__.py`, else its parent package."""
        path = self.modules.get(module)
        return module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]

    def defining_module(self, path: str) -> str | None:
        """The project module that defines `path`, for the whole-program pass. A name of the standard library has
        none, even where a vendored copy makes `collections` the suffix of a project module's name."""
        return None if path.split(".", 1)[0] in STANDARD_LIBRARY else self.module_of(path)

    def may_define(self, path: str) -> bool:
        """Whether `path` may be a sync function, method or constructor of the project, as the module's outline
        says: the whole-program pass summarises no module for a name that cannot be one."""
        module = self.defining_module(path)
        if module is None:
            return False
        found = self.outline_of(module)
        parts = path[len(module) + 1:].split(".")
        if len(parts) == 1:
            name = parts[0]
            return (name in found.sync_functions or name in found.derived
                    or not {"__init__", "__post_init__"}.isdisjoint(found.sync_methods.get(name, ())))
        if len(parts) == 2:
            return parts[1] in found.sync_methods.get(parts[0], ()) or parts[0] in found.derived
        return False

    def owns(self, path: str) -> bool:
        """Whether `path` is defined in a module of the project (a call of it may be summarised)."""
        return self.defining_module(path) is not None

    def _split(self, path: str) -> tuple[str | None, list[str]]:
        """The project module with the longest name that prefixes `path`, and the remaining segments."""
        name = self.module_of(path)
        if name is None:
            return None, []
        self.consulted.add(self.modules[name])
        return name, path.split(".")[name.count(".") + 1:]

    def _find_on_disk(self, name: str) -> bool:
        if name in self.missing or not self.search_roots:
            return False
        top, _, rest = name.partition(".")
        relative = os.path.join(*name.split("."))
        for root in self._roots_holding(top):  # strings, not Paths: a large project asks this thousands of times
            for candidate in (os.path.join(root, relative + ".py"), os.path.join(root, relative, "__init__.py")):
                if os.path.isfile(candidate):
                    self.modules[name] = Path(candidate)
                    return True
        self.missing.add(name)
        return False

    def _roots_holding(self, top: str) -> list[str]:
        """The search roots with a package or module named `top` (looked up once per name)."""
        if top not in self._tops:
            self._tops[top] = [str(root) for root in self.search_roots
                               if (root / top).is_dir() or (root / f"{top}.py").is_file()]
        return self._tops[top]

    def _source(self, module: str) -> str | None:
        try:
            return self.read(self.modules[module])
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            return None

    def outline_of(self, module: str) -> Outline:
        """What `module` binds, read once."""
        if module not in self.outlines:
            known = self.known_outline(module)
            if known is None:
                _, tree = self._parsed(module) or ("", None)
                known = outline(tree, self.package_of(module)) if tree is not None else Outline()
                self.made_outlines.add(module)
            self.outlines[module] = known
        return self.outlines[module]

    def _parsed(self, module: str) -> tuple[str, ast.Module | None] | None:
        """The module's text and `ast`, parsed once for its outline, its index and its check; the tree is None where
        the text cannot be parsed (an unparsable module is reported when it is checked itself), and nothing is
        returned where it cannot be read."""
        file = self.modules[module]
        known = self._indexed.get(file) or self._recent.get(file)
        if known is None:
            text = self._source(module)
            if text is None:
                return None
            try:
                known = self._remember(file, text, parse(text))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                known = self._remember(file, text, None)
        return known

    def _remember(self, file: Path | str, text: str, tree: ast.Module | None) -> tuple[str, ast.Module | None]:
        """Keep the file's tree, the oldest others dropped past `KEPT_SOURCE` (the latest one always kept)."""
        previous = self._recent.pop(file, None)
        self._recent_size -= len(previous[0]) if previous is not None else 0
        while self._recent and self._recent_size + len(text) > KEPT_SOURCE:
            self._recent_size -= len(self._recent.pop(next(iter(self._recent)))[0])
        self._recent[file] = (text, tree)
        self._recent_size += len(text)
        return text, tree

    def index_of(self, name: str) -> "ModuleIndex | None":
        """The index of another project module whose bindings the current file's analysis uses."""
        if name in self.modules:
            self.consulted.add(self.modules[name])
        return self._load(name)

    def _load(self, name: str) -> "ModuleIndex | None":
        from asyncguard.lint.engine.analysis import ModuleIndex
        from asyncguard.lint.engine.context import FastApiFacts

        if name in self.indexes:
            return self.indexes[name]
        self.indexes[name] = None  # a cycle of imports resolves to "unknown", not to a recursion
        text, tree = self._parsed(name) or ("", None)
        if tree is not None:
            try:
                self.indexes[name] = ModuleIndex(tree, name, self.knowledge, FastApiFacts(), self)
                self._indexed[self.modules[name]] = (text, tree)
            except RecursionError:
                pass  # too deeply nested to index: what it binds stays unknown
        return self.indexes[name]

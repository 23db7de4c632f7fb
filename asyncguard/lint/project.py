"""The checked tree as a whole: names imported from the project's own modules resolve to what those modules bind.

`from app.db import SessionLocal` then `db = SessionLocal()` in a handler is a direct blocking call whose type is
only known in `app/db.py`. Modules are indexed on demand (parsed once per process) and every module a file's
analysis consulted is recorded, so the cache can tell when that file's findings must be recomputed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import libcst as cst

from asyncguard.lint.analyzer import ModuleIndex, Value
from asyncguard.lint.context import FastApiFacts
from asyncguard.lint.syntax import absolute_module

if TYPE_CHECKING:
    from asyncguard.lint.knowledge import Knowledge


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


@dataclass
class Outline:
    """What a module binds, read with `ast` (several times cheaper than libcst): enough to tell whether indexing
    the module fully can tell anything about a name."""

    assigned: set[str] = field(default_factory=set)
    """Module-level names bound by an assignment (not by `def`, `class` or `import`)."""
    imported: dict[str, str] = field(default_factory=dict)
    """Module-level names bound by an import, with the qualified name they refer to."""
    class_attributes: dict[str, set[str]] = field(default_factory=dict)
    """Attribute names a class declares or sets on `self`."""
    producers: set[str] = field(default_factory=set)
    """Functions and methods (`f`, `Class.m`) with a return annotation or a `return`/`yield` of a value."""


def outline(text: str, module_name: str) -> Outline:
    result = Outline()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return result
    for node in _module_level(tree.body):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            result.assigned.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                result.imported[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(module_name, node.level, node.module or "")
            for alias in node.names:
                if alias.name != "*":
                    result.imported[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _produces(node):
                result.producers.add(node.name)
        elif isinstance(node, ast.ClassDef):
            attributes = result.class_attributes.setdefault(node.name, set())
            for member in ast.walk(node):
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and _produces(member):
                    result.producers.add(f"{node.name}.{member.name}")
                elif isinstance(member, ast.Attribute) and isinstance(member.ctx, ast.Store):
                    attributes.add(member.attr)
                elif isinstance(member, (ast.AnnAssign, ast.Assign)):
                    targets = member.targets if isinstance(member, ast.Assign) else [member.target]
                    attributes.update(t.id for t in targets if isinstance(t, ast.Name))
    return result


def _module_level(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in (getattr(node, "body", []), getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                yield from _module_level(block)
            for handler in getattr(node, "handlers", []):
                yield from _module_level(handler.body)


def _produces(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    if function.returns is not None:
        return True
    return any(isinstance(n, (ast.Return, ast.Yield)) and n.value is not None for n in ast.walk(function))


class Project:
    def __init__(self, modules: dict[str, Path], knowledge: "Knowledge",
                 read: Callable[[Path], str] | None = None, search_roots: Iterable[Path] = ()):
        self.modules = dict(modules)
        self.search_roots = tuple(search_roots)
        """Directories holding the checked files' top-level packages: unchecked project modules are found there."""
        self.missing: set[str] = set()
        self.knowledge = knowledge
        self.read = read or (lambda path: path.read_text(encoding="utf-8-sig"))
        self.outlines: dict[str, Outline] = {}
        self.indexes: dict[str, ModuleIndex | None] = {}
        self.consulted: set[Path] = set()
        """Files whose bindings the current file's analysis used (its cache dependencies)."""

    def begin_file(self, module_name: str, index: "ModuleIndex") -> None:
        self.indexes[module_name] = index
        self.consulted = set()

    # -- what other modules bind -------------------------------------------------------------------------------
    def lookup(self, path: str) -> Value | None:
        """What `path` (a module attribute) is bound to, where its module binds it by assignment or import."""
        module, rest = self._split(path)
        if module is None or len(rest) != 1:
            return None
        found = self._outline(module)
        if rest[0] in found.imported:
            return Value(self.knowledge.canonical(found.imported[rest[0]]))
        if rest[0] not in found.assigned:
            return None
        index = self._load(module)
        return index.scope.names.get(rest[0]) if index is not None else None

    def instance_attribute(self, class_path: str, attribute: str) -> Value | None:
        """The type of `obj.attribute` for an instance of a project class defined in another module."""
        module, rest = self._split(class_path)
        if module is None or len(rest) != 1:
            return None
        if attribute not in self._outline(module).class_attributes.get(rest[0], ()):
            return None
        index = self._load(module)
        attributes = index.class_attributes(class_path) if index is not None else None
        return attributes.get(attribute) if attributes else None

    def function_result(self, path: str) -> Value | None:
        """What a project function or method defined in another module returns."""
        module, rest = self._split(path)
        if module is None or ".".join(rest) not in self._outline(module).producers:
            return None
        index = self._load(module)
        return index.function_result(path) if index is not None and path in index.functions else None

    # -- modules ---------------------------------------------------------------------------------------------------
    def module_of(self, path: str) -> str | None:
        """The project module with the longest name that prefixes `path` (`app.db` of `app.db.get_session`)."""
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            name = ".".join(parts[:cut])
            if name in self.modules or self._find_on_disk(name):
                return name
        return None

    def owns(self, path: str) -> bool:
        """Whether `path` is defined in a module of the project (a call of it may be summarised)."""
        return self.module_of(path) is not None

    def _split(self, path: str) -> tuple[str | None, list[str]]:
        """The project module with the longest name that prefixes `path`, and the remaining segments."""
        name = self.module_of(path)
        if name is None:
            return None, []
        self.consulted.add(self.modules[name])
        return name, path.split(".")[name.count(".") + 1:]

    def _find_on_disk(self, name: str) -> bool:
        top = name.split(".", 1)[0]
        if name in self.missing or top in self.missing or not self.search_roots:
            return False
        if not any((root / top).exists() or (root / f"{top}.py").exists() for root in self.search_roots):
            self.missing.add(top)
            return False
        relative = Path(*name.split("."))
        for root in self.search_roots:
            for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
                if candidate.is_file():
                    self.modules[name] = candidate
                    return True
        self.missing.add(name)
        return False

    def _source(self, module: str) -> str | None:
        try:
            return self.read(self.modules[module])
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            return None

    def _outline(self, module: str) -> Outline:
        if module not in self.outlines:
            text = self._source(module)
            self.outlines[module] = outline(text, module) if text is not None else Outline()
        return self.outlines[module]

    def _load(self, name: str) -> ModuleIndex | None:
        if name in self.indexes:
            return self.indexes[name]
        self.indexes[name] = None  # a cycle of imports resolves to "unknown", not to a recursion
        text = self._source(name)
        if text is None:
            return None
        try:
            module = cst.parse_module(text)
            self.indexes[name] = ModuleIndex(module, name, self.knowledge, FastApiFacts(), self)
        except (cst.ParserSyntaxError, SyntaxError, RecursionError, ValueError):
            pass  # an unparsable module is reported when it is checked itself
        return self.indexes[name]

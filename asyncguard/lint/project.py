"""The checked tree as a whole: names imported from the project's own modules resolve to what those modules bind.

`from app.db import SessionLocal` then `db = SessionLocal()` in a handler is a direct blocking call whose type is
only known in `app/db.py`. Modules are indexed on demand (parsed once per process) and every module a file's
analysis consulted is recorded, so the cache can tell when that file's findings must be recomputed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import libcst as cst

if TYPE_CHECKING:
    from asyncguard.lint.analyzer import ModuleIndex, Value
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


class Project:
    def __init__(self, modules: dict[str, Path], knowledge: "Knowledge",
                 read: Callable[[Path], str] | None = None, search_roots: Iterable[Path] = ()):
        self.modules = dict(modules)
        self.search_roots = tuple(search_roots)
        """Directories holding the checked files' top-level packages: unchecked project modules are found there."""
        self.missing: set[str] = set()
        self.knowledge = knowledge
        self.read = read or (lambda path: path.read_text(encoding="utf-8-sig"))
        self.indexes: dict[str, "ModuleIndex | None"] = {}
        self.consulted: set[Path] = set()
        """Files whose bindings the current file's analysis used (its cache dependencies)."""

    def begin_file(self, module_name: str, index: "ModuleIndex") -> None:
        self.indexes[module_name] = index
        self.consulted = set()

    def index_for(self, path: str) -> tuple["ModuleIndex | None", list[str]]:
        """The project module with the longest name that prefixes `path`, and the remaining segments."""
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            name = ".".join(parts[:cut])
            if name in self.modules or self._find_on_disk(name):
                index = self._load(name)
                if index is not None:
                    self.consulted.add(self.modules[name])
                return index, parts[cut:]
        return None, []

    def _find_on_disk(self, name: str) -> bool:
        if name in self.missing or not self.search_roots:
            return False
        relative = Path(*name.split("."))
        for root in self.search_roots:
            for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
                if candidate.is_file():
                    self.modules[name] = candidate
                    return True
        self.missing.add(name)
        return False

    def lookup(self, path: str) -> "Value | None":
        """What `path` (a module attribute) is bound to in the project module that defines it."""
        index, rest = self.index_for(path)
        if index is None or len(rest) != 1:
            return None
        return index.scope.names.get(rest[0])

    def _load(self, name: str) -> "ModuleIndex | None":
        if name in self.indexes:
            return self.indexes[name]
        from asyncguard.lint.analyzer import ModuleIndex
        from asyncguard.lint.context import FastApiFacts

        self.indexes[name] = None  # a cycle of imports resolves to "unknown", not to a recursion
        try:
            module = cst.parse_module(self.read(self.modules[name]))
            self.indexes[name] = ModuleIndex(module, name, self.knowledge, FastApiFacts(), self)
        except (OSError, UnicodeDecodeError, cst.ParserSyntaxError, RecursionError, ValueError):
            pass  # an unreadable module is reported when it is checked itself
        return self.indexes[name]

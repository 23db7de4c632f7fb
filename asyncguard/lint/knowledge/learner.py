"""Learning what a library's public API does, from its own sources, with the checker's own engine.

The library's modules become the project; a probe module calls every public function, constructor and method from
an `async def`, so the whole-program pass follows each call through the library's sync code down to a call the
curated base knows to block (a socket, `urllib3`, `sqlite3.connect`, `time.sleep`) and reports it with its chain,
exactly as it would for a service's own helpers. What blocks is kept with that chain; a coroutine, and a
constructor that only builds objects, are not. The declared or inferred types of results and attributes are kept
too, so that a call on what a call returns (`client.query.get(...).do()`) is resolved the same way.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asyncguard.lint.engine.checker import analyse_source, decode, summarize_source, SourceError
from asyncguard.lint.engine.names import STANDARD_LIBRARY, Project, module_keys
from asyncguard.lint.engine.program import INDIRECT, LibraryCalls, ModuleRecord, Program
from asyncguard.lint.knowledge.base import Knowledge
from asyncguard.lint.knowledge.pypi import Sources
from asyncguard.lint.rule import rules_by_code

PROBE = "asyncguard_learn_probe"
"""The probe module's name: never a module of a library."""
MAX_ALIAS_DEPTH = 16
PUBLIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass
class LearnedCall:
    category: str
    """The rule category of the call the chain ends in (`http`, `database`, `file`, ...)."""
    chain: list[list]
    """`[name, path, line]` steps inside the library, the last one the blocking call itself."""
    version: str
    """The release it was learned from (a file may merge two major versions)."""


@dataclass
class LearnedPackage:
    """What one release of a distribution was learned to do: the generated file's contents."""

    distribution: str
    version: str
    """The releases learned, `3.26.7, 4.9.0` where two major versions are merged."""
    modules: list[str]
    """Its top-level import names: a checked file importing one of them loads this file."""
    blocking: dict[str, LearnedCall] = field(default_factory=dict)
    """By the qualified name where it is defined (`elasticsearch._sync.client.Elasticsearch.msearch`)."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Public spellings (`elasticsearch.Elasticsearch`) of what is defined elsewhere in the package."""
    returns: dict[str, str] = field(default_factory=dict)
    """The class of instance a function or method returns."""
    attributes: dict[str, str] = field(default_factory=dict)
    """The class of instance an attribute of a class's instances holds."""
    classes: list[str] = field(default_factory=list)
    """The classes probed (where an async counterpart, `AsyncClient` beside `Client`, is looked for)."""
    examined: int = 0
    """Public functions, constructors and methods probed."""
    coroutines: int = 0
    """Of those, `async def`: not blocking by construction."""
    errors: int = 0
    """Modules the engine could not read (syntax of a newer Python, or a bug: they are simply not followed)."""

    def to_json(self) -> dict:
        data = asdict(self)
        data["blocking"] = {name: asdict(call) for name, call in sorted(self.blocking.items())}
        for key in ("aliases", "returns", "attributes"):
            data[key] = dict(sorted(data[key].items()))
        return data


def library_modules(root: Path) -> dict[str, Path]:
    """Module name → file for every `.py` under `root` (a site-packages directory or an unpacked release)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and all(PUBLIC_NAME.fullmatch(part) or part.startswith("_") and part[1:].isidentifier()
                         for part in parts):
            found.append((".".join(parts), path))
    return dict(found)


def import_names(root: Path) -> list[str]:
    """What a user imports the release by: its top-level packages and modules, and below a namespace package
    (a directory without `__init__.py`, `google/`) the packages inside it (`google.cloud.storage`)."""
    found = []
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        for entry in sorted(directory.iterdir()):
            name = entry.name[:-3] if entry.suffix == ".py" else entry.name
            if not name.isidentifier():
                continue
            if entry.is_dir() and not (entry / "__init__.py").exists():
                pending.append((entry, f"{prefix}{name}."))
            elif entry.is_dir() or entry.suffix == ".py":
                found.append(prefix + name)
    return sorted(found)


def is_public(dotted: str) -> bool:
    return not any(part.startswith("_") for part in dotted.split("."))


class Learner:
    """One release of a library, as a project the engine resolves names in."""

    def __init__(self, sources: Sources, knowledge: Knowledge):
        self.sources = sources
        self.root = sources.root
        self.modules = modules = library_modules(sources.root)
        self.tops = {name.split(".", 1)[0] for name in modules}
        self.knowledge = knowledge
        self.project = Project(module_keys(modules.items()), knowledge, read=_read, search_roots=[self.root])
        self.errors = 0

    def in_package(self, path: str) -> bool:
        return path.split(".", 1)[0] in self.tops and path.split(".", 1)[0] not in STANDARD_LIBRARY

    def definition(self, path: str) -> str | None:
        """Where a public name is defined in the package, following re-exports (`pkg.Client` → `pkg._sync.Client`);
        None for a name the package does not define."""
        for _ in range(MAX_ALIAS_DEPTH):
            module = self.project.module_of(path)
            if module is None:
                return None
            rest = path[len(module) + 1:]
            if not rest:
                return None  # a module, not a function or class
            outline = self.project.outline_of(module)
            name, _, tail = rest.partition(".")
            if name in outline.methods or name in outline.producers or name in outline.sync_functions:
                return path
            target = outline.imported.get(name)
            if target is None:
                deeper = self.project.star_binding(outline.star_imports, name)
                target = deeper.path if deeper is not None else None
            if target is None or not self.in_package(target):
                return None
            path = f"{target}.{tail}" if tail else target
        return None

    def public_names(self) -> dict[str, str]:
        """Every public spelling of a package function or class → where it is defined."""
        found = {}
        for module in sorted(self.modules):
            if not is_public(module):
                continue
            outline = self.project.outline_of(module)
            names = set(outline.methods) | outline.sync_functions | outline.producers | set(outline.imported)
            for name in sorted(names):
                if name.startswith("_") or "." in name:
                    continue
                definition = self.definition(f"{module}.{name}")
                if definition is not None:
                    found[f"{module}.{name}"] = definition
        return found

    def methods(self, class_path: str) -> tuple[dict[str, bool], list[str]]:
        """The public methods an instance has (own and inherited from package bases), each with whether it is a
        coroutine, and the attribute names its classes declare."""
        methods: dict[str, bool] = {}
        attributes: list[str] = []
        pending, seen = [class_path], set()
        while pending and len(seen) < 32:
            current = pending.pop(0)
            module = self.project.module_of(current)
            if current in seen or module is None:
                continue
            seen.add(current)
            local = current[len(module) + 1:]
            outline = self.project.outline_of(module)
            sync = outline.sync_methods.get(local, set())
            for method in sorted(outline.methods.get(local, ())):
                if not method.startswith("_") or method == "__call__":
                    methods.setdefault(method, method not in sync)
            attributes += sorted(outline.class_attributes.get(local, ()))
            pending += [base for base in self.project.class_bases(current) if self.in_package(base)]
        return methods, list(dict.fromkeys(attributes))

    def learn(self) -> LearnedPackage:
        learned = LearnedPackage(self.sources.distribution, self.sources.version, import_names(self.root))
        public = self.public_names()
        learned.aliases = {alias: target for alias, target in public.items() if alias != target}
        probes: dict[int, str] = {}
        body = ["async def probe_functions():"]
        classes: list[str] = []
        for definition in sorted(set(public.values())):
            local = definition[len(self.project.module_of(definition)) + 1:]
            outline = self.project.outline_of(self.project.module_of(definition))
            learned.examined += 1
            if local in outline.methods:
                classes.append(definition)
            elif local not in outline.sync_functions:
                learned.coroutines += 1
                continue
            else:
                self._record_type(definition, learned.returns)
            body.append(f"    {definition}()")
            probes[len(body)] = definition
        body.append("    pass")
        probed = set(classes)
        for class_path in classes:  # grows with the classes that results and attributes are instances of
            methods, attributes = self.methods(class_path)
            body += ["", "", f"async def probe_{len(learned.classes)}(instance: {class_path}):"]
            learned.classes.append(class_path)
            for method, is_coroutine in methods.items():
                learned.examined += 1
                if is_coroutine:
                    learned.coroutines += 1
                    continue
                body.append(f"    instance.{method}()")
                probes[len(body)] = f"{class_path}.{method}"
            body.append("    pass")
            self._types(class_path, methods, attributes, learned)
            for reached in [*learned.returns.values(), *learned.attributes.values()]:
                if reached not in probed:
                    probed.add(reached)
                    classes.append(reached)
        imports = [f"import {module}" for module in sorted({self.project.module_of(c) for c in probed | set(public.values())})]
        header = [*imports, "", ""]
        probes = {line + len(header): name for line, name in probes.items()}
        found = self._blocking(probes, "\n".join(header + body) + "\n")
        learned.blocking = {probes[line]: call for line, call in found.items()}
        learned.classes.sort()
        learned.errors = self.errors
        return learned

    def _types(self, class_path: str, methods: dict[str, bool], attributes: list[str],
               learned: LearnedPackage) -> None:
        for method in methods:
            self._record_type(f"{class_path}.{method}", learned.returns)
        for attribute in attributes:
            if attribute.startswith("_"):
                continue
            value = self._guarded(lambda: self._attribute(class_path, attribute))
            if value is not None and value.instance and self._names_class(value.path):
                learned.attributes[f"{class_path}.{attribute}"] = value.path

    def _attribute(self, class_path: str, attribute: str):
        for owner in [class_path, *self.project.class_bases(class_path)]:
            if self.in_package(owner):
                value = self.project.instance_attribute(owner, attribute)
                if value is not None:
                    return value
        return None

    def _record_type(self, path: str, returns: dict[str, str]) -> None:
        value = self._guarded(lambda: self.project.function_result(path))
        if value is not None and value.instance and value.path != path and self._names_class(value.path):
            returns[path] = value.path

    def _names_class(self, path: str) -> bool:
        """A class of this package (a result typed `dict` or `Any` says nothing a call resolves on)."""
        module = self.project.module_of(path) if self.in_package(path) else None
        return module is not None and path[len(module) + 1:] in self.project.outline_of(module).methods

    def _guarded(self, read):
        try:
            return read()
        except (RecursionError, SyntaxError, ValueError):
            return None

    def _blocking(self, probes: dict[int, str], text: str) -> dict[int, LearnedCall]:
        analysis = analyse_source(text, f"<{PROBE}>", PROBE, self.knowledge, None, self.project)
        failures: list = []

        def load(names: list[str]) -> list[ModuleRecord | None]:
            records = []
            for module in names:
                path = self.project.modules[module]
                try:
                    summary = summarize_source(decode(path.read_bytes()), module, self.knowledge, self.project)
                except (OSError, SourceError):
                    summary = {}
                except Exception:  # a bug of the engine on this module: it is not followed, and counted
                    self.errors += 1
                    summary = {}
                records.append(ModuleRecord(module, self._shown(path), summary, []))
            return records

        program = Program(None, module_of=self.project.defining_module, load=load, may_define=self.project.may_define,
                          library=LibraryCalls(self.knowledge), mentioning=self.project.modules_mentioning,
                          implementations=self.project.implementations)
        program.add(ModuleRecord(PROBE, f"<{PROBE}>", analysis.summary or {}, analysis.loop_calls))
        found = {}
        codes = rules_by_code()
        for finding in program.findings(failures):
            if finding.code != INDIRECT or finding.line not in probes or codes[finding.via].category == "thread" \
                    or self._weak(finding.chain[-1]["name"]):
                continue
            chain = [[step["name"], step["path"], step["line"]] for step in finding.chain]
            found[finding.line] = LearnedCall(codes[finding.via].category, chain, self.sources.version)
        self.errors += len(failures)
        return found

    def _weak(self, leaf: str) -> bool:
        """A chain whose best leaf is weak (a cheap stat) is not learned, nor one that ends in a lock, a queue or a
        wait (a library's bookkeeping): the call blocks no more than any call does. A sleep is learned: a client
        that retries sleeps between attempts."""
        api = self.knowledge.blocking_api(leaf)
        return api is not None and api.weak and api.category != "sleep"

    def _shown(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _read(path: Path) -> str:
    return decode(path.read_bytes())

"""Coroutines nothing runs: a blocking call in one does not hold any loop.

Routes of a router nothing mounts: `activity_router = APIRouter()` with its `@activity_router.get(...)` routes,
whose name is written nowhere in the checked files but there and in imports (never in `include_router(...)`, a list
of routers, an argument), serve no request. Judged only where the checked files build the app (`FastAPI(`) and
mount routers with `include_router`, and textually, leaning to keeping: a name written anywhere else (`router`,
which every router module defines, or `users.router`) keeps the routes. Where the app loads its router modules by
name (`importlib.import_module("routers.auth_routes")`, their dotted names written as strings), a router module
whose name is written in no other checked file, as a string, an import or anything else, is not loaded either.


A coroutine runs on the loop only when something awaits it, schedules it or hands it to a framework, and each of
those names it: a call, a reference (`asyncio.create_task(self._poll())`, `handlers = {"doc": self._from_doc}`),
a decorator that registers it. A private one (`_name`, a module's or a class's own), whose name is written nowhere
in the project but in its own `def`, is dead code: a helper left behind when its caller went. The test is textual
and leans to keeping: any other occurrence of the name, in a string or a comment too, keeps the coroutine. Where
the checked files build an app, a public function is judged too, by what the app runs (`uncalled`): a library's
are its users' to call.

A module the app never imports runs none of its coroutines on the app's loop: a superseded `webhook_old.py`, a
worker started as `python -m worker_main`, a script imported only by its tests. Judged only where the checked files
build an app (`FastAPI(`), from the files whose code (not a comment or docstring) names the app's class (to build
it, subclass it, annotate a parameter with it) or mounts a router: what they import, at any depth and anywhere in a
module (a function's own `import`), a package's `__init__` with each of its modules, and the modules named in
strings (`"app.main:app"`, `"routers.users"`) or as a package in a formatted one (`f"app.plugins.{name}"`, every
module of the package); where a module the app imports discovers modules at run time (`pkgutil.walk_packages`,
entry points), every module of its tree (a monorepo's service, not its neighbours).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from asyncguard.lint.engine.names import IMPORT_STATEMENT, STANDARD_LIBRARY, Outline
from asyncguard.lint.findings import Finding

ROUTE_CONTEXTS = ("path operation ", "websocket handler ")
"""How a finding's context names a route (`FastApiFacts.describe`): only those can be a router's."""
IMPORTS = re.compile(r"^[ \t]*(?:from(?:[ \t]|\\\n)+(?P<source>\.*(?:[\w.]|[ \t]*\\\n[ \t]*(?=\.))*)"
                     r"(?:[ \t]|\\\n)+import(?:[ \t]|\\\n)+(?P<names>\([^)]*\)|(?:[^\n#;\\]|\\\n)*)"
                     r"|import[ \t]+(?P<modules>[^\n#;]*))", re.MULTILINE)
"""`from a.b import c, d` (also in parentheses, or split by backslashes) and `import a.b as c, d`."""
CONTINUATION = re.compile(r"[ \t]*\\\n[ \t]*")
QUOTED_MODULE = re.compile(r"""["']([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*(?=:[A-Za-z_]\w*["']))""")
DISCOVERY = re.compile(r"\b(?:walk_packages|iter_modules|entry_points|autodiscover_tasks)\(")
LOADS_FILE = re.compile(r"\bspec_from_file_location\(")
PY_FILE = re.compile(r"""["']((?:[\w.-]+/)*[A-Za-z_]\w*\.py)["']""")
"""A file loaded by its path (`spec_from_file_location("x", root / "redactor.py")`): its name is written."""
IMPORTS_BY_NAME = re.compile(r"\b(?:import_module|__import__)\(")
FORMATTED_PACKAGE = re.compile(r"""\b[rR]?[fF][rR]?["']([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.\{""")
BUILT_APP = re.compile(r"\b(?:FastAPI|Starlette)\(")
APP = re.compile(r"\b(?:FastAPI|Starlette)\b|\.include_router\(")
PROSE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|#[^\n]*')
RETIRED = frozenset({"archive", "archived", "deprecated", "obsolete", "backup", "backups", "old", "attic"})
"""Directories where an app is kept, not served: one built there is no root where another app is built elsewhere."""
BOUND = re.compile(r"^(?:(?:async[ \t]+)?def[ \t]+|class[ \t]+|(?=\w+[ \t]*[:=][^=]))(\w+)", re.MULTILINE)
"""What a module binds at its top level: functions, classes, assignments (`router = APIRouter()`)."""
DEFINITION = re.compile(r"(?:async[ \t]+)?def[ \t]+(?P<function>\w+)|class[ \t]+(?P<class>\w+)")
CLASS_NAME = re.compile(r"^[ \t]*class[ \t]+(\w+)[ \t]*(?:\(([^)]*)\))?", re.MULTILINE)
INSIDE_BASES = frozenset({"object", "ABC", "Protocol", "Generic", "NamedTuple", "TypedDict", "Enum", "str", "int",
                          "dict", "list", "Exception"})
"""Bases that call none of a class's methods by name: a method of such a class runs where something names it."""
IMPORT_LINE = re.compile(r"(?:from[ \t]+\S+[ \t]+)?import[ \t]|__all__[ \t]*[:+]?=")
"""Lines that name nothing they run: imports and the export list (`__all__ = ["finalize_installation"]`)."""
PLAIN_DECORATOR = re.compile(r"@(?:(?:abc|functools|typing|typing_extensions)\.)?(?:property|staticmethod|classmethod"
                             r"|abstractmethod|cached_property|lru_cache|cache|wraps|override|final|dataclass"
                             r"|total_ordering|unique|runtime_checkable)\b"
                             r"|@\w+\.(?:setter|getter|deleter)\b")
"""Decorators that register a function or class with nothing: it runs where its name is written."""
ELSEWHERE = re.compile(r"@(?:\w+\.)*(?:activity\.defn|workflow\.(?:run|signal|query|update)|shared_task|task|actor)\b")
"""Decorators that hand a function to a worker's own process (Temporal activities and workflows, Celery, Dramatiq
and Prefect tasks): the app names it to have it run there."""
WORD = re.compile(r"[A-Za-z_]\w*")
ALIAS = re.compile(r"(\w+)[ \t]+as[ \t]+(\w+)")
LITERAL = re.compile(r"""[rRbBuUfF]*(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''"""
                     r"""|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|#[^\n]*""")
"""Strings and comments, read from the left: a `#` inside a string starts no comment."""
BRACKET = re.compile(r"[()\[\]{}]")
STRING = re.compile(r"""[rRbBuUfF]*(?:'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""")
NESTED = re.compile(r"(?:nested function \S+|lambda) \(in (?P<outer>.*)\)")


def coroutine_of(context: str) -> tuple[str, bool] | None:
    """The name that must be written elsewhere for the private coroutine a finding is in to run, and whether it is
    a module-level function (whose decorator may register it); None for any other coroutine (public, nested, a
    route, a dependency, a middleware)."""
    while (nested := NESTED.fullmatch(context)) is not None:
        context = nested["outer"]
    if context.startswith("async function "):
        name, module_level = context.removeprefix("async function "), True
    elif context.startswith("method "):
        name, module_level = context.removeprefix("method ").partition(".")[2], False
    else:
        return None
    private = name.startswith("_") and not name.startswith("__") and "." not in name
    return (name, module_level) if private else None


def unreached(findings: Iterable[Finding], module_of: Callable[[str], str | None],
              outline_of: Callable[[str], Outline], sources: Callable[[], Iterable[str]]) -> set[tuple[str, str]]:
    """The (path, context) of each finding's private coroutine that nothing in the project names; `sources` are
    the texts of every module of the project, read only when some finding is in such a coroutine."""
    candidates: dict[tuple[str, str], str] = {}
    for finding in findings:
        place = finding.path, finding.context
        found = coroutine_of(finding.context) if place not in candidates else None
        module = module_of(finding.path) if found is not None else None
        if module is not None and not (found[1] and found[0] in outline_of(module).decorated):
            candidates[place] = found[0]
    if not candidates:
        return set()
    words = re.compile(r"\b(?:%s)\b" % "|".join(sorted(map(re.escape, set(candidates.values())))))
    written: dict[str, int] = {}
    for text in sources():
        for word in words.findall(text):
            written[word] = written.get(word, 0) + 1
    return {place for place, name in candidates.items() if written.get(name, 0) <= 1}


def unmounted(findings: Iterable[Finding], module_of: Callable[[str], str | None],
              outline_of: Callable[[str], Outline], texts: Callable[[], dict[str, str]]) -> set[tuple[str, str]]:
    """The (path, context) of each finding inside a route of a router that nothing mounts. `module_of` gives the
    module a finding's file is, None where its name is another file's too (a monorepo's `app.main` of each
    service); `texts` every checked file's text by path, read only when some finding is in a route of a router with
    a name of its own."""
    places: dict[tuple[str, str], tuple[str, str]] = {}  # (path, context) -> (path, router)
    route_modules: dict[tuple[str, str], tuple[str, str]] = {}  # (path, context) -> (path, module)
    common: dict[tuple[str, str], tuple[str, str]] = {}  # the same, for routers named `router`
    for finding in findings:
        if not finding.context.startswith(ROUTE_CONTEXTS):
            continue
        module = module_of(finding.path)
        routes = outline_of(module).routes if module is not None else {}
        for router, spans in routes.items():
            if any(first <= finding.line <= last for first, last in spans):
                route_modules[(finding.path, finding.context)] = (finding.path, module)
                if router == "router":
                    common[(finding.path, finding.context)] = (finding.path, module)
                else:
                    places[(finding.path, finding.context)] = (finding.path, router)
    if not route_modules:
        return set()
    sources = texts()
    if not any("include_router" in text for text in sources.values()) or \
            not any("FastAPI(" in text for text in sources.values()):
        return set()  # the app, or how it mounts its routers, is not among the files checked
    mounted = {owner for owner in set(places.values()) if written_elsewhere(*owner, sources)}
    unloaded = not_loaded(set(route_modules.values()), sources)
    discovered = any(DISCOVERY.search(text) or IMPORTS_BY_NAME.search(text) for text in sources.values())
    unbound = set() if discovered else {owner for owner in set(common.values()) if not router_bound(*owner, sources)}
    return ({place for place, owner in places.items() if owner not in mounted}
            | {place for place, owner in route_modules.items() if owner in unloaded}
            | {place for place, owner in common.items() if owner in unbound})


def router_bound(path: str, module: str, texts: dict[str, str]) -> bool:
    """Whether some other file may mount the `router` of `module`: it binds the module (`from app.api.routes import
    nylas`, `import app.api.routes.nylas`) or its router (`from .nylas import router as nylas_router`) and writes
    that name outside its imports, re-exports it (a package's `__init__`), or names the module in a string (a
    loader's list). Not a file that imports only other names of it (`from app.api.routes.nylas import client`)."""
    if "include_router(" in texts.get(path, "") or "FastAPI(" in texts.get(path, ""):
        return True  # mounted where it is made
    parts = module.split(".")
    last = parts[-1]
    loaded = re.compile(rf"""["'](?:[\w.]*\.)?{re.escape(last)}["']""")
    attribute = re.compile(rf"\b{re.escape(last)}\.router\b")  # `routes.nylas.router`, `app.api.routes.nylas.router`
    for other, text in texts.items():
        if other == path or last not in text:
            continue
        code = IMPORT_STATEMENT.sub("", PROSE.sub("", text))
        if attribute.search(code) or loaded.search(code):
            return True
        bound: set[str] = set()
        for found in IMPORTS.finditer(text):
            if found["modules"] is not None:
                for item in found["modules"].split(","):
                    name, _, alias = (piece.strip() for piece in item.partition(" as "))
                    if alias and name.split(".")[-1] == last and _ends(parts, name.split(".")):
                        bound.add(alias)
                continue
            source = CONTINUATION.sub("", found["source"]).lstrip(".").split(".")
            for item in found["names"].strip("() \t\n").replace("\\", "").split(","):
                name, _, alias = (piece.strip() for piece in item.partition(" as "))
                if name == last and _ends(parts, [*filter(None, source), name]):
                    bound.add(alias or name)
                elif name in ("router", "*") and source[-1] == last and _ends(parts, source):
                    bound.add(alias or "router")
        if bound and other.endswith("__init__.py"):
            return True
        if any(re.search(rf"(?<![\w.]){re.escape(word)}\b", code) for word in bound):
            return True
    return False


def _ends(parts: list[str], tail: list[str]) -> bool:
    """Whether the dotted name `parts` ends with `tail` (a relative import's, or one from another root)."""
    return len(tail) <= len(parts) and parts[len(parts) - len(tail):] == tail


def not_loaded(modules: set[tuple[str, str]], texts: dict[str, str]) -> set[tuple[str, str]]:
    """The (path, module) of router modules an app that loads its routers by dotted name (written as a string)
    cannot load: their last name is written in no other checked file. Where no router module is named in a string,
    the app imports its routers or discovers them, and this judges nothing."""
    quoted = re.compile(r"""["'](%s)["']""" % "|".join(sorted(re.escape(module) for _, module in modules)))
    if not any(quoted.search(text) for text in texts.values()):
        return set()
    words = re.compile(r"\b(?:%s)\b" % "|".join(sorted({re.escape(module.rpartition(".")[2]) for _, module in modules})))
    written_in: dict[str, set[str]] = {}
    for path, text in texts.items():
        for word in set(words.findall(text)):
            written_in.setdefault(word, set()).add(path)
    return {(path, module) for path, module in modules if not written_in.get(module.rpartition(".")[2], set()) - {path}}


def written_elsewhere(path: str, router: str, texts: dict[str, str]) -> bool:
    """Whether `router` is written anywhere but in its own file's assignment and decorators, and in imports."""
    word = re.compile(rf"\b{re.escape(router)}\b")
    own_lines = re.compile(rf"^[ \t]*(?:{re.escape(router)}[ \t]*[:=]|@{re.escape(router)}\.)[^\n]*", re.MULTILINE)
    for named, text in texts.items():
        if router not in text:
            continue
        text = IMPORT_STATEMENT.sub("", text)
        if named == path:
            text = own_lines.sub("", text)
        if word.search(text):
            return True
    return False


def off_the_app(findings: Iterable[Finding], modules: dict[str, str], texts: Callable[[], dict[str, str]],
                libraries: frozenset[str] = frozenset()) -> set[tuple[str, str]]:
    """The (path, context) of each finding in a file that no file naming the app imports, at any depth, or in a
    function that nothing the app runs calls (`uncalled`). `modules` gives each checked file's module name by the
    path findings show; `texts` every checked file's text by that path, read only when some finding is in a checked
    file; `libraries` the top-level names of libraries (the standard library's too), which a project module
    shadows only from the top. Files, not module names: each service of a monorepo has its own `app.main`."""
    places = {(f.path, f.context) for f in findings if f.path in modules}
    if not places:
        return set()
    sources = texts()
    code = Code(sources)
    reached = app_files(modules, sources, code, {path for path, _ in places}, libraries)
    if reached is None:
        return set()
    return {place for place in places if place[0] not in reached} | uncalled(places, sources, reached)


def app_files(modules: dict[str, str], sources: dict[str, str], code: "Code", wanted: set[str],
              libraries: frozenset[str] = frozenset()) -> set[str] | None:
    """The files the app imports, at any depth, with every one of `wanted` whose module reached code names however,
    and all the files of the tree of one that discovers modules at run time (`pkgutil.walk_packages`, entry points);
    None where no checked file builds an app. An app built under `archive/` (`old/`, `deprecated/`...) is not one
    where another is built elsewhere: a copy kept, not served. An import of the standard library (`import
    logging`) is no `tool/logging/` of the project unless it is a top-level name of it; one of another library
    (`from starlette.middleware.base import ...`) no `pipelines/base.py` unless the project has a package of its name
    (a service's `tools/` beside some library's)."""
    # each regular expression below runs only on the texts a substring test lets through
    if not any(("FastAPI(" in text or "Starlette(" in text) and BUILT_APP.search(text) for text in sources.values()):
        return None
    named = {part for module in modules.values() for part in module.split(".")}
    libraries = STANDARD_LIBRARY - {module.split(".", 1)[0] for module in modules.values()} | libraries - named
    by_suffix: dict[str, set[str]] = {}
    for path, module in modules.items():
        parts = module.split(".")
        for start in range(len(parts)):
            by_suffix.setdefault(".".join(parts[start:]), set()).add(path)
    reached: set[str] = set()
    pending = [path for path, text in sources.items()
               if ("FastAPI" in text or "Starlette" in text or "include_router(" in text)
               and APP.search(IMPORT_STATEMENT.sub("", code[path]))]
    top = _common(list(sources))
    served = [path for path in pending if not RETIRED & set(path[len(top):].split("/")[:-1]) and not is_test(path)]
    pending = served or pending  # an app kept in `archive/` beside the one served, or a test's, is not
    while pending:
        while pending:
            path = pending.pop()
            if path in reached or path not in sources:
                continue
            reached.add(path)
            text = sources[path]
            if DISCOVERY.search(text):  # what it may import: every module of its own tree (a service's)
                tree = _tree_of(path, sources)
                pending.extend(other for other in sources if other.startswith(tree))
            for relative, named in _imported_names(text):
                if relative or named.split(".", 1)[0] not in libraries:
                    pending.extend(_files_named(path, relative, named, by_suffix, modules))
            if IMPORTS_BY_NAME.search(text):  # `import_module(f"app.plugins.{name}")`, not a logger's name
                for package in FORMATTED_PACKAGE.findall(text):
                    pending.extend(other for other, module in modules.items() if f".{package}." in f".{module}.")
            if LOADS_FILE.search(text):
                for named in PY_FILE.findall(text):
                    pending.extend(_nearest(path, {other for other in sources if other.endswith(f"/{named}")}))
            directory = posixpath.dirname(path)
            while directory and (package := posixpath.join(directory, "__init__.py")) in sources:
                pending.append(package)  # importing a module runs its packages' `__init__` first
                directory = posixpath.dirname(directory)
        pending = _named_in_code(modules, wanted - reached, reached, code)
    return reached


@dataclass
class Unit:
    """A module's own code (`name` None), or a function of its own or of a class's body, with what it names."""
    path: str
    name: str | None
    words: set[str] = field(default_factory=set)
    root: bool = False
    special: bool = False
    """A special method (`__init__`, `__call__`): it runs where its class is used."""
    cls: str | None = None
    """The class whose method it is: it runs only where something names that class too (builds it, subclasses it,
    calls it through the class)."""
    elsewhere: bool = False
    """Registered to run in a worker (`ELSEWHERE`): nothing the app runs runs it."""
    code: list[str] = field(default_factory=list)
    """Its lines while the module is read, made `words` at the end."""

    @property
    def qualified(self) -> str | None:
        """`Class.method` for a method, the name for a function."""
        return f"{self.cls}.{self.name}" if self.cls is not None else self.name


def uncalled(places: set[tuple[str, str]], sources: dict[str, str], reached: set[str]) -> set[tuple[str, str]]:
    """The places in functions that nothing the app runs names. What runs: the code of each module the app
    imports (its top level and class bodies), and there every function a decorator registers (not `@property` or
    `@lru_cache`) but those a worker runs (a Temporal activity, a Celery task), methods of classes with a base from
    outside the project (a framework calls them), special methods of the classes what runs names; then every
    function of those modules whose name what runs writes, in a call, a reference or a string, to the end, a method
    where the name of its class is written too. Textual and leaning to keeping: one name written by running code
    keeps every function of that name. Comments, docstrings, import statements and `__all__` name nothing: a call
    left in a comment, a helper only a worker script or a dead function calls."""
    if not any(defined_in(context) is not None for _, context in places):
        return set()
    hooked = framework_classes(sources)
    units = [unit for path, text in sources.items() if path in reached for unit in units_of(path, text, hooked)]
    by_name: dict[str, list[Unit]] = {}
    for unit in units:
        if unit.name is not None and not unit.elsewhere:
            by_name.setdefault(unit.name, []).append(unit)
    alive = [unit for unit in units if unit.root and not unit.elsewhere or unit.name is None]
    live = {id(unit) for unit in alive}
    written: set[str] = set()
    unnamed_class: dict[str, list[Unit]] = {}  # a class's methods whose name is written, waiting for the class's

    def wake(unit: Unit) -> None:
        if unit.cls is not None and unit.cls not in written:
            unnamed_class.setdefault(unit.cls, []).append(unit)
        elif id(unit) not in live:
            live.add(id(unit))
            alive.append(unit)

    for unit in units:
        if unit.special and not unit.elsewhere:
            wake(unit)
    while alive:
        for word in alive.pop().words - written:
            written.add(word)
            for unit in [*unnamed_class.pop(word, ()), *by_name.get(word, ())]:
                wake(unit)
    defined = {(unit.path, unit.qualified) for unit in units if unit.name is not None}
    kept = {(unit.path, unit.qualified) for unit in units if id(unit) in live}
    return {(path, context) for path, context in places
            if (name := defined_in(context)) is not None and (path, name) in defined - kept}


def framework_classes(sources: dict[str, str]) -> set[str]:
    """The project classes with a base from outside the project, themselves or through project bases (by name):
    a framework may call their methods (`dispatch` of a middleware's base class)."""
    bases_of: dict[str, set[str]] = {}
    for text in sources.values():
        if "class" in text:
            for name, bases in CLASS_NAME.findall(text):
                bases_of.setdefault(name, set()).update(base_names(bases))
    hooked = {name for name, bases in bases_of.items() if bases - bases_of.keys()}
    while more := {name for name, bases in bases_of.items() if name not in hooked and bases & hooked}:
        hooked |= more
    return hooked


def base_names(bases: str) -> set[str]:
    """`Base[T], module.Mixin, metaclass=M` as the class names `Base` and `Mixin`, those that call nothing left out."""
    names = {base.split("[")[0].rpartition(".")[2].strip() for base in bases.split(",")}
    return {name for name in names if name and "=" not in name} - INSIDE_BASES


def defined_in(context: str) -> str | None:
    """The name of the module-level function or method (`Class.method`) a finding's context is in (through nested
    functions)."""
    while (nested := NESTED.fullmatch(context)) is not None:
        context = nested["outer"]
    if context.startswith("async function "):
        return context.removeprefix("async function ")
    if context.startswith("method "):
        return ".".join(context.removeprefix("method ").split(".")[-2:])
    return None


def units_of(path: str, text: str, hooked: set[str]) -> list[Unit]:
    """The module's own code and its functions, read off the indentation of its lines (comments and docstrings
    blanked, lines inside brackets kept with the line they continue); a nested function is its outer one's. An
    import names nothing, but `import x as y` makes a `y` written name `x` too."""
    module = Unit(path, None)
    units = [module]
    stack: list[tuple[int, Unit, bool, bool, str | None]] = []
    # (indent, unit, in a function, in a class a framework calls, the class whose body it is)
    depth = 0
    importing = False
    decorators: list[str] = []
    aliases: dict[str, str] = {}
    for line in LITERAL.sub(_blank_prose, text).split("\n"):
        stripped = line.strip()
        if depth > 0 or not stripped:
            if importing:
                aliases.update((alias, name) for name, alias in ALIAS.findall(line))
            else:
                (stack[-1][1] if stack else module).code.append(line)
            depth = max(0, depth + _brackets(line))
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        owner, in_function, outside_base, in_class = stack[-1][1:] if stack else (module, False, False, None)
        definition = DEFINITION.match(stripped)
        registered = any(not PLAIN_DECORATOR.match(decorator) for decorator in decorators)
        importing = IMPORT_LINE.match(stripped) is not None
        if importing:
            aliases.update((alias, name) for name, alias in ALIAS.findall(stripped))
        elif definition is None:
            owner.code.append(stripped)
        elif definition["class"] is not None:  # its bases; naming the class is what others do, or a decorator
            owner.code.append(stripped if registered else stripped[definition.end():])  # (`@register("salla")`)
            stack.append((indent, owner, in_function, definition["class"] in hooked, definition["class"]))
        elif in_function:
            owner.code.append(stripped)
            stack.append((indent, owner, True, False, None))
        else:
            name = definition["function"]
            special = name.startswith("__") and name.endswith("__")
            unit = Unit(path, name, root=registered or outside_base or special and in_class is None,
                        special=special, cls=in_class,
                        elsewhere=any(ELSEWHERE.match(decorator) for decorator in decorators))
            owner.code.append(stripped.partition("(")[2])  # defaults run where the def stands
            units.append(unit)
            stack.append((indent, unit, True, False, None))
        decorators = [*decorators, stripped] if stripped.startswith("@") else []
        depth = max(0, _brackets(line))
    for unit in units:
        unit.words = set(WORD.findall("\n".join(unit.code)))
        unit.words.update(aliases[alias] for alias in unit.words & aliases.keys())
        unit.code = []
    return units


def _blank_prose(found: re.Match) -> str:
    """A comment made nothing and a triple-quoted string its line breaks; a one-line string kept (it names)."""
    literal = found.group()
    if literal.startswith("#") or literal.lstrip("rRbBuUfF")[:3] in ('"""', "'''"):
        return "\n" * literal.count("\n")
    return literal


def _brackets(line: str) -> int:
    """How many more brackets the line opens than it closes, outside its strings."""
    if not BRACKET.search(line):
        return 0
    code = STRING.sub("", line) if "'" in line or '"' in line else line
    return code.count("(") + code.count("[") + code.count("{") - code.count(")") - code.count("]") - code.count("}")


def _common(paths: list[str]) -> str:
    """The directory the paths share, "" for none (or relative and absolute ones mixed)."""
    try:
        return posixpath.commonpath(paths) if len(paths) > 1 else ""
    except ValueError:
        return ""


def _tree_of(path: str, sources: dict[str, str]) -> str:
    """The outermost package holding `path` (its own directory where it is in none), with a trailing slash ("" for
    the top): what it may discover and import (`pkgutil.walk_packages(__path__)`, a plugin package)."""
    directory = posixpath.dirname(path)
    if posixpath.join(directory, "__init__.py") in sources:
        while (parent := posixpath.dirname(directory)) and posixpath.join(parent, "__init__.py") in sources:
            directory = parent
    return f"{directory}/" if directory else ""


class Code(dict):
    """Each file's text without its comments and docstrings (what names nothing), made when first asked for."""

    def __init__(self, sources: dict[str, str]):
        super().__init__()
        self.sources = sources

    def __missing__(self, path: str) -> str:
        self[path] = PROSE.sub("", self.sources[path])
        return self[path]


def _named_in_code(modules: dict[str, str], unreached: set[str], reached: set[str], code: Code) -> list[str]:
    """The unreached files whose module the code of a reached one names however: an import spelled in a way this
    reading misses, or a name handed to a loader. Named is the module's last name before one of the names it binds
    (`orders.router`) or ending a dotted string (`'.orders'`), not the word alone: `voice` of `app.routes.voice` is
    also a package's (`app.services.voice`), a key, a keyword argument, and `users` a permission's (`"users.read"`)."""
    names = {path: modules[path].rpartition(".")[2] for path in unreached}
    if not names:
        return []
    wanted = set(names.values())
    texts = [code[path] for path in reached if any(name in code.sources[path] for name in wanted)]
    found: list[str] = []
    for path, name in names.items():
        bound = BOUND.findall(code[path])
        uses = rf"\b{re.escape(name)}\.(?:{'|'.join(sorted(map(re.escape, set(bound))))})\b" if bound else None
        named = re.compile(rf"""["'][\w.]*\.{re.escape(name)}["']""" + (f"|{uses}" if uses else ""))
        if any(name in text and named.search(text) for text in texts):
            found.append(path)
    return found


def _files_named(importer: str, relative: int, name: str, by_suffix: dict[str, set[str]],
                 modules: dict[str, str]) -> Iterable[str]:
    """The checked files a dotted name imported by `importer` may be: relative to its directory for a relative
    import (`relative` dots), else those whose module name ends with the name, or with its longest tail that some
    file's does (a module named from another root than the importer's); of several, the one nearest the importer,
    none where several in different directories are as near (`import server` of two other services)."""
    if relative:
        directory = posixpath.dirname(importer)
        for _ in range(relative - 1):
            directory = posixpath.dirname(directory)
        base = posixpath.join(directory, *name.split(".")) if name else directory
        return [candidate for candidate in (f"{base}.py", posixpath.join(base, "__init__.py")) if candidate in modules]
    parts = name.split(".")
    start, found = next(((start, by_suffix[tail]) for start in range(len(parts))
                         if (tail := ".".join(parts[start:])) in by_suffix), (0, set()))
    if start:  # `mcp.types` is no far `core/types.py`; `app.crm.router` is `app/crm/router.py` of root `app/`
        own = _root_of(importer, modules[importer])
        spelled = "/".join(parts)
        found = {path for path in found if _root_of(path, modules[path]) == own or _common([importer, path])
                 or f"/{path}".endswith((f"/{spelled}.py", f"/{spelled}/__init__.py"))}
    nearest = _nearest(importer, found)
    return nearest if len({posixpath.dirname(path) for path in nearest}) < 2 else set()


def _nearest(importer: str, found: set[str]) -> set[str]:
    """Of the files `found`, those sharing the most directories with the importer: one service's `app.db`, not its
    archived copy's."""
    if len(found) < 2:
        return found
    near = {path: len(_common([importer, path])) for path in found}
    nearest = max(near.values())
    return {path for path, shared in near.items() if shared == nearest}


def _root_of(path: str, module: str) -> str:
    """The directory a file's module name starts from (`services/a/` of `services/a/app/main.py`, `app.main`)."""
    depth = module.count(".") + (2 if path.endswith("/__init__.py") else 1)
    return "/".join(path.split("/")[:-depth])


def is_test(path: str) -> bool:
    """Whether a file is a test's (`tests/`, `test_x.py`, `x_test.py`, `conftest.py`): an app it builds is the
    test's."""
    *directories, name = path.split("/")
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(directory in ("test", "tests") for directory in directories))


def _imported_names(text: str) -> Iterable[tuple[int, str]]:
    """The dotted names a module imports or names in a string, each with the dots of its relative import: each
    one a module, a package, or a name bound in one (which resolves to no file)."""
    for found in IMPORTS.finditer(text):
        if found["modules"] is not None:
            for item in found["modules"].split(","):
                if (name := item.split(" as ")[0].strip()):
                    yield 0, name
            continue
        source = CONTINUATION.sub("", found["source"])
        dots = len(source) - len(source.lstrip("."))
        source = source.lstrip(".")
        names = [name for item in found["names"].strip("() \t\n").replace("\\", "").split(",")
                 if (name := item.split(" as ")[0].strip()) and name != "*"]
        if source or dots:
            yield dots, source
        yield from ((dots, f"{source}.{name}" if source else name) for name in names)
    yield from ((0, name) for name in QUOTED_MODULE.findall(text))

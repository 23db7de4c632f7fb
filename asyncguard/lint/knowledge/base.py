"""The blocking-call knowledge base: `blocking_calls.toml` compiled into fast look-ups.

Patterns without wildcards go into dicts (one hash look-up per call); the few with wildcards are compiled into
regular expressions and tried only when the exact look-up fails.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

from asyncguard.lint.knowledge.learned_data import LearnedBlocking, LearnedData, shipped_directory

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# Calls whose *arguments* are handed to a worker thread, process or later task, uncalled. A lambda or nested
# function given to one of these does not run on the event loop.
OFFLOADERS = (
    "asyncio.to_thread",
    "**.run_in_executor",
    "starlette.concurrency.run_in_threadpool",
    "fastapi.concurrency.run_in_threadpool",
    "anyio.to_thread.run_sync",
    "trio.to_thread.run_sync",
    "asgiref.sync.sync_to_async",
    "**.add_task",
    "**.submit",
)


@dataclass(frozen=True)
class NonBlockingWhen:
    """An argument value that makes an otherwise blocking call return at once (`q.get(block=False)`)."""

    arg: str
    position: int | None
    value: str
    default: bool = False
    """`value` is the argument's default: a call that leaves the argument out does not block either."""


@dataclass(frozen=True)
class FileArgument:
    """Where a file-format call takes its path or file object (`Image.open(fp)`): given an in-memory buffer there,
    the call touches no disk."""

    position: int | None
    arg: str
    any_value: bool = False
    """Whatever is given there is data in memory (`pymupdf.open(stream=data)`)."""
    absent: bool = False
    """Leaving it out, or giving None, keeps the work in memory (`df.to_csv()` returns the text)."""


@dataclass(frozen=True)
class BlockingApi:
    """One family of blocking calls: what they are and what to use instead."""

    category: str
    """Selects the rule that reports the call (`Rule.category`)."""
    use: str
    """The async alternative, shown as the finding's suggestion."""
    unless: tuple[NonBlockingWhen, ...] = ()
    with_statement: bool = False
    """Also flag `with obj:` on an instance (locks block in `__enter__`)."""
    message: str | None = None
    """A project's own wording for a configured call (`extra-blocking-calls`)."""
    weak: bool = False
    """Blocks briefly or only sometimes (a lock, a cheap stat): a chain to real I/O is shown before one to this."""
    read: bool = False
    """An attribute whose reading blocks (a library property: `AsyncResult.status` asks the result backend)."""
    learned: str = ""
    """Where the knowledge came from when it was learned from the library's sources, with the library's own chain
    (`learned from elasticsearch 9.5.1: Elasticsearch.msearch → … → urllib3.HTTPConnectionPool.urlopen`)."""


def glob_to_regex(pattern: str) -> str:
    """Translate a dotted-name glob (`*` one segment, `**` any number of segments) into a regex."""
    out: list[str] = []
    parts = pattern.split(".")
    for index, part in enumerate(parts):
        if part == "**":
            out.append(r"(?:[^.]+\.)*" if index == 0 else r"(?:\.[^.]+)*")
            continue
        if index > 0 and not (index == 1 and parts[0] == "**"):
            out.append(r"\.")
        segment = re.sub(r"\[[^\]]*\]|\*|[^*\[]+", _translate_glob_piece, part)
        out.append(segment)
    return "".join(out)


def _translate_glob_piece(match: re.Match[str]) -> str:
    piece = match.group(0)
    if piece == "*":
        return r"[^.]*"
    if piece.startswith("["):
        return piece
    return re.escape(piece)


class PatternTable:
    """Maps qualified names to values by exact name first, then by the first matching wildcard pattern."""

    def __init__(self, entries: Iterable[tuple[str, object]]):
        self.exact: dict[str, object] = {}
        wildcards: list[tuple[str, object]] = []
        for pattern, value in entries:
            if any(ch in pattern for ch in "*["):
                wildcards.append((pattern, value))
            else:
                self.exact.setdefault(pattern, value)
        self.by_root: dict[str, list[tuple[int, re.Pattern[str], object]]] = {}
        """Wildcard patterns by their literal first segment (`supabase` of `supabase.SyncBucket.*`), those whose
        first segment is itself a wildcard under "": a name is tried against its root's few, not all of them."""
        for order, (pattern, value) in enumerate(wildcards):
            root = pattern.split(".", 1)[0]
            key = "" if any(ch in root for ch in "*[") else root
            self.by_root.setdefault(key, []).append((order, re.compile(glob_to_regex(pattern)), value))

    def get(self, name: str) -> object | None:
        found = self.exact.get(name)
        if found is not None:
            return found
        best: tuple[int, object] | None = None  # the first matching pattern in the order they were given
        for candidates in (self.by_root.get(name.split(".", 1)[0], ()), self.by_root.get("", ())):
            for order, regex, value in candidates:
                if best is not None and order > best[0]:
                    break
                if regex.fullmatch(name):
                    best = (order, value)
                    break
        return best[1] if best is not None else None


@dataclass
class Knowledge:
    """Everything the analyzer needs to know about third-party and standard-library APIs."""

    blocking: PatternTable
    safe: PatternTable
    returns: PatternTable
    attributes: dict[str, str]
    iterates: PatternTable
    aliases: list[tuple[str, str]]
    offloaders: PatternTable = field(default_factory=lambda: PatternTable((p, True) for p in OFFLOADERS))
    file_arguments: PatternTable = field(default_factory=lambda: PatternTable(()))
    """`[in-memory.files]`: the arguments through which a file-format call does its file I/O."""
    buffers: frozenset[str] = frozenset()
    """`[in-memory] buffers`: types whose instances hold their data in memory (`io.BytesIO`)."""
    learned: LearnedData | None = None
    """What was learned from libraries' sources: asked only where the curated tables are silent."""
    canonical_names: dict[str, str] = field(default_factory=dict, repr=False)
    """`canonical`'s answers: the analysis asks for the same few names tens of thousands of times a run."""

    def canonical(self, name: str) -> str:
        """Rewrite re-exported spellings (`sqlalchemy.orm.session.Session`) to the one the patterns use."""
        remembered = self.canonical_names
        rewritten = remembered.get(name)
        if rewritten is None:
            rewritten = next((replacement + name[len(prefix):] for prefix, replacement in self.aliases
                              if name.startswith(prefix) and (len(name) == len(prefix) or prefix.endswith(".")
                                                              or name[len(prefix)] == ".")), name)
            remembered[name] = rewritten
        return rewritten

    def library_roots(self) -> frozenset[str]:
        """The top-level names of the libraries it speaks of (`celery`, `google`): a project module that is only
        a suffix of its full name (`services/celery/`, `celery` of `app.services.celery`) does not shadow them."""
        roots = {module.split(".", 1)[0] for module in self.learned.files} if self.learned is not None else set()
        for table in (self.blocking, self.returns, self.safe):
            roots.update(pattern.split(".", 1)[0] for pattern in table.exact)
            roots.update(root for root in table.by_root if root)
        return frozenset(roots)

    def blocking_api(self, name: str) -> BlockingApi | None:
        if self.safe.get(name) is not None:
            return None
        found = self.blocking.get(name)
        if isinstance(found, BlockingApi):
            return found
        learned = self.learned.blocking(name) if self.learned is not None else None
        if learned is None or any(self.safe.get(step) is not None for step in learned.chain[1:]):
            return None  # a chain through a call the curated base knows is safe (`Image.convert`) does not block
        return _learned_api(learned)

    def is_allowed(self, name: str) -> bool:
        """Declared non-blocking: shipped safe calls and the project's `allowed-calls`."""
        return self.safe.get(name) is not None

    def result_type(self, name: str) -> str | None:
        found = self.returns.get(name)
        if isinstance(found, str):
            return found
        return self.learned.result_type(name) if self.learned is not None else None

    def attribute_type(self, name: str) -> str | None:
        found = self.attributes.get(name)
        if found is None and self.learned is not None:
            return self.learned.attribute_type(name)
        return found

    def member(self, path: str, instance: bool, attribute: str) -> tuple[str, bool]:
        """`obj.attribute` on a library object: the attribute's declared type (an instance), else the longer name
        (`pymongo.MongoClient.db.users`), with whether it is an instance."""
        name = self.canonical(f"{path}.{attribute}")
        typed = self.attribute_type(name) if instance else None
        return (typed, True) if typed else (name, False)

    @staticmethod
    def invoked(path: str, instance: bool) -> str:
        """The name a call of the object invokes: `Class.__call__` for an instance."""
        return f"{path}.__call__" if instance else path

    def returned(self, callee: str) -> str | None:
        """The instance type a call of `callee` produces, where the knowledge base gives one."""
        found = self.result_type(callee)
        return self.canonical(found) if found is not None else None

    def item_type(self, name: str) -> str | None:
        """What iterating the result of calling `name` yields."""
        found = self.iterates.get(name)
        return found if isinstance(found, str) else None

    def file_arguments_of(self, name: str) -> tuple[FileArgument, ...]:
        """The arguments through which calling `name` reads or writes a file, if it can work in memory."""
        found = self.file_arguments.get(name)
        return found if isinstance(found, tuple) else ()

    def is_offloader(self, name: str) -> bool:
        return self.offloaders.get(name) is not None


@lru_cache(maxsize=4096)
def _learned_api(learned: LearnedBlocking) -> BlockingApi:
    counterpart = f"`{learned.asynchronous}` of the same library, or " if learned.asynchronous else "its async client, or "
    steps = [step.rsplit(".", 2)[-2] + "." + step.rsplit(".", 1)[-1] if step.count(".") > 1 else step
             for step in learned.chain[:-1]] + [learned.chain[-1]]
    return BlockingApi(category=learned.category, use=f"{counterpart}`await asyncio.to_thread(...)`",
                       learned=f"learned from {learned.source}: {' → '.join(steps)}")


def _blocking_entries(data: Mapping) -> Iterable[tuple[str, BlockingApi]]:
    for entry in data.get("blocking", []):
        api = BlockingApi(
            category=entry["category"],
            use=entry["use"],
            unless=tuple(NonBlockingWhen(u["arg"], u.get("position"), u["value"], u.get("default", False))
                   for u in entry.get("unless", [])),
            with_statement=entry.get("with", False),
            weak=entry.get("weak", False),
        )
        for pattern in entry.get("calls", []):
            yield pattern, api
        reading = replace(api, read=True)
        for pattern in entry.get("reads", []):
            yield pattern, reading


def build_knowledge(
    extra_blocking: Mapping[str, Mapping[str, str]] | None = None,
    allowed: Iterable[str] = (),
    learned: Iterable[Path] | None = None,
    project_packages: Iterable[str] = (),
) -> Knowledge:
    """The shipped knowledge plus the project's `extra-blocking-calls` and `allowed-calls`; what was learned from
    libraries' sources in the shipped `learned/` directory, then in `learned` (the project's environment), except
    for the names of the project's own top-level packages (a project's `utils` is not a library's)."""
    data = _shipped_data()
    extra = [
        (
            pattern,
            BlockingApi(
                category="configured",
                use=spec.get("suggestion", "an async alternative"),
                message=spec.get("message"),
            ),
        )
        for pattern, spec in (extra_blocking or {}).items()
    ]
    safe = [(p, True) for entry in data.get("safe", []) for p in entry["calls"]]
    return Knowledge(
        # The project's own patterns come first so they win over the shipped ones.
        blocking=PatternTable([*extra, *_blocking_entries(data)]),
        safe=PatternTable([*((p, True) for p in allowed), *safe]),
        returns=PatternTable(data.get("returns", {}).items()),
        attributes=dict(data.get("attributes", {})),
        iterates=PatternTable(data.get("iterates", {}).items()),
        aliases=sorted(data.get("aliases", {}).items(), key=lambda kv: -len(kv[0])),
        file_arguments=PatternTable(
            (pattern, tuple(FileArgument(a.get("position"), a["arg"], a.get("any", False), a.get("absent", False))
                            for a in arguments))
            for pattern, arguments in data.get("in-memory", {}).get("files", {}).items()),
        buffers=frozenset(data.get("in-memory", {}).get("buffers", ())),
        learned=_learned_data(tuple(learned or ()), frozenset(project_packages)),
    )


@lru_cache(maxsize=4)
def _learned_data(directories: tuple[Path, ...], project_packages: frozenset[str]) -> LearnedData:
    return LearnedData([shipped_directory(), *directories], without=project_packages)


@lru_cache(maxsize=1)
def _shipped_data() -> dict:
    text = resources.files("asyncguard.lint.knowledge").joinpath("blocking_calls.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


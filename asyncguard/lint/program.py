"""The whole-program pass: which of the project's sync functions block, through any number of calls, and which
calls on the event loop reach them.

Each module brings a summary (per sync function: the blocking calls it makes itself and the project functions it
calls) and its calls of project functions on the loop. From those calls the pass follows the call graph forward,
loading the summaries of the modules it reaches on demand, then searches back from the functions that block
themselves, so each function gets its shortest chain to a blocking call, cycles included.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from asyncguard.lint.findings import Finding, internal_error, shown_call
from asyncguard.lint.knowledge import Knowledge
from asyncguard.lint.rule import rules_by_category

INDIRECT = "AG800"
"""The code of a call on the loop that blocks through helpers (`asyncguard.lint.rules.ag800_...`)."""
MAX_BASES = 16
"""Classes searched for an inherited method: enough for real hierarchies, a bound for cyclic or absurd ones."""


class LibraryCalls:
    """What the knowledge base says of the third-party calls the pass meets: a blocking method a project class
    inherits, and what a helper's calls on an argument become once the caller's argument type is known."""

    def __init__(self, knowledge: Knowledge):
        self.knowledge = knowledge
        self.codes = {category: rule.code for category, rule in rules_by_category().items()}

    def blocking(self, name: str) -> list | None:
        """`[call, code, use]` when calling `name` blocks."""
        api = self.knowledge.blocking_api(name)
        return None if api is None else [shown_call(name), self.codes[api.category], api.use]

    def through(self, instance: str, steps: list) -> list | None:
        """`[call, code, use]` of the first blocking call along `steps` (`[attribute, called]` pairs) from an
        instance of `instance`, resolved as the analyzer resolves them (attribute types, result types)."""
        path, is_instance = instance, True
        for attribute, called in steps:
            path, is_instance = self.knowledge.member(path, is_instance, attribute)
            if not called:
                continue
            callee = self.knowledge.invoked(path, is_instance)
            found = self.blocking(callee)
            if found is not None:
                return found
            returned = self.knowledge.returned(callee)
            if returned is None:
                return None
            path, is_instance = returned, True
        return None


@dataclass
class ModuleRecord:
    module: str
    path: str
    """As findings show it."""
    summary: dict
    loop_calls: list[list]


@dataclass(frozen=True)
class Step:
    name: str
    path: str
    line: int


class Program:
    def __init__(self, enabled: frozenset[str] | None, module_of: Callable[[str], str | None],
                 load: Callable[[list[str]], list[ModuleRecord | None]],
                 may_define: Callable[[str], bool] = lambda name: True, library: LibraryCalls | None = None):
        self.enabled = enabled
        self.module_of = module_of
        """The project module a qualified name belongs to, or None."""
        self.load = load
        """The records of modules no file of the run brought (read and summarised on demand, many at once so they
        can be summarised in parallel), None for one that cannot be read."""
        self.may_define = may_define
        """False for a name that cannot be a sync function, method or class of its module: nothing to load."""
        self.library = library
        """Third-party methods a project class inherits (`requests.Session.get`) and calls on arguments of a known
        type; without it neither is followed."""
        self.records: dict[str, ModuleRecord] = {}
        self.functions: dict[str, tuple[ModuleRecord, dict]] = {}
        self.classes: dict[str, list[str]] = {}
        self.derived: dict[str, tuple[ModuleRecord, dict]] = {}
        """Project classes with bases: their record, line and the methods they define."""
        self.loaded: set[str] = set()

    def add(self, record: ModuleRecord) -> None:
        self.records[record.module] = record
        self.loaded.add(record.module)
        for name, summary in record.summary.get("functions", {}).items():
            self.functions[name] = (record, summary)
        self.classes.update(record.summary.get("classes", {}))
        self.derived.update((name, (record, facts)) for name, facts in record.summary.get("derived", {}).items())

    def _ensure(self, name: str) -> None:
        self._prefetch([name])

    def _prefetch(self, names) -> None:
        """Load the modules of all these names in one go."""
        modules = sorted({module for name in names
                          if (module := self.module_of(name)) is not None and module not in self.loaded
                          and self.may_define(name)})
        self.loaded.update(modules)
        for record in self.load(modules) if modules else ():
            if record is not None:
                self.add(record)

    def resolve(self, name: str) -> str | None:
        """The summarised function a call of `name` runs: itself, a class's `__init__`, or an inherited method."""
        self._ensure(name)
        if name in self.functions:
            return name
        if name in self.classes:
            return self._method(name, "__init__")
        owner, _, attribute = name.rpartition(".")
        self._ensure(owner)
        return self._method(owner, attribute) if owner in self.classes else None

    def _method(self, class_name: str, attribute: str) -> str | None:
        """`attribute` of the class or, breadth first, of its bases (their modules loaded a level at a time)."""
        level, seen = [class_name], set()
        while level and len(seen) < MAX_BASES:
            level = [name for name in dict.fromkeys(level) if name not in seen]
            seen.update(level)
            self._prefetch(level)
            for current in level:
                if f"{current}.{attribute}" in self.functions:
                    return f"{current}.{attribute}"
                if current in self.derived and attribute in self.derived[current][1]["methods"]:
                    return None  # defined there, and it does not block
                blocking = None if current in self.classes or self.library is None else \
                    self.library.blocking(f"{current}.{attribute}")
                if blocking is not None:
                    return self._inherited_method(class_name, attribute, blocking)
            level = [base for current in level for base in self.classes.get(current, ())]
        return None

    def _inherited_method(self, class_name: str, attribute: str, blocking: list) -> str:
        """A project class's method that is a blocking one of a third-party base, as a function of the class that
        makes that call (its chain ends in the base's method)."""
        name = f"{class_name}.{attribute}"
        record, facts = self.derived[class_name]
        line = facts["line"]
        self.functions[name] = (record, {"line": line, "blocking": [[blocking[0], line, *blocking[1:]]],
                                         "calls": []})
        return name

    def _blocking_calls(self, summary: dict) -> list[list]:
        return [entry for entry in summary["blocking"] if self.enabled is None or entry[2] in self.enabled]

    def chains(self, starts: set[str]) -> dict[str, list[Step]]:
        """For each function reachable from `starts` that blocks: its shortest chain, ending in the blocking call."""
        edges: dict[str, set[str]] = {}
        level = set(starts)
        while level:  # breadth first, one batch of modules to load per level
            level -= edges.keys()
            self._prefetch(callee for name in level for callee in self.functions[name][1]["calls"])
            reached = set()
            for name in level:
                edges[name] = {target for target in map(self.resolve, self.functions[name][1]["calls"])
                               if target is not None and target != name}
                reached |= edges[name]
            level = reached
        callers: dict[str, set[str]] = {}
        for caller, targets in edges.items():
            for target in targets:
                callers.setdefault(target, set()).add(caller)
        following: dict[str, str | None] = {}
        frontier = deque(sorted(name for name in edges if self._blocking_calls(self.functions[name][1])))
        following.update((name, None) for name in frontier)
        while frontier:
            name = frontier.popleft()
            for caller in sorted(callers.get(name, ())):
                if caller not in following:
                    following[caller] = name
                    frontier.append(caller)
        return {name: self._chain(name, following) for name in following}

    def _chain(self, name: str, following: dict[str, str | None]) -> list[Step]:
        steps = []
        current: str | None = name
        while current is not None:
            record, summary = self.functions[current]
            steps.append(Step(current, record.path, summary["line"]))
            last = (current, record, summary)
            current = following[current]
        _, record, summary = last
        call, line = self._blocking_calls(summary)[0][:2]
        steps.append(Step(call, record.path, line))
        return steps

    def findings(self, failures: list[Finding] | None = None) -> list[Finding]:
        """AG800 for every call on the loop whose callee blocks, with the chain as evidence. Given `failures`, the
        pass's own error on a module becomes an AG002 there and the rest is still followed; without, it raises."""
        if self.enabled is not None and INDIRECT not in self.enabled:
            return []
        records = list(self.records.values())
        self._prefetch(call[0] for record in records for call in record.loop_calls)
        calls = []
        for record in records:
            with contained(failures, [record.path]):
                calls += [(record, call, self.resolve(call[0])) for call in record.loop_calls]
        chains: dict[str, list[Step]] = {}
        with contained(failures, sorted({record.path for record, _, _ in calls})):
            chains = self.chains({target for _, _, target in calls if target is not None})
        found = []
        for record, call, target in calls:
            with contained(failures, [record.path]):
                finding = self._finding(record, call, target, chains)
                if finding is not None:
                    found.append(finding)
        return found

    def _finding(self, record: ModuleRecord, call: list, target: str | None, chains: dict[str, list[Step]]
                 ) -> Finding | None:
        callee, line, column, end_line, end_column, context, written, arguments = call
        evidence = self._evidence(target, chains, arguments)
        if evidence is None:
            return None
        chain, code, use = evidence
        final_call, final_path, final_line = chain[-1].name, chain[-1].path, chain[-1].line
        names = [self.short(step.name) for step in chain[:-1]] + [final_call]
        shown = self.short(callee)  # as called: `LocalStorage.save`, `ReportBuilder`
        return Finding(
            path=record.path, line=line, column=column, end_line=end_line, end_column=end_column,
            code=INDIRECT, category="indirect",
            message=(f"`{shown}()` blocks the event loop in {context}: {' → '.join(names)} "
                     f"({final_path}:{final_line})"),
            context=context, call=callee,
            suggestion=f"`await asyncio.to_thread({written or shown}, ...)`, or an async chain: "
                       f"for `{final_call}`, {use}",
            chain=tuple({"name": step.name, "path": step.path, "line": step.line} for step in chain),
            via=code,
        )

    def _evidence(self, target: str | None, chains: dict[str, list[Step]], arguments: dict[str, str]
                  ) -> tuple[list[Step], str, str] | None:
        """The chain by which calling `target` blocks, with the rule and advice of its last call: through its
        callees, or through what it calls on an argument whose type the caller knows (`get_user(db, 1)` with
        `db: Session`, where `def get_user(db, user_id): return db.query(User).first()`)."""
        if target is None:
            return None
        if target in chains:
            chain = chains[target]
            _, _, code, use = self._blocking_calls(self.functions[chain[-2].name][1])[0]
            return chain, code, use
        if self.library is None or not arguments or target not in self.functions:
            return None
        record, summary = self.functions[target]
        parameters = summary.get("parameters", [])
        passed = {parameters[int(key)] if key.isdigit() and int(key) < len(parameters) else key: instance
                  for key, instance in arguments.items()}
        for parameter, line, steps in summary.get("parameter_calls", []):
            blocking = self.library.through(passed[parameter], steps) if parameter in passed else None
            if blocking is not None and (self.enabled is None or blocking[1] in self.enabled):
                return [Step(target, record.path, summary["line"]), Step(blocking[0], record.path, line)], \
                    blocking[1], blocking[2]
        return None

    def short(self, name: str) -> str:
        """A name in its module: `list_price`, `BillingClient.charge`."""
        module = self.module_of(name)
        return name[len(module) + 1:] if module and name.startswith(f"{module}.") else name


@contextmanager
def contained(failures: list[Finding] | None, paths: list[str]) -> Iterator[None]:
    """Where `failures` is given, an error of the pass becomes AG002 on each of `paths` instead of ending the run."""
    if failures is None:
        yield
        return
    try:
        yield
    except Exception as error:  # a bug in asyncguard: report it, keep going
        failures.extend(internal_error(path, error) for path in paths)

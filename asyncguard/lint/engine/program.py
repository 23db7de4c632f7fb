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
from asyncguard.lint.knowledge.base import Knowledge
from asyncguard.lint.rule import rules_by_category

INDIRECT = "AG800"
"""The code of a call on the loop that blocks through helpers (`asyncguard.lint.rules.ag800_...`)."""
RECEIVER = "#"
"""Joins a method to the class of the instance it runs on, in a node of the call graph (`Job.run#PriceJob`)."""
MAX_BASES = 16
"""Classes searched for an inherited method: enough for real hierarchies, a bound for cyclic or absurd ones."""
MAX_FORWARDS = 8
"""Helpers an argument is followed through, each passing it on: real code passes a connection a few levels down."""


class LibraryCalls:
    """What the knowledge base says of the third-party calls the pass meets: a blocking method a project class
    inherits, and what a helper's calls on an argument become once the caller's argument type is known."""

    def __init__(self, knowledge: Knowledge):
        self.knowledge = knowledge
        self.codes = {category: rule.code for category, rule in rules_by_category().items()}

    def blocking(self, name: str) -> list | None:
        """`[call, code, use, weak]` when calling `name` blocks."""
        api = self.knowledge.blocking_api(name)
        return None if api is None else [shown_call(name), self.codes[api.category], api.use, api.weak]

    def through(self, instance: str, steps: list) -> list | None:
        """`[call, code, use, weak]` of the first blocking call along `steps` (`[attribute, called]` pairs) from an
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
                 may_define: Callable[[str], bool] = lambda name: True, library: LibraryCalls | None = None,
                 mentioning: Callable[[str], list[str]] = lambda word: [],
                 implementations: Callable[[str], list[str]] = lambda interface: []):
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
        self.mentioning = mentioning
        self.implementations = implementations
        """The project classes that implement a Protocol or ABC: one alone is what a call of its method runs."""
        """The project modules whose source has a word in it: where a module-level lock may be taken."""
        self.records: dict[str, ModuleRecord] = {}
        self.functions: dict[str, tuple[ModuleRecord, dict]] = {}
        self.classes: dict[str, list[str]] = {}
        self.derived: dict[str, tuple[ModuleRecord, dict]] = {}
        """Project classes with bases: their record, line and the methods they define."""
        self.loaded: set[str] = set()
        self._contention: dict[str, tuple[list[Step], str] | None] = {}
        self._interfaces_followed: set[str] = set()
        self._weighing_implementations = False
        """Whether the implementations of a call on an interface are being weighed (`_implementation`)."""
        self._weighed: dict[str, str | None] = {}
        """`Interface.method` weighed: its dispatch node where every implementation blocks, else None."""
        self._through: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[Step], str, str, bool] | None] = {}
        """What each function blocks on given its arguments' types (`_through_arguments`), None while weighed too:
        helpers that pass a connection on to each other, in a cycle, are weighed once."""

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
        """The summarised function a call of `name` runs: itself, a class's `__init__` (or `__post_init__`), or an
        inherited method."""
        self._ensure(name)
        if name in self.functions:
            return name
        if name in self.classes:  # a dataclass's generated `__init__` runs its `__post_init__`
            return self._method(name, "__init__") or self._method(name, "__post_init__")
        owner, _, attribute = name.rpartition(".")
        self._ensure(owner)
        return self._method(owner, attribute) if owner in self.classes else None

    def _method(self, class_name: str, attribute: str) -> str | None:
        """`attribute` of the class or, breadth first, of its bases (their modules loaded a level at a time)."""
        level, seen = [class_name], set()
        while level and len(seen) < MAX_BASES:
            level = [name for name in dict.fromkeys(level) if name not in seen]
            seen.update(level)
            self._prefetch(f"{name}.{attribute}" for name in level)  # a base whose module defines the method
            for current in level:
                if f"{current}.{attribute}" in self.functions:
                    return f"{current}.{attribute}"
                if current in self.derived and attribute in self.derived[current][1]["methods"]:
                    return self._implementation(current, attribute)  # defined there, and it does not block
                blocking = None if current in self.classes or self.library is None else \
                    self.library.blocking(f"{current}.{attribute}")
                if blocking is not None:
                    return self._inherited_method(class_name, attribute, blocking)
            level = [base for current in level for base in self.classes.get(current, ())]
        return None

    def _implementation(self, interface: str, attribute: str) -> str | None:
        """`repo.get()` with `repo: UserRepository`, a Protocol or ABC: the method of its one implementation; of
        several (`model.load()` with ten models), a node for the call that runs one of them, if every one of them
        blocks (whichever runs, the loop waits; the chain names one)."""
        if not self.derived[interface][1].get("abstract") or interface in self._interfaces_followed:
            return None
        found = [name for name in self.implementations(interface) if name != interface]
        self._interfaces_followed.add(interface)  # an implementation that inherits the method leads back here
        try:
            methods = [self._method(name, attribute) for name in found]
        finally:
            self._interfaces_followed.discard(interface)
        if len(methods) < 2 or None in methods:  # one implementation, or one of several that does not block
            return methods[0] if len(methods) == 1 else None
        dispatch = f"{interface}.{attribute}"
        if dispatch in self._weighed:
            return self._weighed[dispatch]
        if self._weighing_implementations:  # an interface met while weighing another's: not followed (bounded)
            return None
        methods = list(dict.fromkeys(methods))
        self._weighing_implementations = True
        try:
            every_one_blocks = set(methods) <= self.chains(set(methods)).keys()
        finally:
            self._weighing_implementations = False
        if every_one_blocks:
            record, facts = self.derived[interface]
            self.functions[dispatch] = (record, {"line": facts["line"], "blocking": [],
                                                 "calls": {method: facts["line"] for method in methods}})
        self._weighed[dispatch] = dispatch if every_one_blocks else None
        return self._weighed[dispatch]

    def _inherited_method(self, class_name: str, attribute: str, blocking: list) -> str:
        """A project class's method that is a blocking one of a third-party base, as a function of the class that
        makes that call (its chain ends in the base's method)."""
        name = f"{class_name}.{attribute}"
        record, facts = self.derived[class_name]
        line = facts["line"]
        self.functions[name] = (record, {"line": line, "blocking": [[blocking[0], line, *blocking[1:], None]],
                                         "calls": {}})
        return name

    def _blocking_calls(self, summary: dict) -> list[list]:
        """`[call, line, code, use, weak, lock]` of each blocking call a function makes whose rule is selected; a
        thread lock it takes (`lock`) only where some critical section under that lock blocks."""
        return [entry for entry in summary["blocking"] if (self.enabled is None or entry[2] in self.enabled)
                and (entry[5] is None or self.contention(entry[5]) is not None)]

    def _leaf(self, summary: dict) -> list | None:
        """The blocking call a chain through this function ends in: its first real I/O, else its first weak one
        (a lock, a cheap stat)."""
        entries = self._blocking_calls(summary)
        return next((entry for entry in entries if not entry[4]), entries[0] if entries else None)

    def contention(self, lock: str) -> tuple[list[Step], str] | None:
        """How some critical section under `lock`, in any module read, blocks: the chain from the function that
        holds it to the blocking call, and that call's rule. None for a lock that only guards in-memory state: it
        is held for microseconds, and taking it on the loop waits no longer."""
        if lock in self._contention:
            return self._contention[lock]
        self._contention[lock] = None  # a lock taken under itself does not block by that
        module = self.module_of(lock)
        if module is not None:  # where the lock is made, and for a module's lock wherever its name is written
            local = lock[len(module) + 1:]
            modules = [module, *(self.mentioning(local) if "." not in local else ())]
            modules = [name for name in dict.fromkeys(modules) if name not in self.loaded]
            self.loaded.update(modules)
            for record in self.load(modules) if modules else ():
                if record is not None:
                    self.add(record)
        chains = []  # (weak, chain, code)
        for record in list(self.records.values()):
            for holder, line, *held in record.summary.get("held", {}).get(lock, ()):
                if len(held) == 3 and (self.enabled is None or held[1] in self.enabled):
                    call, code, weak = held
                    chains.append((weak, [Step(holder, record.path, line), Step(call, record.path, line)], code))
                elif len(held) == 1:
                    evidence = self._evidence(self.resolve(held[0]), None, {})
                    if evidence is not None:
                        chain, code, _, weak = evidence
                        chains.append((weak, [Step(holder, record.path, line), *chain], code))
        best = min(chains, key=lambda found: (found[0], len(found[1]))) if chains else None
        self._contention[lock] = (best[1], best[2]) if best else None
        return self._contention[lock]

    def reached(self, function: str | None, receiver: str | None) -> str | None:
        """The node of the call graph for `function` called on an instance of `receiver`: the function itself, or,
        where it calls methods on `self` and `receiver` is another class (a subclass), `function#receiver`: its
        `self.fetch()` then runs the subclass's `fetch`. Not where the receiver is an interface the function's class
        implements (`sender.send()` of an `EmailSender` Protocol): its `self._send()` is its own class's."""
        if function is None or receiver is None or function.rpartition(".")[0] == receiver \
                or not self.functions[function][1].get("self_calls") \
                or not self._derives(receiver, function.rpartition(".")[0]):
            return function
        return f"{function}{RECEIVER}{receiver}"

    def _derives(self, name: str, base: str) -> bool:
        """Whether the class `name` has `base` among its bases, at any depth (as far as the summaries loaded say)."""
        level, seen = list(self.classes.get(name, ())), set()
        while level and len(seen) < MAX_BASES:
            if base in level:
                return True
            seen.update(level)
            level = [parent for current in level for parent in self.classes.get(current, ()) if parent not in seen]
        return False

    @staticmethod
    def function(node: str) -> str:
        return node.partition(RECEIVER)[0]

    def _callees(self, node: str) -> dict[str, int]:
        """The nodes a node of the call graph calls, with the line of each call."""
        function, _, receiver = node.partition(RECEIVER)
        summary = self.functions[function][1]
        found = {}
        for callee, line in summary["calls"].items():
            found.setdefault(self.node(callee), line)
        receiver = receiver or function.rpartition(".")[0]
        for method, line in summary.get("self_calls", {}).items():
            found.setdefault(self.reached(self.resolve(f"{receiver}.{method}"), receiver), line)
        found.pop(None, None)
        found.pop(node, None)
        return found

    def chains(self, starts: set[str]) -> dict[str, list[Step]]:
        """For each node reachable from `starts` that blocks, its chain: to real I/O where it can reach some, else to
        a weak blocking call (a lock, a cheap stat); the shortest of those; ending in the blocking call."""
        edges: dict[str, dict[str, int]] = {}
        level = set(starts)
        while level:  # breadth first, one batch of modules to load per level
            level -= edges.keys()
            self._prefetch(callee for name in level for callee in self.functions[self.function(name)][1]["calls"])
            reached = set()
            for name in level:
                edges[name] = self._callees(name)
                reached |= edges[name].keys()
            level = reached
        callers: dict[str, set[str]] = {}
        for caller, targets in edges.items():
            for target in targets:
                callers.setdefault(target, set()).add(caller)
        once = self._first_call_only(edges)
        leaves = {name: leaf for name in edges
                  if name not in once and (leaf := self._leaf(self.functions[self.function(name)][1]))}
        following: dict[str, str | None] = {}
        for weak in (False, True):  # every node that can reach real I/O is settled before a weak leaf is tried
            frontier = deque(sorted(name for name, leaf in leaves.items()
                                    if leaf[4] == weak and name not in following))
            following.update((name, None) for name in frontier)
            while frontier:
                name = frontier.popleft()
                for caller in sorted(callers.get(name, ())):
                    if caller not in following and caller not in once:
                        following[caller] = name
                        frontier.append(caller)
        return {name: self._chain(name, following, edges, leaves) for name in following}

    def _first_call_only(self, edges: dict[str, dict[str, int]]) -> set[str]:
        """The cached helpers (`functools.lru_cache`, `cache`, a lazy global) that take no argument, or whose every
        blocking call, through any callee, is file I/O (or the lock that guards the cache): a singleton is made on
        the first call, a SQL or template file read once per process, so no chain runs through them. But a model
        loaded or a server asked on the first request holds that request's loop (`get_yolo_model()`, a vault
        client's login), and behind a cache of arguments a database or HTTP call (any other rule) still blocks:
        each new argument makes it."""
        by_category = rules_by_category()
        file_io = {by_category["file"].code, by_category["thread"].code}
        first_request = {by_category[category].code for category in ("compute", "http", "socket", "database")}
        once = set()
        for start in edges:
            cached = self.functions[self.function(start)][1].get("cached")
            if not cached:
                continue
            seen, stack, codes = {start}, [start], set()
            while stack:
                current = stack.pop()
                codes.update(entry[2] for entry in self._blocking_calls(self.functions[self.function(current)][1]))
                for callee in edges[current].keys() - seen:
                    seen.add(callee)
                    stack.append(callee)
            if codes <= file_io or cached == "once" and not codes & first_request:
                once.add(start)
        return once

    def _chain(self, name: str, following: dict[str, str | None], edges: dict[str, dict[str, int]],
               leaves: dict[str, list]) -> list[Step]:
        """Each function with the line of the call it makes next, then the blocking call."""
        steps = []
        current: str | None = name
        while current is not None:
            record, _ = self.functions[self.function(current)]
            after = following[current]
            line = edges[current][after] if after is not None else leaves[current][1]
            steps.append(Step(self.function(current), record.path, line))
            last = (current, record)
            current = after
        leaf, record = leaves[last[0]], last[1]
        steps.append(Step(leaf[0], record.path, leaf[1]))
        return steps

    def findings(self, failures: list[Finding] | None = None) -> list[Finding]:
        """AG800 for every call on the loop whose callee blocks, with the chain as evidence, and AG109 for every
        thread lock taken on the loop that some critical section holds across blocking work. Given `failures`, the
        pass's own error on a module becomes an AG002 there and the rest is still followed; without, it raises."""
        return self._indirect_findings(failures) + self._lock_findings(failures)

    def _lock_findings(self, failures: list[Finding] | None) -> list[Finding]:
        rule = rules_by_category()["thread"]
        if self.enabled is not None and rule.code not in self.enabled:
            return []
        found = []
        for record in list(self.records.values()):
            for lock, call, line, column, end_line, end_column, context, use in record.summary.get("locks", ()):
                with contained(failures, [record.path]):
                    evidence = self.contention(lock)
                    if evidence is None:
                        continue
                    chain, code = evidence
                    around = " → ".join([self.short(step.name) for step in chain[1:-1]] + [chain[-1].name])
                    found.append(Finding(
                        path=record.path, line=line, column=column, end_line=end_line, end_column=end_column,
                        code=rule.code, category=rule.category, context=context, call=call, suggestion=use,
                        message=(f"{rule.message.format(call=call, context=f'in {context}')}: "
                                 f"`{self.short(chain[0].name)}` holds it around `{around}` "
                                 f"({chain[-1].path}:{chain[-1].line})"),
                        chain=tuple({"name": step.name, "path": step.path, "line": step.line} for step in chain),
                        via=code,
                    ))
        return found

    def _indirect_findings(self, failures: list[Finding] | None) -> list[Finding]:
        if self.enabled is not None and INDIRECT not in self.enabled:
            return []
        records = list(self.records.values())
        self._prefetch(call[0] for record in records for call in record.loop_calls)
        calls = []
        for record in records:
            with contained(failures, [record.path]):
                calls += [(record, call, self.node(call[0]))
                          for call in record.loop_calls]
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

    def node(self, callee: str) -> str | None:
        """The node of the call graph a call of `callee` reaches, with the class it is made on where the pass knows
        it: `PriceJob().run()` runs `Job.run` on a `PriceJob`, and `RealClient()` an inherited `__init__` whose
        `self.create_client()` is `RealClient`'s."""
        function = self.resolve(callee)
        owner = callee if callee in self.classes else callee.rpartition(".")[0]
        return self.reached(function, owner if owner in self.classes else None)

    def _finding(self, record: ModuleRecord, call: list, target: str | None, chains: dict[str, list[Step]]
                 ) -> Finding | None:
        callee, line, column, end_line, end_column, context, written, arguments = call
        evidence = self._evidence(target, chains, arguments)
        if evidence is None:
            return None
        chain, code, use, _ = evidence
        final_call, final_path, final_line = chain[-1].name, chain[-1].path, chain[-1].line
        names = [self.short(step.name) for step in chain[:-1]] + [final_call]
        shown = self.short(callee)  # as called: `LocalStorage.save`, `ReportBuilder`
        read = written.startswith("lambda: ")  # a property read, not a call
        return Finding(
            path=record.path, line=line, column=column, end_line=end_line, end_column=end_column,
            code=INDIRECT, category="indirect",
            message=(f"`{shown}{'' if read else '()'}` blocks the event loop in {context}: {' → '.join(names)} "
                     f"({final_path}:{final_line})"),
            context=context, call=callee,
            suggestion=(f"`await asyncio.to_thread({written if read else f'{written or shown}, ...'})`, or an async "
                        f"chain: for `{final_call}`, {use}"),
            chain=tuple({"name": step.name, "path": step.path, "line": step.line} for step in chain),
            via=code,
        )

    def _evidence(self, target: str | None, chains: dict[str, list[Step]] | None, arguments: dict[str, str]
                  ) -> tuple[list[Step], str, str, bool] | None:
        """The chain by which calling `target` blocks, with the rule and advice of its last call and whether that
        call is a weak one: through its
        callees, or through what it calls on an argument whose type the caller knows (`get_user(db, 1)` with
        `db: Session`, where `def get_user(db, user_id): return db.query(User).first()`)."""
        if target is None:
            return None
        if chains is None:  # one callee alone
            chains = self.chains({target})
        if target in chains:
            chain = chains[target]
            _, _, code, use, weak, _ = self._leaf(self.functions[chain[-2].name][1])
            return chain, code, use, weak
        return self._through_arguments(target, arguments)

    def _through_arguments(self, target: str, arguments: dict[str, str], depth: int = 0
                           ) -> tuple[list[Step], str, str, bool] | None:
        """What calling `target` with arguments of these types (position or name → type) blocks on: calls it makes
        on them, or on what it passes them on to (`log(conn)` → `record_event(conn)` → `conn.cursor().execute()`)."""
        if self.library is None or not arguments or depth > MAX_FORWARDS or self.function(target) not in self.functions:
            return None
        target = self.function(target)
        key = (target, tuple(sorted(arguments.items())))
        if key not in self._through:
            self._through[key] = None  # a cycle back here finds nothing new
            self._through[key] = self._weigh_arguments(target, arguments, depth)
        return self._through[key]

    def _weigh_arguments(self, target: str, arguments: dict[str, str], depth: int
                         ) -> tuple[list[Step], str, str, bool] | None:
        record, summary = self.functions[target]
        parameters = summary.get("parameters", [])
        passed = {parameters[int(key)] if key.isdigit() and int(key) < len(parameters) else key: instance
                  for key, instance in arguments.items()}
        for parameter, line, steps in summary.get("parameter_calls", []):
            if parameter not in passed:
                continue
            method = self._project_method(passed[parameter], steps)
            if method is not None:  # `_table_missing(cursor)` given the project's own `TrackedCursor`
                found = self._evidence(method, None, {})
                if found is not None:
                    chain, *rest = found
                    return [Step(target, record.path, line), *chain], *rest
                continue
            blocking = self.library.through(passed[parameter], steps)
            if blocking is not None and (self.enabled is None or blocking[1] in self.enabled):
                return [Step(target, record.path, line), Step(blocking[0], record.path, line)], *blocking[1:]
        for callee, line, forwarded in summary.get("forwards", []):
            given = {key: passed[parameter] for key, parameter in forwarded.items() if parameter in passed}
            found = self._through_arguments(callee, given, depth + 1) if given else None
            if found is not None:
                chain, *rest = found
                return [Step(target, record.path, line), *chain], *rest
        return None

    def _project_method(self, instance: str, steps: list) -> str | None:
        """The project method a call on a parameter runs where the caller passes an instance of a project class
        (`cursor.execute(...)` with the caller's `TrackedCursor`): one step, a call."""
        if len(steps) != 1 or not steps[0][1] or self.module_of(instance) is None:
            return None
        return self.resolve(f"{instance}.{steps[0][0]}")

    def short(self, name: str) -> str:
        """A name in its module: `list_price`, `BillingClient.charge`."""
        module = self.module_of(name)
        return name[len(module) + 1:] if module and name.startswith(f"{module}.") else name


def needed(records: list[ModuleRecord], enabled: frozenset[str]) -> bool:
    """Whether the whole-program pass can find anything: calls on the loop of project functions (AG800), or thread
    locks taken on the loop (AG109)."""
    return (INDIRECT in enabled and any(record.loop_calls for record in records)
            or rules_by_category()["thread"].code in enabled and any(record.summary.get("locks") for record in records))


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

"""The per-file analysis: which calls run on the event loop, and which of them block.

It works on Python's `ast` (parsed once per file, see asyncguard.lint.engine.syntax) and resolves names itself
(imports, aliases, assignments, annotations). Positions are converted to characters only for the nodes that are
reported or summarised.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from asyncguard.lint.engine.context import (
    SERVERS,
    STREAMING_RESPONSES,
    FastApiFacts,
    FunctionFrame,
    called_name,
    streamed_content,
)
from asyncguard.lint.interface.files import absolute_module
from asyncguard.lint.knowledge.base import BlockingApi, Knowledge
from asyncguard.lint.engine.names import PROPERTY_DECORATORS, UNINFORMATIVE_ANNOTATIONS, UNWRAPPED_ANNOTATIONS
from asyncguard.lint.engine.syntax import (
    FUNCTIONS,
    SourceLines,
    Span,
    argument_values,
    child_fields,
    declared_globals,
    dotted_name,
    is_generator,
    keyword,
    own_nodes,
    own_statements,
    parameters,
    positional,
    string_value,
    subscript_elements,
    unstarred,
    unsubscripted,
)

if TYPE_CHECKING:
    from asyncguard.lint.engine.names import Project

BUILTINS = frozenset({"open", "input"})
DEPENDS = frozenset({"Depends", "fastapi.Depends", "Security", "fastapi.Security", "fastapi.params.Depends"})
UNKNOWN = "<unknown>"
FIELD_SPECIFIERS = frozenset({
    "pydantic.Field", "pydantic.fields.Field", "sqlmodel.Field", "dataclasses.field", "attrs.field", "attr.ib",
    "attr.attrib", "attr.field",
})
"""Calls that declare a class attribute (`data_dir: Path = Field(...)`): the attribute has its annotation's type."""
CACHING_DECORATORS = frozenset({"functools.cache", "functools.lru_cache"})
"""Decorators that run a function once per argument tuple: its later calls do no I/O."""
PASS_THROUGH_ITERABLES = frozenset({"sorted", "list", "reversed", "tuple"})
"""Builtins whose result iterates over the items of their first argument (`for p in sorted(root.glob("*"))`)."""
CONSUMING_BUILTINS = {
    **dict.fromkeys(("list", "tuple", "set", "frozenset", "sorted", "dict", "sum", "min", "max", "any", "all"),
                    "__iter__"),
    "len": "__len__",
}
"""Builtins that iterate (or count) their first argument at once: `list(query)` runs a lazy ORM query."""
LAZY_ITERATORS = frozenset({"enumerate", "reversed", "zip", "iter", "filter", "map"})
"""Builtins that iterate their argument only as they are iterated themselves: `for i, row in enumerate(query)`."""
EVENT_LOOP_RUNNERS = frozenset({"asyncio.run", "anyio.run", "trio.run", "uvloop.run"})
"""Calls that run a coroutine on an event loop of their own (and `loop.run_until_complete(...)`, by its name)."""
MAX_BASE_DEPTH = 8
"""Base classes followed for an inherited attribute: real hierarchies are shallower, cyclic ones are cut."""


QUERIED_ENTITY = "Entity"
"""A `[returns]`/`[iterates]` type: an instance of the mapped class the ORM query names (`Resolver.queried_entity`)."""

ENTITY_NAMING = frozenset({"query", "select", "get", "get_one"})
"""Calls along an ORM query whose first argument may be the mapped class: `db.query(User)`, `select(User)`,
`session.get(User, key)`."""

MAX_QUERY_STEPS = 24
"""Calls and attributes walked along one query expression: real ones are a few steps long."""

STATEMENT_RUNNERS = frozenset({"scalars", "execute", "exec", "scalar"})
"""Session methods whose first argument is the statement to run (`session.scalars(select(User))`)."""

OPERATOR_METHODS = {ast.Div: "__truediv__", ast.BitOr: "__or__"}
"""Binary operators whose result type the knowledge base may give (`[returns]` `"pathlib.Path.__truediv__"`)."""


@dataclass(frozen=True)
class Value:
    """What a name or expression refers to: a qualified path, and whether it is an instance of that path."""

    path: str
    instance: bool = False

    def attribute(self, name: str) -> "Value":
        return Value(f"{self.path}.{name}")


@dataclass
class RawFinding:
    """A finding before positions are known: the node, what it calls and where it runs."""

    node: ast.expr
    api: BlockingApi
    call: str
    frame: FunctionFrame
    lock: str | None = None
    """For a thread lock taken (`with lock:`, `lock.acquire()`): which lock (`lock_identity`). It blocks only if
    some critical section under that lock, anywhere in the project, does blocking work."""


@dataclass
class HeldCall:
    """A call made while a thread lock is held: a blocking one (`raw`), or one of a project function (`callee`)."""

    node: ast.Call
    holder: FunctionFrame
    raw: RawFinding | None = None
    callee: str | None = None


@dataclass
class FunctionSummary:
    """What a sync function of the project does that matters on the loop: the blocking calls it makes itself and
    the project functions it calls (resolved later, across modules, by asyncguard.lint.engine.program)."""

    blocking: list[RawFinding] = field(default_factory=list)
    calls: dict[str, ast.Call] = field(default_factory=dict)
    """The project functions it calls, each with its first call (the line a chain step shows)."""
    self_calls: dict[str, ast.Call] = field(default_factory=dict)
    """Methods it calls on its own `self`: which runs depends on the instance's class (a subclass's override)."""
    parameters: list[str] = field(default_factory=list)
    """Its parameters in the order callers pass them (`self`/`cls` of a method left out)."""
    parameter_calls: list[tuple[str, tuple[tuple[str, bool], ...], ast.Call]] = field(default_factory=list)
    """Calls on a parameter of unknown type (`db.query(User).first()` with `def get_user(db, ...)`): the parameter
    and the attribute steps from it, each marked whether it is called; a caller that passes a known type decides."""
    forwards: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    """Project calls that pass on a parameter of unknown type (`record_event(conn, ...)` in `def log(conn)`): the
    callee, which of its arguments (position or name) get which parameter, and the line."""
    cached: bool = False
    """Decorated with `functools.cache` or `lru_cache` (`CACHING_DECORATORS`)."""


@dataclass
class LoopCall:
    """A call on the event loop of a project function: a finding if that function turns out to block."""

    node: ast.Call | ast.Attribute
    """The call, or the read of a property (`service.client`) whose getter is the function called."""
    callee: str
    frame: FunctionFrame
    arguments: dict[str, str] = field(default_factory=dict)
    """The known instance types of its arguments, by position (`"0"`) or keyword."""


class Scope:
    """Names bound in one module, class or function body. Class scopes are skipped by nested functions."""

    def __init__(self, parent: "Scope | None", kind: str, class_path: str | None = None):
        self.parent = parent
        self.kind = kind
        self.names: dict[str, Value | None] = {}
        self.class_path = class_path
        """The class of a class scope, or of the method whose body a function scope is (where `super()` starts)."""

    def lookup(self, name: str) -> Value | None:
        scope = self.binder(name)
        if scope is not None:
            return scope.names[name]
        return Value(f"builtins.{name}") if name in BUILTINS else None

    def bind(self, name: str, value: Value | None) -> None:
        self.names[name] = value

    def binder(self, name: str) -> "Scope | None":
        """The scope whose binding of `name` (to a known value or not) is seen from here."""
        scope: Scope | None = self
        first = True
        while scope is not None:
            if (first or scope.kind != "class") and name in scope.names:
                return scope
            first = False
            scope = scope.parent
        return None


FUNCTION_WRAPPERS = frozenset({"contextlib.contextmanager", "contextlib.asynccontextmanager"})
"""Called on a function (not as `@` decorators), these give a function whose call yields or returns what the
wrapped one does: `contextmanager(get_db)()` is `get_db()` used in a `with`."""
SERVICE_LOCATORS = frozenset({"resolve", "get_service", "get_required_service", "get_instance", "provide"})
"""Methods of dependency containers and injectors that, handed a class, give an instance of it."""


def is_main_guard(node: ast.If) -> bool:
    test = node.test
    if not isinstance(test, ast.Compare) or len(test.comparators) != 1:
        return False
    sides = {dotted_name(test.left), string_value(test.comparators[0]), dotted_name(test.comparators[0]),
             string_value(test.left)}
    return "__name__" in sides and "__main__" in sides


class Resolver:
    """Infers what expressions refer to, from a scope chain, the knowledge base and the project's modules."""

    def __init__(self, knowledge: Knowledge, home: "ModuleIndex", project: "Project | None"):
        self.knowledge = knowledge
        self.home = home
        self.project = project

    def instance_attribute(self, class_path: str, attribute: str) -> Value | None:
        """The type of `obj.attribute` where `obj` is an instance of a class of the project: set or declared by the
        first class in its resolution order that does, itself or a project base class, as Python looks it up (the
        order is only worked out when the class itself does not)."""
        found = self._own_attribute(class_path, attribute)
        if found is None:
            order = self.method_resolution_order(class_path)
            for base in order[1:]:
                found = self._own_attribute(base, attribute)
                if found is not None:
                    break
            else:  # a proxy's `__getattr__` hands every other attribute on to the object it wraps
                delegate = next((held for owner in order if (held := self._delegate(owner)) is not None), None)
                if delegate is not None and not self.in_project(delegate.path):
                    path, instance = self.knowledge.member(delegate.path, True, attribute)
                    return Value(path, instance=instance)
        return found

    def _delegate(self, class_path: str) -> Value | None:
        if class_path.startswith(self.home.prefix):
            return self.home.delegate(class_path)
        return self.project.delegate(class_path) if self.project is not None else None

    def _own_attribute(self, class_path: str, attribute: str) -> Value | None:
        if class_path.startswith(self.home.prefix):
            return (self.home.class_attributes(class_path) or {}).get(attribute)
        return self.project.instance_attribute(class_path, attribute) if self.project is not None else None

    def property_getter(self, class_path: str, attribute: str) -> str | None:
        """`Class.name` of the sync property that reading `attribute` of an instance of a project class runs: the
        first class in its resolution order that defines it."""
        for owner in self.method_resolution_order(class_path):
            if owner.startswith(self.home.prefix):
                defined = self.home.classes.get(owner)
                found = defined is not None and any(isinstance(member, ast.FunctionDef) and member.name == attribute
                                                    and is_property(member) for member in defined[0].body)
            else:
                found = self.project is not None and self.project.defines_property(owner, attribute)
            if found:
                return f"{owner}.{attribute}"
        return None

    def class_bases(self, class_path: str) -> list[str]:
        """The qualified names of a project class's bases (none for a class outside the project)."""
        if class_path.startswith(self.home.prefix):
            return self.home.class_bases(class_path)
        return self.project.class_bases(class_path) if self.project is not None else []

    def as_imported(self, path: str) -> str:
        """An imported name, its module rewritten to the one of the project it means where that module's name is
        ambiguous (`Project.nearest_module`)."""
        project = self.project
        if project is None or project.module_of(path) is not None:
            return path
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            nearest = project.nearest_module(".".join(parts[:cut]), self.home.module_name)
            if nearest is not None:
                return ".".join([nearest, *parts[cut:]])
        return path

    def is_derived(self, path: str) -> bool:
        """Whether `path` is a project class with bases (a mapped model derives from its `Base`)."""
        if path.startswith(self.home.prefix):
            return path in self.home.classes and bool(self.home.classes[path][0].bases)
        return self.project is not None and self.project.is_derived(path)

    def method_resolution_order(self, class_path: str, depth: int = 0) -> list[str]:
        """The class and its bases in Python's C3 order, as far as the project's classes tell (a third-party class
        ends its line); a hierarchy Python would reject is cut where it becomes inconsistent."""
        bases = self.class_bases(class_path) if depth < MAX_BASE_DEPTH else []
        pending = [self.method_resolution_order(base, depth + 1) for base in bases] + [bases]
        order = [class_path]
        while pending := [line for line in pending if line]:
            head = next((line[0] for line in pending if not any(line[0] in other[1:] for other in pending)), None)
            if head is None:
                break
            order.append(head)
            pending = [line[1:] if line[0] == head else line for line in pending]
        return order

    def super_attribute(self, call: ast.Call, attribute: str, scope: Scope) -> Value | None:
        """`super().get` in a method (or `super(UserService, self).get`): the `get` of the first class after the
        method's own in its resolution order that defines one, a project class's method or a third-party one the
        knowledge base knows; None where no known class does."""
        given = argument_values(call)
        start = self.infer(given[0], scope) if given else None
        class_path = start.path if start is not None and not start.instance else method_class(scope)
        if class_path is None:
            return None
        for base in self.method_resolution_order(class_path)[1:]:
            name = f"{base}.{attribute}"
            if self.in_project(base):
                if self.defines_method(base, attribute):
                    return Value(name)
            elif self.knowledge.blocking_api(name) or self.knowledge.is_allowed(name) \
                    or self.knowledge.result_type(name) is not None:
                return Value(self.knowledge.canonical(name))
        return None

    def defines_method(self, class_path: str, attribute: str) -> bool:
        """Whether a project class defines `attribute` as a method of its own (sync or async)."""
        if class_path.startswith(self.home.prefix):
            return f"{class_path}.{attribute}" in self.home.functions
        return self.project is not None and self.project.defines_method(class_path, attribute)

    def in_project(self, path: str) -> bool:
        """Whether `path` names something defined in this module or another module of the checked project."""
        if path.startswith(self.home.prefix):
            return True
        return self.project is not None and self.project.owns(path)

    def state_attribute(self, name: str) -> Value | None:
        """`request.state.db`, `app.state.redis`: what the project assigns to that attribute of a state holder (in a
        middleware, a lifespan, a dependency), in this module or any other."""
        found = self.home.state_attributes().get(name)
        if found is None and self.project is not None:
            found = self.project.state_attribute(name)
        return found

    def is_sync_generator(self, path: str) -> bool:
        """Whether `path` is a sync generator function or method of the project."""
        if path.startswith(self.home.prefix):
            node = self.home.functions.get(path)
            return isinstance(node, ast.FunctionDef) and is_generator(node)
        return self.project is not None and self.project.is_sync_generator(path)

    def decorated_type(self, path: str) -> Value | None:
        """What a decorator makes of a project function, where the knowledge base says (`@app.task` a Celery
        `Task`, whose `.delay()` publishes to the broker)."""
        if path.startswith(self.home.prefix):
            return self.home.decorated_type(path)
        return self.project.decorated_type(path) if self.project is not None else None

    def function_result(self, path: str) -> Value | None:
        if path.startswith(self.home.prefix):
            return self.home.function_result(path) if path in self.home.functions else None
        return self.project.function_result(path) if self.project is not None else None

    def through_project(self, value: Value | None) -> Value | None:
        """Follow a name imported from a project module to what that module binds (re-exports included)."""
        for _ in range(4):
            if value is None or value.instance or self.project is None or value.path.startswith(self.home.prefix):
                return value
            found = self.project.lookup(value.path)
            if found is None or found == value:
                return value
            value = found
        return value

    def infer(self, node: ast.expr, scope: Scope) -> Value | None:
        if isinstance(node, ast.Name):
            found = scope.lookup(node.id)
            if found is None and self.home.star_imports and self.project is not None and \
                    scope.binder(node.id) is None:
                found = self.project.star_binding(self.home.star_imports, node.id)
            return self.through_project(found)
        if isinstance(node, ast.Attribute):
            if is_super_call(node.value, scope):
                return self.super_attribute(node.value, node.attr, scope)
            base = self.infer(node.value, scope)
            if base is None:
                return None
            if not base.instance and self.in_project(base.path):
                base = self.decorated_type(base.path) or base
            if base.instance:
                own = self.instance_attribute(base.path, node.attr)
                if own is not None:
                    return own
            elif state_attribute(node) is not None:
                held = self.state_attribute(node.attr)
                if held is not None:
                    return held
            path, instance = self.knowledge.member(base.path, base.instance, node.attr)
            return Value(path, instance=True) if instance else self.through_project(Value(path))
        if isinstance(node, ast.Call):
            return self.call_result(node, scope)
        if isinstance(node, ast.Await):  # `user = await repo.get(email)`: what the coroutine returns
            return self.infer(node.value, scope)
        if isinstance(node, ast.Subscript):  # `path.parents[2]`: the item type `[attributes]` gives `__getitem__`
            base = self.infer(node.value, scope)
            if base is None:
                return None
            path, instance = self.knowledge.member(base.path, base.instance, "__getitem__")
            return Value(path, instance=instance)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATOR_METHODS:
            return self.operation_result(node, scope)
        if isinstance(node, (ast.IfExp, ast.BoolOp)):  # `Path(p) if p else DEFAULT`, `store or VectorStore()`
            branches = ([node.body, node.orelse] if isinstance(node, ast.IfExp) else node.values[::-1]
                        if isinstance(node.op, ast.And) else node.values)  # `lock and socket.socket()`: the socket
            return next((found for branch in branches if (found := self.infer(branch, scope)) is not None), None)
        if isinstance(node, ast.NamedExpr):
            return self.infer(node.value, scope)
        return None

    def operation_result(self, node: ast.BinOp, scope: Scope) -> Value | None:
        """`directory / name` is a Path, `prompt | llm` a LangChain runnable: what the knowledge base says the
        operator method of the left operand (or the reflected one of the right) returns."""
        method = OPERATOR_METHODS[type(node.op)]
        for operand, name in ((node.left, method), (node.right, method.replace("__", "__r", 1))):
            value = self.infer(operand, scope)
            returned = self.knowledge.result_type(f"{value.path}.{name}") if value and value.instance else None
            if returned is not None:
                return Value(self.knowledge.canonical(returned), instance=True)
        return None

    def callee(self, call: ast.Call, scope: Scope) -> str | None:
        """The qualified name a call invokes (`requests.Session.get`, `sqlalchemy.orm.sessionmaker.__call__`)."""
        value = self.infer(call.func, scope)
        if value is None:
            if isinstance(call.func, ast.Attribute):
                return f"{UNKNOWN}.{call.func.attr}"
            return None
        return self.knowledge.invoked(value.path, value.instance)

    def call_result(self, call: ast.Call, scope: Scope) -> Value | None:
        if builtin_argument(call, frozenset({"getattr"}), scope) is not None and len(call.args) >= 2:
            return self.attribute_by_name(call, scope)
        advanced = builtin_argument(call, frozenset({"next"}), scope)
        if advanced is not None:  # `db = next(get_db())`: what the generator yields (`function_result` gives it)
            return self.infer(advanced, scope)
        value = self.infer(call.func, scope)
        if value is not None and not value.instance and value.path in FUNCTION_WRAPPERS and call.args:
            wrapped = self.infer(call.args[0], scope)  # `get_db_manager = contextmanager(get_db)`
            return wrapped if wrapped is not None and not wrapped.instance else None
        located = self.located(call, scope)  # before what `resolve(self, kind: type[T]) -> T` says: a TypeVar
        if value is None or located is not None:
            return located
        if self.knowledge.returned(self.knowledge.invoked(value.path, value.instance)) == QUERIED_ENTITY:
            return self.queried_entity(call, scope)
        return self.result_of(value) or self.passed_through(value, call, scope)

    def located(self, call: ast.Call, scope: Scope) -> Value | None:
        """`container.resolve(DocumentRepository)`: a service locator or injector handed a project class alone
        gives an instance of it."""
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in SERVICE_LOCATORS and len(call.args) == 1
                and not call.keywords):
            return None
        named = self.infer(call.args[0], scope)
        if named is None or named.instance or not self.in_project(named.path) or not names_class(named):
            return None
        return Value(named.path, instance=True)

    def passed_to(self, path: str, name: str, wanted: dict[str, int]) -> dict[str, Value]:
        """The instances the project's calls of the module-level function `path` pass its `wanted` parameters (name
        → position; by position or by name), each from the first call that passes a known one: in this module,
        else in the modules whose source calls `name`."""
        found = self.home.passed_to(path, wanted)
        if len(found) < len(wanted) and self.project is not None:
            middleware = set(self.project.modules_mentioning(name))  # `add_middleware(\n    Name, auth=...)`
            callers = dict.fromkeys([*self.project.modules_mentioning(f"{name}("),
                                     *(module for module in self.project.modules_mentioning("add_middleware(")
                                       if module in middleware)])
            for module in callers:
                index = self.project.index_of(module)
                if index not in (None, self.home):
                    missing = {parameter: position for parameter, position in wanted.items() if parameter not in found}
                    found.update(index.passed_to(path, missing))
                if len(found) == len(wanted):
                    break
        return found

    def passed_through(self, value: Value, call: ast.Call, scope: Scope) -> Value | None:
        """What a project function returns that returns what it is given, or something made from it: `q =
        narrow(q, user)` with `def narrow(query, user): return query.filter(...)` is still the caller's `Query`."""
        if value.instance or not self.in_project(value.path):
            return None
        given = tuple(found if found is not None and found.instance else None
                      for found in (self.infer(arg, scope) for arg in call.args if not isinstance(arg, ast.Starred)))
        if not any(given):
            return None
        if value.path.startswith(self.home.prefix):
            return self.home.result_given(value.path, given) if value.path in self.home.functions else None
        return self.project.result_given(value.path, given) if self.project is not None else None

    def queried_entity(self, call: ast.Call, scope: Scope) -> Value | None:
        """An instance of the mapped class an ORM query names (`db.query(User).filter(...).first()`,
        `session.get(User, key)`, `session.scalars(select(User)).one()`), so its own methods are followed."""
        for step in query_calls(call):
            if not isinstance(step.func, (ast.Attribute, ast.Name)) or \
                    (step.func.attr if isinstance(step.func, ast.Attribute) else step.func.id) not in ENTITY_NAMING:
                continue
            named = [step.args[0]] if step.args else []
            if isinstance(step.func, ast.Attribute):  # `Team.select()`: a peewee model's own query
                named.append(step.func.value)
            for name in named:
                found = self.infer(name, scope)
                if found is not None and not found.instance and self.is_derived(found.path):
                    return Value(found.path, instance=True)
        return None

    def inherited_result(self, path: str) -> Value | None:
        """What `Model.get(...)` returns where a project class inherits `get` from a library class the knowledge
        base knows: its declared result, `"Self"` an instance of the project class (peewee's `Model.get`)."""
        for inherited in self.library_methods(path):
            returned = self.knowledge.returned(inherited)
            if returned is not None:
                return Value(path.rpartition(".")[0] if returned == "Self" else returned, instance=True)
        return None

    def library_methods(self, path: str) -> Iterator[str]:
        """The library methods a project class's `path` may inherit (`Team.select` → `peewee.Model.select`), in
        method resolution order; none where the project defines it."""
        class_path, _, method = path.rpartition(".")
        bases = self.class_bases(class_path) if class_path and self.in_project(class_path) else []
        if not bases:  # not a project class that derives from anything (a module, a plain class)
            return
        for owner in self.method_resolution_order(class_path):
            if self.in_project(owner):
                if self._defines(owner, method):
                    return  # the project's own method: its result is its body's
                continue
            yield f"{owner}.{method}"

    def _defines(self, class_path: str, method: str) -> bool:
        if class_path.startswith(self.home.prefix):
            return f"{class_path}.{method}" in self.home.functions
        return self.project is not None and self.project.defines_method(class_path, method)

    def attribute_by_name(self, call: ast.Call, scope: Scope) -> Value | None:
        """`getattr(obj, "name")` is `obj.name`; `getattr(session, method)`, the verb known only when it runs, is the
        session's `request` where that blocks (an SDK's `getattr(self.session, method)(url, **kwargs)`)."""
        owner = self.infer(call.args[0], scope)
        if owner is None:
            return None
        name = string_value(call.args[1])
        if name is not None:
            path, instance = self.knowledge.member(owner.path, owner.instance, name)
            return Value(path, instance=instance)
        dispatch = f"{owner.path}.request"
        return Value(dispatch) if owner.instance and self.knowledge.blocking_api(dispatch) is not None else None

    def result_of(self, value: Value) -> Value | None:
        """What calling `value` produces: a known return type, a class's instance, a project function's result."""
        returned = self.knowledge.returned(self.knowledge.invoked(value.path, value.instance))
        if returned is not None:  # "Self": `inherited_result`; an entity: `queried_entity`
            return Value(returned, instance=True) if returned not in ("Self", QUERIED_ENTITY) else None
        if value.instance:
            return None
        produced = self.function_result(value.path) or self.inherited_result(value.path)
        if produced is not None:
            return produced
        if names_class(value):
            return Value(value.path, instance=True)  # calling a class (`Client`, `_Globals`) builds an instance
        return None

    def annotation(self, node: ast.expr | None, scope: Scope) -> Value | None:
        """The instance type an annotation declares; `Optional`, `Annotated`, `X | None`, generators' item
        types and string annotations unwrapped."""
        if node is None:
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            left = self.annotation(node.left, scope)
            return left if left is not None else self.annotation(node.right, scope)
        if isinstance(node, ast.Subscript):
            base = self.infer(node.value, scope)
            wrapper = base.path.rsplit(".", 1)[-1] if base else ""
            if wrapper in UNWRAPPED_ANNOTATIONS:
                for element in subscript_elements(node):
                    found = self.annotation(element, scope)
                    if found is not None:
                        return found
            if base is None or base.instance or wrapper in UNINFORMATIVE_ANNOTATIONS or wrapper in {"type", "Type"}:
                return None
            return Value(base.path, instance=True)  # a generic's instance: `Collection[Review]`, `Repository[User]`
        text = string_value(node)
        if text is not None:
            try:
                return self.annotation(ast.parse(text, mode="eval").body, scope)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return None
        value = self.infer(node, scope)
        if value is None or value.instance or value.path.rsplit(".", 1)[-1] in UNINFORMATIVE_ANNOTATIONS:
            return None  # a bare `-> Generator` says nothing: what the body yields does
        return Value(value.path, instance=True)

    def works_in_memory(self, call: ast.Call, callee: str, scope: Scope) -> bool:
        """`Image.open(io.BytesIO(data))`, `zipfile.ZipFile(buffer)`: a file-format call handed an in-memory
        buffer where it takes its path or file does no file I/O."""
        for argument in self.knowledge.file_arguments_of(callee):
            given = keyword(call, argument.arg)
            if given is None and argument.position is not None:
                given = positional(call, argument.position)
            if given is None or isinstance(given, ast.Constant) and given.value is None:
                if argument.absent:
                    return True
                continue
            value = self.infer(given, scope)
            return argument.any_value or value is not None and value.instance and value.path in self.knowledge.buffers
        return False

    def iterated(self, node: ast.expr, scope: Scope) -> Value | None:
        """What a `for` loop over `node` binds: `for p in root.rglob("*")` gives Paths (`[iterates]`), and so does
        `for p in sorted(root.rglob("*"))`, and `for p in [Path(a), Path(b)]` its elements' one type."""
        inner = builtin_argument(node, PASS_THROUGH_ITERABLES, scope)
        if inner is not None:
            return self.iterated(inner, scope)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and node.elts:
            elements = {self.infer(element, scope) for element in node.elts}
            return elements.pop() if len(elements) == 1 else None
        if not isinstance(node, ast.Call):
            return None
        callee = self.callee(node, scope)
        item = self.knowledge.item_type(callee) if callee is not None else None
        if item is None and callee is not None:  # `Team.select()`: the library method the model inherits
            item = next(filter(None, map(self.knowledge.item_type, self.library_methods(callee))), None)
        if item == QUERIED_ENTITY:
            return self.queried_entity(node, scope)
        return Value(self.knowledge.canonical(item), instance=True) if item is not None else None

    def loop_bindings(self, target: ast.expr, iterable: ast.expr, scope: Scope) -> Iterator[tuple[str, Value | None]]:
        """The names a loop target binds, with their types: the item type for a plain name, and for the second
        name of `for i, p in enumerate(items)`."""
        counted = builtin_argument(iterable, frozenset({"enumerate"}), scope)
        if counted is not None and isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == 2:
            index, item = target.elts
            yield from ((name, None) for name in target_names(unstarred(index)))
            yield from self.loop_bindings(unstarred(item), counted, scope)
            return
        value = self.iterated(iterable, scope) if isinstance(target, ast.Name) else None
        for name in target_names(target):
            yield name, value

    def dependency(self, default: ast.expr | None, scope: Scope) -> Value | None:
        """`db=Depends(get_db)`: what FastAPI injects, inferred from `get_db`'s return or yield."""
        if not isinstance(default, ast.Call) or dotted_name(default.func) not in DEPENDS:
            return None
        target = positional(default, 0) or keyword(default, "dependency")
        value = self.infer(target, scope) if target is not None else None
        return self.result_of(value) if value is not None else None

    def injected(self, param: ast.arg, default: ast.expr | None, scope: Scope) -> Value | None:
        """What FastAPI injects into a parameter declared with `Depends(...)`, as its default or in its
        `Annotated[T, Depends(...)]`, where the dependency's result type is known."""
        declared = [default]
        annotation = param.annotation
        if isinstance(annotation, ast.Subscript) and isinstance(annotation.slice, ast.Tuple) \
                and len(annotation.slice.elts) > 1:
            wrapper = self.infer(annotation.value, scope)
            if wrapper is not None and wrapper.path.rsplit(".", 1)[-1] == "Annotated":
                declared += [element for element in annotation.slice.elts[1:] if not isinstance(element, ast.Slice)]
        for default in declared:
            found = self.dependency(default, scope)
            if found is not None:
                return found
        return None


class ModuleIndex:
    """What a module binds at its top level, its functions and classes, and its routers' prefixes.

    Built before functions are analysed: a function body sees the module as it is after import, whatever the
    order of definitions.
    """

    def __init__(self, module: ast.Module, module_name: str, knowledge: Knowledge, facts: FastApiFacts,
                 project: "Project | None" = None):
        self.module_name = module_name
        self.module = module
        self.package = project.package_of(module_name) if project is not None else module_name.rpartition(".")[0]
        """What the module's relative imports are relative to: itself for a package's `__init__`."""
        self.prefix = f"{module_name}."
        self.facts = facts
        self.scope = Scope(None, "module")
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.star_imports: list[str] = []
        """Modules `from module import *` brings names from, looked up when a name is bound nowhere else."""
        self._results: dict[str, Value | None] = {}
        self._results_given: dict[tuple[str, tuple[Value | None, ...]], Value | None] = {}
        self._callers_read: set[str] = set()
        self.classes: dict[str, tuple[ast.ClassDef, Scope]] = {}
        self.class_attrs: dict[str, dict[str, Value]] = {}
        self.delegates: dict[str, Value | None] = {}
        """What each proxy class hands the attributes it lacks to (`delegate`)."""
        self._state: dict[str, Value] | None = None
        self.resolver = Resolver(knowledge, self, project)
        self._index_block(module.body, self.scope, prefix=module_name)
        self._bind_rebound_globals()

    def _bind_rebound_globals(self) -> None:
        """A module name bound to nothing known (`model = None`) that a function rebinds (`global model; model =
        SentenceTransformer(...)` in a start-up hook) is what that function assigns: the routes use the loaded one."""
        for path, node in self.functions.items():
            rebound = {name for name in declared_globals(node) if self.scope.names.get(name) is None}
            if not rebound:
                continue
            owner = path.rpartition(".")[0]
            scope = Scope(self.scope, "function")
            bind_parameters(node, scope, self.resolver, owner if owner in self.classes else None)
            for name, value_node, _ in self_assignments(node.body, scope, self.resolver, self.package,
                                                        lambda target: rebound_name(target, rebound)):
                value = self.resolver.infer(value_node, scope) if self.scope.names.get(name) is None else None
                if value is not None and value.instance:
                    self.scope.bind(name, value)

    def decorated_type(self, path: str) -> Value | None:
        """The instance a module-level function's decorator makes of it, where the knowledge base gives what the
        decorator (`@celery.task`) or the call that makes it (`@celery.task(bind=True)`) returns."""
        node = self.functions.get(path)
        if node is None or "." in path[len(self.prefix):]:  # a method: its decorators are another matter
            return None
        knowledge = self.resolver.knowledge
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call):
                callee = self.resolver.callee(decorator, self.scope)
            else:
                value = self.resolver.infer(decorator, self.scope)
                callee = knowledge.invoked(value.path, value.instance) if value is not None else None
            returned = knowledge.returned(callee) if callee is not None else None
            if returned is not None:
                return Value(returned, instance=True)
        return None

    def function_result(self, path: str) -> Value | None:
        """What a module-level function or method returns (or yields): its annotation, else its `return`s; where
        the annotation is a project class (a Protocol, a base), an instance of another one its `return` builds
        (`-> UserRepository` of `return SqlUserRepository(session)`)."""
        if path not in self._results:
            self._results[path] = None  # recursion guard
            node = self.functions[path]
            scope = Scope(self.scope, "function")
            result = self.resolver.annotation(node.returns, self.scope)
            if result is None or self.resolver.in_project(result.path):
                owner = path.rpartition(".")[0]
                returned = returned_value(node, scope, self.resolver, self.package,
                                          owner if owner in self.classes else None)
                if result is None or returned is not None and returned.instance and \
                        self.resolver.in_project(returned.path):
                    result = returned
            self._results[path] = result
        return self._results[path]

    def passed_to(self, path: str, wanted: dict[str, int]) -> dict[str, Value]:
        """What this module's calls of `path` pass the `wanted` parameters (name → position), each from the first
        call that passes an instance (`Resolver.passed_to`): calls at its top level, in its module-level functions
        and in the methods of its top-level classes (`pb2_grpc.RolesServiceStub(self.channel)`), their simple
        assignments followed."""
        found: dict[str, Value] = {}
        if path in self._callers_read:  # a call of the factory inside itself, or a cycle: nothing
            return found
        self._callers_read.add(path)
        try:
            for body, function, class_path in self._calling_bodies():
                scope = self.scope
                if function is not None:
                    scope = Scope(self.scope, "function")
                    bind_parameters(function, scope, self.resolver, class_path)
                for current in own_nodes(body):
                    if function is not None and isinstance(current, SIMPLE_BINDINGS):
                        for name, value in bindings_of(current, scope, self.resolver, self.package):
                            scope.bind(name, value)
                    elif isinstance(current, ast.Call) and (constructs := self._constructs(current, scope, path)):
                        for parameter, position in wanted.items():
                            given = None if parameter in found else keyword(current, parameter) \
                                if constructs == "middleware" else positional(current, position) or keyword(
                                    current, parameter)
                            value = self.resolver.infer(given, scope) if given is not None else None
                            if value is None and function is not None and class_path is None and \
                                    isinstance(given, ast.Name):
                                value = self._passed_on(function, given.id)
                            if value is not None and value.instance:
                                found[parameter] = value
                        if len(found) == len(wanted):
                            return found
            return found
        finally:
            self._callers_read.discard(path)

    def _calling_bodies(self) -> Iterator[tuple[list[ast.stmt], ast.FunctionDef | ast.AsyncFunctionDef | None,
                                                str | None]]:
        """The module's top level, its functions, and its top-level classes' methods (with their class)."""
        yield self.module.body, None, None
        for statement in self.module.body:
            if isinstance(statement, FUNCTIONS):
                yield statement.body, statement, None
            elif isinstance(statement, ast.ClassDef):
                for member in statement.body:
                    if isinstance(member, FUNCTIONS):
                        yield member.body, member, f"{self.prefix}{statement.name}"

    def _constructs(self, call: ast.Call, scope: Scope, path: str) -> str | None:
        """Whether the call runs `path`: "call" for `path(...)`, "middleware" for `app.add_middleware(path, auth=...)`
        (Starlette builds the middleware with those keywords)."""
        if self.resolver.infer(call.func, scope) == Value(path):
            return "call"
        if isinstance(call.func, ast.Attribute) and call.func.attr == "add_middleware" and call.args and \
                self.resolver.infer(call.args[0], scope) == Value(path):
            return "middleware"
        return None

    def _passed_on(self, function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> Value | None:
        """What the project's calls of `function` pass its untyped parameter `name`, which it passes on."""
        for position, (param, _) in enumerate(parameters(function.args)):
            if param.arg == name and says_nothing(param):
                return self.resolver.passed_to(f"{self.prefix}{function.name}", function.name, {name: position}).get(name)
        return None

    def result_given(self, path: str, given: tuple[Value | None, ...]) -> Value | None:
        """What a function returns when its unannotated positional parameters are given instances of these types
        (`Resolver.passed_through`)."""
        key = (path, given)
        if key not in self._results_given:
            self._results_given[key] = None  # recursion guard
            owner = path.rpartition(".")[0]
            self._results_given[key] = returned_value(self.functions[path], Scope(self.scope, "function"),
                                                      self.resolver, self.package,
                                                      owner if owner in self.classes else None, given)
        return self._results_given[key]

    def _index_block(self, body: Sequence[ast.stmt], scope: Scope, prefix: str, fallback: bool = False) -> None:
        """Bind what the statements bind at module level; in a `fallback` block (an `except` handler) a name the
        `try` bound keeps that value: `except ImportError: requests = None`, `except Exception: publisher =
        DummyPublisher()` are what runs when the service's own set-up fails."""
        for statement in body:
            self._note_router(statement)
            for name, value in bindings_of(statement, scope, self.resolver, self.package):
                if name == "*":
                    self.star_imports.append(value.path)
                    continue
                if scope.names.get(name) is not None and (fallback or value is None and assigns_none(statement)):
                    continue
                scope.bind(name, value)
            if isinstance(statement, FUNCTIONS):
                path = f"{prefix}.{statement.name}"
                scope.bind(statement.name, Value(path))
                self.functions[path] = statement
            elif isinstance(statement, ast.ClassDef):
                path = f"{prefix}.{statement.name}"
                scope.bind(statement.name, Value(path))
                self.classes[path] = (statement, scope)
                for member in statement.body:
                    if isinstance(member, FUNCTIONS):
                        self.functions[f"{path}.{member.name}"] = member
            elif isinstance(statement, ast.If) and is_main_guard(statement):
                continue
            else:
                handlers = [id(handler.body) for handler in getattr(statement, "handlers", ())]
                for block in nested_blocks(statement):
                    self._index_block(block, scope, prefix, fallback or id(block) in handlers)

    def _note_router(self, statement: ast.stmt) -> None:
        """`router = APIRouter(prefix="/users")`: the prefix of the router's path operations."""
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    self.facts.note_router(target.id, statement.value)

    def state_attributes(self) -> dict[str, Value]:
        """What this module's functions assign to state holders (`request.state.db = SessionLocal()`), computed on
        first use."""
        if self._state is None:
            self._state = {}  # read while being computed: `request.state.a = request.state.b`
            for path, node in self.functions.items():
                owner = path.rpartition(".")[0]
                scope = Scope(self.scope, "function")
                bind_parameters(node, scope, self.resolver, owner if owner in self.classes else None)
                for name, value_node, annotation in self_assignments(node.body, scope, self.resolver, self.package,
                                                                     state_attribute):
                    value = assigned_type(value_node, annotation, scope, self.resolver)
                    if value is not None and value.instance:
                        self._state.setdefault(name, value)
        return self._state

    def class_bases(self, path: str) -> list[str]:
        """The bases of a class of this module, as qualified names (`Repository[User]` is `Repository`)."""
        if path not in self.classes:
            return []
        node, scope = self.classes[path]
        return [value.path for value in (self.resolver.infer(unsubscripted(base), scope) for base in node.bases)
                if value is not None and not value.instance]

    def delegate(self, path: str) -> Value | None:
        """The object a proxy class of this module hands its other attributes to: `def __getattr__(self, name):
        return getattr(get_client(), name)` (a lazy client) delegates to what `get_client()` returns."""
        if path not in self.delegates:
            self.delegates[path] = None
            node = self.classes[path][0] if path in self.classes else None
            method = next((member for member in node.body if isinstance(member, ast.FunctionDef)
                           and member.name == "__getattr__" and len(member.args.args) == 2), None) if node else None
            if method is not None:
                scope = Scope(self.classes[path][1], "function")
                bind_parameters(method, scope, self.resolver, path)
                for current in own_nodes(method.body):
                    wrapped = builtin_argument(current.value, frozenset({"getattr"}), scope) \
                        if isinstance(current, ast.Return) and current.value is not None else None
                    if wrapped is not None and len(current.value.args) == 2 and \
                            isinstance(current.value.args[1], ast.Name) and \
                            current.value.args[1].id == method.args.args[1].arg:
                        found = self.resolver.infer(wrapped, scope)
                        self.delegates[path] = found if found is not None and found.instance else None
                        break
        return self.delegates[path]

    def class_attributes(self, path: str) -> dict[str, Value] | None:
        """Types of `self.x` of a class of this module, computed on first use."""
        if path not in self.class_attrs:
            if path not in self.classes:
                return None
            self._class_attributes(*self.classes[path], path)
        return self.class_attrs[path]

    def _class_attributes(self, node: ast.ClassDef, outer: Scope, path: str) -> None:
        """From class-level annotations and assignments, and `self.x = ...` in any method. What is assigned wins
        over what is only declared (`mailer: Mailer` of a Protocol, then `self.mailer = SmtpMailer()`)."""
        attrs: dict[str, Value] = {}
        declared: set[str] = set()
        class_scope = Scope(outer, "class", class_path=path)
        self.class_attrs[path] = attrs  # visible while methods are read, for `self.a.b` chains
        for statement in node.body:
            if isinstance(statement, SIMPLE_BINDINGS):
                if isinstance(statement, ast.AnnAssign) and statement.value is None \
                        and isinstance(statement.target, ast.Name):
                    declared.add(statement.target.id)
                for name, value in bindings_of(statement, class_scope, self.resolver, self.package):
                    if value is not None:
                        attrs[name] = value
                        class_scope.bind(name, value)
            elif isinstance(statement, FUNCTIONS) and is_property(statement):
                value = self.function_result(f"{path}.{statement.name}")  # `self.http` is what it returns
                if value is not None:
                    attrs.setdefault(statement.name, value)
            elif isinstance(statement, FUNCTIONS):
                method_scope = Scope(outer, "function")
                bind_parameters(statement, method_scope, self.resolver, path)
                if statement.name == "__init__":
                    self._bind_from_constructions(statement, method_scope, path)
                self._take_assignments(statement, method_scope, attrs, declared)
        self._holder_attributes(path, attrs, declared)

    def _take_assignments(self, function: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope,
                          attrs: dict[str, Value], declared: set[str],
                          assigned: Callable[[ast.expr], str | None] | None = None) -> None:
        """The attributes a function's body assigns (`self.x = ...`, or the targets `assigned` names), where what
        they hold is known: they win over what is only declared."""
        for target, value_node, annotation in self_assignments(function.body, scope, self.resolver, self.package,
                                                               assigned):
            value = assigned_type(value_node, annotation, scope, self.resolver)
            if value is not None and (target not in attrs or target in declared):
                attrs[target] = value
                declared.discard(target)

    def _holder_attributes(self, path: str, attrs: dict[str, Value], declared: set[str]) -> None:
        """`state.s3 = boto3.client("s3")` in a module's functions (a lifespan), where `state = AppState()` is an
        instance of the class made at the module's top level: what its attributes hold, where the class says nothing."""
        instance = Value(path, instance=True)
        holders = {name for name, value in self.scope.names.items() if value == instance}
        if not holders:
            return

        def held(target: ast.expr) -> str | None:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in holders:
                return target.attr
            return None

        for statement in self.module.body:
            if isinstance(statement, FUNCTIONS):
                scope = Scope(self.scope, "function")
                bind_parameters(statement, scope, self.resolver, None)
                self._take_assignments(statement, scope, attrs, declared, held)

    def _bind_from_constructions(self, init: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope, path: str) -> None:
        """`self.conn = conn` of an `__init__` whose `conn` says nothing of its type: what the project's calls of
        the class pass it (`PsycopgAdapter(psycopg2.connect(...))`), so `self.conn.cursor()` is understood; and so
        is `self.GetUserRole = channel.unary_unary(...)` of a generated gRPC stub given a sync channel."""
        stored = {name.id for _, value, _ in self_assignments(init.body, Scope(scope, "function"), self.resolver,
                                                                self.package) if (name := stored_receiver(value))}
        wanted = {param.arg: position - 1 for position, (param, _) in enumerate(parameters(init.args))
                  if position > 0 and param.arg in stored and param.annotation is None
                  and scope.names.get(param.arg) is None}
        if wanted:
            for parameter, passed in self.resolver.passed_to(path, path.rpartition(".")[2], wanted).items():
                scope.bind(parameter, passed)


def returned_value(node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope, resolver: Resolver, package: str,
                   class_path: str | None = None, given: tuple[Value | None, ...] = ()) -> Value | None:
    """The first inferable `return x` / `yield x` of a function (or method of `class_path`) body, its simple
    assignments followed: an instance, or a library's own object (a module, `client[db][collection]`). `given`:
    what a call passes by position, for the parameters that say nothing of their type."""
    bind_parameters(node, scope, resolver, class_path, given)
    for current in own_nodes(node.body):
        if isinstance(current, SIMPLE_BINDINGS):
            for name, value in bindings_of(current, scope, resolver, package):
                scope.bind(name, value)
        elif isinstance(current, (ast.Return, ast.Yield)) and current.value is not None:
            found = resolver.infer(current.value, scope)
            if found is not None and (found.instance or not resolver.in_project(found.path) or names_class(found)):
                return found
        elif isinstance(current, (ast.With, ast.AsyncWith)):
            for item in current.items:
                if isinstance(item.optional_vars, ast.Name):
                    value = resolver.infer(item.context_expr, scope)
                    scope.bind(item.optional_vars.id, value if value and value.instance else None)
    return None


def names_class(value: Value) -> bool:
    """Whether `value` is written as a class is (`PostgresStorage`, `_Globals`): calling it builds an instance."""
    return not value.instance and value.path.rsplit(".", 1)[-1].lstrip("_")[:1].isupper()


def is_super_call(node: ast.expr, scope: Scope) -> bool:
    """`super()` or `super(Class, self)`, the builtin (not a name the code binds)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
            and len(node.args) + len(node.keywords) in {0, 2} and scope.binder("super") is None)


def method_class(scope: Scope) -> str | None:
    """The class of the method whose body `scope` is in (the innermost function's), for a bare `super()`."""
    current: Scope | None = scope
    while current is not None and current.kind != "function":
        current = current.parent
    return current.class_path if current is not None else None


def argument_keys(call: ast.Call) -> list[tuple[str, ast.expr]]:
    """A call's arguments by the key the whole-program pass gives them: the position (`"0"`) or the keyword."""
    given = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
    return [(str(position), arg) for position, arg in enumerate(given)] + \
        [(named.arg, named.value) for named in call.keywords if named.arg is not None]


def says_nothing(param: ast.arg) -> bool:
    """A parameter whose annotation tells nothing of its type: none, or `Any`."""
    return param.annotation is None or dotted_name(param.annotation) in ("Any", "typing.Any")


def builtin_argument(node: ast.expr, names: frozenset[str], scope: Scope) -> ast.expr | None:
    """The first argument of a call of one of these builtins (not shadowed in scope), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names \
            and scope.binder(node.func.id) is None:
        return positional(node, 0)
    return None


def assigns_none(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant) \
        and statement.value.value is None


BLOCK_STATEMENTS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                    *([ast.TryStar] if hasattr(ast, "TryStar") else []))
TYPE_ALIASES = (ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()
"""`type X = ...` (Python 3.12 and later)."""
BLOCK_ENDS = (ast.Raise, ast.Return, ast.Break, ast.Continue)
"""Statements after which nothing more of their block runs."""
SIMPLE_BINDINGS = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, *TYPE_ALIASES)
"""The statements `bindings_of` reads."""


def nested_blocks(statement: ast.stmt) -> Iterator[Sequence[ast.stmt]]:
    """Statement blocks inside `if`/`try`/`with`/`for`/`while` at the same scope level."""
    if isinstance(statement, BLOCK_STATEMENTS):
        yield statement.body
        orelse = getattr(statement, "orelse", [])
        while orelse:  # an `elif` chain, block by block
            if len(orelse) == 1 and isinstance(orelse[0], ast.If) and isinstance(statement, ast.If):
                statement = orelse[0]
                yield statement.body
                orelse = statement.orelse
            else:
                yield orelse
                orelse = []
        for handler in getattr(statement, "handlers", ()):
            yield handler.body
        final = getattr(statement, "finalbody", [])
        if final:
            yield final


def import_bindings(statement: ast.Import | ast.ImportFrom, package: str) -> Iterator[tuple[str, Value]]:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.asname is not None:
                yield alias.asname, Value(alias.name)
            else:
                root = alias.name.split(".")[0]
                yield root, Value(root)
    else:
        base = absolute_module(package, statement.level, statement.module or "")
        for alias in statement.names:
            if alias.name == "*":
                yield "*", Value(base)
                return
            yield alias.asname or alias.name, Value(f"{base}.{alias.name}" if base else alias.name)


def bindings_of(statement: ast.stmt, scope: Scope, resolver: Resolver, package: str
                ) -> Iterator[tuple[str, Value | None]]:
    """Names a simple statement binds, with what they refer to (`SIMPLE_BINDINGS`)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        for name, value in import_bindings(statement, package):
            yield name, Value(resolver.knowledge.canonical(resolver.as_imported(value.path)))
    elif isinstance(statement, ast.Assign):
        value = None
        if isinstance(statement.value, ast.Subscript):  # a type alias: `SessionDep = Annotated[Session, ...]`
            alias = resolver.annotation(statement.value, scope)
            value = Value(alias.path) if alias is not None else None
        if value is None:
            value = resolver.infer(statement.value, scope)
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id, value
    elif isinstance(statement, ast.AnnAssign):
        if isinstance(statement.target, ast.Name):
            yield statement.target.id, assigned_type(statement.value, statement.annotation, scope, resolver)
    elif isinstance(statement, TYPE_ALIASES):
        alias = resolver.annotation(statement.value, scope)
        yield statement.name.id, Value(alias.path) if alias is not None else None


def assigned_type(value: ast.expr | None, annotation: ast.expr | None, scope: Scope,
                  resolver: Resolver) -> Value | None:
    """`x: T = value`: the instance the value builds where it is known (`mailer: Mailer = SmtpMailer()`, a
    Protocol's implementation), else what the annotation declares, else what the value is."""
    if isinstance(value, ast.Call):
        specifier = resolver.infer(value.func, scope)
        if specifier is not None and not specifier.instance and specifier.path in FIELD_SPECIFIERS:
            value = None  # `data_dir: Path = Field(default_factory=...)` is a Path
    inferred = resolver.infer(value, scope) if value is not None else None
    if inferred is not None and inferred.instance:
        return inferred
    declared = resolver.annotation(annotation, scope) if annotation is not None else None
    return declared if declared is not None else inferred


def self_assignments(body: list[ast.stmt], scope: Scope, resolver: Resolver, package: str,
                     assigned: Callable[[ast.expr], str | None] | None = None,
                     ) -> Iterator[tuple[str, ast.expr | None, ast.expr | None]]:
    """`self.x = value` and `self.x: T = value` (or the targets `assigned` names) anywhere in a method body, not
    inside nested functions; the method's own imports and assignments are bound in `scope` on the way (`import
    boto3` inside `__init__`)."""
    assigned = assigned or self_attribute
    for node in own_statements(body):  # in source order: `self.b = self.a.f()` after `self.a = ...`
        if not isinstance(node, SIMPLE_BINDINGS):
            continue
        for name, value in bindings_of(node, scope, resolver, package):
            scope.bind(name, value)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                name = assigned(target)
                if name:
                    yield name, node.value, None
        elif isinstance(node, ast.AnnAssign):
            name = assigned(node.target)
            if name:
                yield name, node.value, node.annotation


def stored_receiver(value: ast.expr | None) -> ast.Name | None:
    """The name an `__init__` keeps, or keeps what a call on it makes: `conn` of `self.conn = conn`, `channel` of
    a generated gRPC stub's `self.GetUserRole = channel.unary_unary(...)`."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        value = value.func.value
    return value if isinstance(value, ast.Name) else None


def state_attribute(node: ast.expr) -> str | None:
    """`db` of `request.state.db` or `app.state.db`: an attribute of a Starlette state holder."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "state":
        return node.attr
    return None


def rebound_name(node: ast.expr, names: set[str]) -> str | None:
    return node.id if isinstance(node, ast.Name) and node.id in names else None


def self_attribute(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}:
        return node.attr
    return None


def bind_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, scope: Scope, resolver: Resolver,
                    class_path: str | None, given: tuple[Value | None, ...] = ()) -> None:
    """Bind a function's parameters in its scope: what a dependency injects (it wins over an annotation that says
    otherwise: `db: Session = Depends(get_db)` where `get_db` yields an AsyncSession), or a function given as its
    default (what a call that passes nothing there runs: `resolver: Resolver = default_resolver`,
    `connect=psycopg.connect`), else the annotation, else a method's `self` or `cls`, else what the call gives by
    position (`given`)."""
    scope.class_path = class_path
    bound_self = class_path is not None and not is_staticmethod(node)
    positional_count = len(node.args.posonlyargs) + len(node.args.args)  # `parameters` gives these first
    for index, (param, default) in enumerate(parameters(node.args)):
        value = resolver.injected(param, default, scope)
        if value is None and isinstance(default, (ast.Name, ast.Attribute)):
            value = default_function(resolver.infer(default, scope), resolver)  # `resolver=default_resolver`
        if value is None:
            value = resolver.annotation(param.annotation, scope)
        if value is None and index == 0 and bound_self:
            value = Value(class_path, instance=param.arg != "cls")
        passed = index - bound_self
        if value is None and 0 <= passed < len(given) and index < positional_count:
            value = given[passed]
        scope.bind(param.arg, value)
    for star in (node.args.vararg, node.args.kwarg):
        if star is not None:
            scope.bind(star.arg, None)


def default_function(value: Value | None, resolver: Resolver) -> Value | None:
    """`value` where it is a function (not an instance, not a class) of the project, or of a library whose call the
    knowledge base knows (`connect=psycopg.connect`, then `self._connect(url)`)."""
    if value is None or value.instance or names_class(value):
        return None
    if resolver.in_project(value.path):
        return value
    known = resolver.knowledge.canonical(value.path)
    return value if resolver.knowledge.blocking_api(known) or resolver.knowledge.result_type(known) else None


def is_property(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any((dotted_name(d) or "").rsplit(".", 1)[-1] in PROPERTY_DECORATORS for d in node.decorator_list)


def is_staticmethod(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> bool:
    return isinstance(node, FUNCTIONS) and any(dotted_name(d) == "staticmethod" for d in node.decorator_list)


class BlockingCallWalker:
    """Walks a module with a stack of function frames and reports blocking calls made on the event loop.

    Decorators, default values and annotations are walked in the enclosing frame, where Python evaluates them.
    """

    def __init__(self, index: ModuleIndex, facts: FastApiFacts, source: SourceLines, whole_program: bool = True):
        self.index = index
        self.source = source
        self.whole_program = whole_program
        """Summarise sync functions and note calls of project functions (off when AG800 is not selected)."""
        self.resolver = index.resolver
        self.knowledge = index.resolver.knowledge
        self.facts = facts
        self.scopes: list[Scope] = [index.scope]
        self.frames: list[FunctionFrame] = []
        self.classes: list[str] = []
        self.awaited: set[int] = set()
        self.offloaded: set[int] = set()
        self.streamed: set[int] = set()
        """Calls whose result a streaming response iterates (`StreamingResponse(iter_file(path))`)."""
        self.called: set[int] = set()
        """Attributes that are called (`x.f` of `x.f()`): not reads of a property."""
        self.advanced_once: set[int] = set()
        """Calls whose result `next()` advances to its first `yield` (`db = next(get_db())`)."""
        self.held: list[str] = []
        """The thread locks held where the walk is (`with lock:` bodies, after `lock.acquire()`)."""
        self.acquired: list[str] = []
        self.released: list[str] = []
        """Locks the statement being walked acquires or releases by a call."""
        self.held_calls: dict[str, list[HeldCall]] = {}
        """What each lock's critical sections in this module call."""
        self.lock_uses: list[RawFinding] = []
        """Thread locks taken on the loop: reported if a critical section under them blocks."""
        self.findings: list[RawFinding] = []
        self.summaries: dict[str, FunctionSummary] = {}
        self.loop_calls: list[LoopCall] = []
        self.class_bases: dict[str, list[str]] = {}
        self.parameters: dict[str, list[str]] = {}
        """Parameters of each summarised function, as callers pass them."""
        self.cached: set[str] = set()
        """Summarised functions decorated with a cache (`CACHING_DECORATORS`)."""
        self.handlers = {
            ast.FunctionDef: self.walk_function, ast.AsyncFunctionDef: self.walk_function,
            ast.Lambda: self.walk_lambda, ast.ClassDef: self.walk_class, ast.If: self.walk_if,
            ast.With: self.walk_with, ast.AsyncWith: self.walk_with, ast.For: self.walk_for,
            ast.AsyncFor: self.walk_for, ast.NamedExpr: self.walk_named_expr, ast.Await: self.walk_await,
            ast.Call: self.walk_call, ast.Attribute: self.walk_attribute, ast.ListComp: self.walk_comprehension,
            ast.SetComp: self.walk_comprehension, ast.GeneratorExp: self.walk_comprehension,
            ast.DictComp: self.walk_comprehension,
            ast.AnnAssign: self.walk_annotated_assignment,
            **{statement: self.walk_simple_statement for statement in SIMPLE_BINDINGS if statement is not ast.AnnAssign},
        }

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    @property
    def frame(self) -> FunctionFrame | None:
        return self.frames[-1] if self.frames else None

    def walk(self, node: ast.AST) -> None:
        handler = self.handlers.get(type(node))
        if handler is not None:
            handler(node)
        else:
            self.walk_children(node)

    def walk_children(self, node: ast.AST) -> None:
        """Every child in source order; a list of statements as a block (`walk_block`)."""
        for name in child_fields(node):
            value = getattr(node, name, None)
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    self.walk_block(value)
                else:
                    self.walk_all(value)
            elif isinstance(value, ast.AST):
                self.walk(value)

    def walk_all(self, nodes: Sequence[ast.AST | None]) -> None:
        for node in nodes:
            if isinstance(node, ast.AST):
                self.walk(node)

    # -- scopes --------------------------------------------------------------------------------------------
    def walk_if(self, node: ast.If) -> None:
        if self.frames or not is_main_guard(node):  # module code under `if __name__ == "__main__":` is skipped
            self.walk_children(node)
        elif not self.facts.runs_own_loop:
            self._note_loop_run(node)

    def _note_loop_run(self, guard: ast.If) -> None:
        """`asyncio.run(main())` under the main guard: the module runs its coroutines on a loop of its own."""
        scope = Scope(self.scope, "function")  # the guard's own imports (`import anyio`) are bound here
        for node in own_nodes(guard.body):
            if isinstance(node, SIMPLE_BINDINGS):
                for name, value in bindings_of(node, scope, self.resolver, self.index.package):
                    scope.bind(name, value)
            elif isinstance(node, ast.Call):
                self.facts.runs_own_loop = self._runs_event_loop(node, scope)
                if self.facts.runs_own_loop:
                    return

    def _runs_event_loop(self, node: ast.Call, scope: Scope) -> bool:
        """`asyncio.run(main())`, `anyio.run(main)`, `loop.run_until_complete(main())` (`EVENT_LOOP_RUNNERS`); the
        function run is noted (`FastApiFacts.loop_entries`)."""
        name = called_name(node)  # by name first: most calls are neither, and need not be resolved
        runs = name == "run_until_complete" or (name == "run" and self.resolver.callee(node, scope) in EVENT_LOOP_RUNNERS)
        if runs and node.args:
            entry = node.args[0].func if isinstance(node.args[0], ast.Call) else node.args[0]
            if isinstance(entry, ast.Name):
                self.facts.loop_entries.add(entry.id)
        return runs

    def walk_class(self, node: ast.ClassDef) -> None:
        prefix = self.classes[-1] if self.classes else self.index.module_name
        path = f"{prefix}.{node.name}"
        self.facts.note_class(node, path, self.resolver, self.scope)
        self.class_bases[path] = [value.path for value in (self.resolver.infer(unsubscripted(base), self.scope)
                                                           for base in node.bases) if value]
        self.walk_all([*node.decorator_list, *node.bases])
        self.classes.append(path)
        self.scopes.append(Scope(self.scope, "class", class_path=path))
        self.walk_block(node.body)
        self.scopes.pop()
        self.classes.pop()

    def walk_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        enclosing_class = self.scope.class_path if self.scope.kind == "class" else None
        self.facts.note_decorators(node, self.resolver, self.scope)
        self.walk_all(node.decorator_list)
        self.walk_all([default for _, default in parameters(node.args)])
        if self.frames:
            own = self._own_nested_owner(node, self.frame)
            self.scope.bind(node.name, Value(own) if own is not None else None)
            if own is not None:  # what it returns is known as a module-level function's is (`-> AuthService`)
                self.index.functions.setdefault(own, node)
        frame = FunctionFrame(node=node, name=node.name, is_async=isinstance(node, ast.AsyncFunctionDef),
                              class_path=enclosing_class, parent=self.frame, on_loop=self._runs_on_loop(node),
                              owner=self._summary_owner(node, enclosing_class))
        if frame.owner is not None and (frame.parent is None or frame.parent.owner != frame.owner):
            self.parameters[frame.owner] = passed_parameters(node, enclosing_class)
            if self._is_cached(node):
                self.cached.add(frame.owner)
        scope = Scope(self.scope, "function")
        bind_parameters(node, scope, self.resolver, enclosing_class)
        if self.frame is None and self._typed_by_callers(node, enclosing_class):
            self._bind_from_callers(node, scope, enclosing_class)
        self.frames.append(frame)
        self.scopes.append(scope)
        for statement in node.body:  # a closure may call a helper defined after it
            own = self._own_nested_owner(statement, frame) if isinstance(statement, ast.FunctionDef) else None
            if own is not None:
                scope.bind(statement.name, Value(own))
                self.index.functions.setdefault(own, statement)
        self.walk_block(node.body)
        self.scopes.pop()
        self.frames.pop()

    def _typed_by_callers(self, node: ast.FunctionDef | ast.AsyncFunctionDef, enclosing_class: str | None) -> bool:
        """A module-level router factory or undecorated coroutine, or a coroutine method of a top-level class
        (`@staticmethod async def find(client, user_id)` of a repository)."""
        if enclosing_class is None:
            return self.scope.kind == "module" and (
                defines_coroutines(node) or isinstance(node, ast.AsyncFunctionDef) and not node.decorator_list)
        return isinstance(node, ast.AsyncFunctionDef) and len(self.classes) == 1 and all(
            (dotted_name(decorator) or "") in {"staticmethod", "classmethod"} for decorator in node.decorator_list)

    def _bind_from_callers(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope,
                           enclosing_class: str | None) -> None:
        """A router factory's or a coroutine's parameters that say nothing of their type (`def build_router(service)`,
        its routes calling `service.render(...)`; `async def load(key, *, s3: Any)` calling `s3.get_object(...)`)
        are what the project's calls of it pass (`build_router(app.state.service)`, `await load(key, s3=client)`,
        `await UserRepo.find(supabase, user_id)`)."""
        names = passed_parameters(node, enclosing_class)
        untyped = {param.arg: names.index(param.arg) for param, _ in parameters(node.args)
                   if param.arg in names and scope.names.get(param.arg) is None and says_nothing(param)}
        if not untyped:
            return
        receivers = {func.value.id for func in (child.func for child in ast.walk(node) if isinstance(child, ast.Call))
                     if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)}
        wanted = {parameter: position for parameter, position in untyped.items() if parameter in receivers}
        if wanted:
            path = f"{enclosing_class}.{node.name}" if enclosing_class else f"{self.index.prefix}{node.name}"
            for parameter, passed in self.resolver.passed_to(path, node.name, wanted).items():
                scope.bind(parameter, passed)

    def _own_nested_owner(self, node: ast.FunctionDef | ast.AsyncFunctionDef, parent: FunctionFrame) -> str | None:
        """A sync function nested in another that does not call it (an app factory's helper, called by the routes
        defined beside it) is summarised under its own name: `module.create_app._top`."""
        if (isinstance(node, ast.AsyncFunctionDef) or not self.whole_program or isinstance(parent.node, ast.Lambda)
                or self.scope.kind == "class" or runs_where_called(node, parent) or is_generator(node)):
            return None  # a generator's body runs where it is iterated, not where it is called
        return f"{self.index.module_name}.{parent.qualname}.{node.name}"

    def _is_cached(self, node: ast.FunctionDef) -> bool:
        """`@lru_cache`, `@lru_cache(maxsize=None)`, `@functools.cache`; or a lazy global (`memoizes_global`)."""
        for decorator in node.decorator_list:
            expr = decorator.func if isinstance(decorator, ast.Call) else decorator
            value = self.resolver.infer(expr, self.scope)
            if value is not None and value.path in CACHING_DECORATORS:
                return True
        return memoizes_global(node)

    def walk_lambda(self, node: ast.Lambda) -> None:
        parent = self.frame
        self.walk_all([default for _, default in parameters(node.args)])
        on_loop = bool(parent and parent.on_loop and id(node) not in self.offloaded)
        scope = Scope(self.scope, "function")
        bind_parameters(node, scope, self.resolver, None)
        self.frames.append(FunctionFrame(node=node, name="<lambda>", is_async=False, class_path=None,
                                         parent=parent, on_loop=on_loop))
        self.scopes.append(scope)
        self.walk(node.body)
        self.scopes.pop()
        self.frames.pop()

    def _summary_owner(self, node: ast.FunctionDef | ast.AsyncFunctionDef, enclosing_class: str | None) -> str | None:
        """A module-level sync function or a method summarises itself; a nested one feeds the function that calls
        it directly."""
        if isinstance(node, ast.AsyncFunctionDef) or not self.whole_program:
            return None
        parent = self.frame
        if parent is None:
            prefix = enclosing_class or self.index.module_name
            return f"{prefix}.{node.name}" if len(self.classes) <= 1 else None
        if parent.owner is not None and runs_where_called(node, parent):
            return parent.owner
        return self._own_nested_owner(node, parent)

    def _runs_on_loop(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """An `async def` runs on the loop, but one that a sync function runs to completion itself (`asyncio.run(
        _import())` in a Celery task) runs on a loop of its own; a sync event handler runs on the loop; a nested
        `def` only when its on-loop parent calls it directly."""
        parent = self.frame
        if isinstance(node, ast.AsyncFunctionDef):
            return parent is None or parent.is_async or not runs_to_completion(parent.node, node.name)
        if id(node) in self.facts.sync_on_loop:
            return True
        if parent is None or not parent.on_loop:
            return False
        return runs_where_called(node, parent)

    # -- bindings inside functions ----------------------------------------------------------------------------
    def walk_simple_statement(self, node: ast.stmt) -> None:
        """An import or assignment: what it evaluates first, then the names it binds (in a function)."""
        self.walk_children(node)
        self._bind_statement(node)

    def _bind_statement(self, node: ast.stmt) -> None:
        if self.frames and self.scope.kind == "function":
            for name, value in bindings_of(node, self.scope, self.resolver, self.index.package):
                self.scope.bind(name, value)
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                self._bind_from_parameter(node.targets[0], node.value)

    def walk_annotated_assignment(self, node: ast.AnnAssign) -> None:
        """A local variable's annotation is never evaluated (PEP 526): `x: time.sleep(1) = 1` calls nothing."""
        local = self.frames and self.scope.kind == "function"
        self.walk_all([node.target, node.value] if local else [node.target, node.annotation, node.value])
        self._bind_statement(node)

    def walk_with(self, node: ast.With | ast.AsyncWith) -> None:
        locks = []
        if self.frames:
            for item in node.items:
                if isinstance(node, ast.With):
                    locks.append(self._check_with_item(item))
                if isinstance(item.optional_vars, ast.Name):
                    value = self.resolver.infer(item.context_expr, self.scope)
                    self.scope.bind(item.optional_vars.id, value if value and value.instance else None)
                    self._bind_from_parameter(item.optional_vars, item.context_expr)  # `__enter__` gives itself
        self.walk_all([part for item in node.items for part in (item.context_expr, item.optional_vars)])
        held = [lock for lock in locks if lock is not None]
        self.held.extend(held)  # the body is the critical section
        self.walk_block(node.body)
        del self.held[len(self.held) - len(held):]

    def walk_block(self, statements: list[ast.stmt]) -> None:
        """`lock.acquire()` holds the lock for the rest of its block, or up to `lock.release()`. What follows a
        `raise`, `return`, `break` or `continue` in the block never runs: it is not walked."""
        depth = len(self.held)
        for statement in statements:
            self.walk(statement)
            self.held.extend(self.acquired)
            for lock in self.released:
                if lock in self.held:
                    del self.held[len(self.held) - 1 - self.held[::-1].index(lock)]
            self.acquired.clear()
            self.released.clear()
            if isinstance(statement, BLOCK_ENDS):
                break
        del self.held[depth:]

    def walk_for(self, node: ast.For | ast.AsyncFor) -> None:
        self.walk(node.iter)
        if isinstance(node, ast.For):
            self._check_consumed(node.iter, node.iter, "__iter__")
        self._bind_loop_target(node.target, node.iter)
        self.walk(node.target)
        self.walk_block(node.body)
        self.walk_block(node.orelse)

    def walk_comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        """The `for` parts first: they bind the names the element uses."""
        for generator in node.generators:
            self.walk(generator.iter)
            if not generator.is_async:
                self._check_consumed(generator.iter, generator.iter, "__iter__")
            self._bind_loop_target(generator.target, generator.iter)
            self.walk_all(generator.ifs)
        self.walk_all([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt])

    def _bind_loop_target(self, target: ast.expr, iterable: ast.expr) -> None:
        if not self.frames:
            return
        for name, value in self.resolver.loop_bindings(target, iterable, self.scope):
            self.scope.bind(name, value)

    def walk_named_expr(self, node: ast.NamedExpr) -> None:
        if self.frames and isinstance(node.target, ast.Name):
            self.scope.bind(node.target.id, self.resolver.infer(node.value, self.scope))
        self.walk_children(node)

    # -- calls --------------------------------------------------------------------------------------------------
    def walk_await(self, node: ast.Await) -> None:
        self.awaited.add(id(node.value))
        self.walk(node.value)

    def walk_call(self, node: ast.Call) -> None:
        self._check_call(node)
        consumed = builtin_argument(node, CONSUMING_BUILTINS.keys(), self.scope)
        if consumed is not None:
            self._check_consumed(node, consumed, CONSUMING_BUILTINS[node.func.id])
        self.called.add(id(node.func))
        self.walk_children(node)

    def _check_call(self, node: ast.Call) -> None:
        self.facts.note_call(node, self.resolver, self.scope)
        advanced = builtin_argument(node, frozenset({"next"}), self.scope)
        if advanced is not None:
            self.advanced_once.add(id(advanced))
        frame = self.frame
        if frame is None:
            if not self.facts.runs_own_loop:  # `with client: client.loop.run_until_complete(main())`
                self.facts.runs_own_loop = self._runs_event_loop(node, self.scope)
            return
        callee = self.resolver.callee(node, self.scope)
        if callee is None:
            return
        if callee.startswith(SERVERS):
            self.facts.serves = True
        if self.knowledge.is_offloader(callee):
            self.offloaded.update(id(value) for value in argument_values(node))
        if callee.rsplit(".", 1)[-1] in STREAMING_RESPONSES:
            self.streamed.add(id(streamed_content(node)))
        if id(node) in self.awaited:  # taken to be async: awaiting a plain call fails at run time (and a codebase
            return  # that awaits its sync service methods on an AsyncSession blocks nothing)
        if id(node) in self.streamed and self.resolver.is_sync_generator(callee):
            return  # iterated in the threadpool: its body never runs on the loop
        if id(node) in self.advanced_once and self.resolver.is_sync_generator(callee):
            return  # `next(get_db())` runs a dependency's setup to its `yield`, never its teardown
        api = self.knowledge.blocking_api(callee)
        if api is not None and (api.with_statement or is_nonblocking(node, api, self.source)
                                or self.resolver.works_in_memory(node, callee, self.scope)):
            api = None
        lock = self._lock_called(node, callee)
        if self.held and lock is None:
            self._note_held(node, callee, api, frame)
        if not frame.on_loop and frame.owner is None:
            return
        if api is not None and lock is not None:
            self._lock_use(RawFinding(node=node, api=api, call=callee, frame=frame, lock=lock))
        elif api is not None:
            self._blocking(RawFinding(node=node, api=api, call=callee, frame=frame))
        elif api is None and self._follows(callee):
            if frame.on_loop:
                self.loop_calls.append(LoopCall(node, callee, frame, self._argument_types(node)))
            elif self._on_self(node, callee, frame):
                self._summary(frame).self_calls.setdefault(node.func.attr, node)
            else:
                self._summary(frame).calls.setdefault(callee, node)
                self._note_forward(node, callee, frame)
        elif api is None and self.whole_program and not frame.on_loop and callee.startswith(f"{UNKNOWN}."):
            self._note_parameter_call(node, frame)

    def _check_consumed(self, node: ast.expr, iterable: ast.expr, method: str) -> None:
        """Iterating or counting a library object whose `__iter__`/`__len__` blocks (`for row in query`: the query
        runs), through lazy wrappers (`enumerate(query)`)."""
        frame = self.frame
        if frame is None or not (frame.on_loop or frame.owner is not None):
            return
        while (inner := builtin_argument(iterable, LAZY_ITERATORS, self.scope)) is not None:
            iterable = inner
        value = self.resolver.infer(iterable, self.scope)
        if value is None or not value.instance or self.resolver.in_project(value.path):
            return
        name = self.knowledge.canonical(f"{value.path}.{method}")
        api = self.knowledge.blocking_api(name)
        if api is not None:
            self._blocking(RawFinding(node=node, api=api, call=name, frame=frame))

    def _follows(self, callee: str) -> bool:
        """Whether a call of `callee` is one for the whole-program pass: a project function's, not allowed."""
        return self.whole_program and self.resolver.in_project(callee) and not self.knowledge.is_allowed(callee)

    def walk_attribute(self, node: ast.Attribute) -> None:
        frame = self.frame
        if (frame is not None and (frame.on_loop or frame.owner is not None) and isinstance(node.ctx, ast.Load)
                and id(node) not in self.called and isinstance(node.value, (ast.Name, ast.Attribute, ast.Call))):
            owner = self.resolver.infer(node.value, self.scope)
            if owner is not None and owner.instance:
                self._read(node, owner, frame)
        self.walk_children(node)

    def _read(self, node: ast.Attribute, owner: Value, frame: FunctionFrame) -> None:
        """Reading a property of a project class runs its getter: a call, on the loop or in a summarised function.
        Reading one of a library class may block itself (`AsyncResult.status`: `[[blocking]] reads`)."""
        if not self.resolver.in_project(owner.path):
            name = self.knowledge.canonical(f"{owner.path}.{node.attr}")
            api = self.knowledge.blocking_api(name)
            if api is not None and api.read:
                self._blocking(RawFinding(node=node, api=api, call=name, frame=frame))
            return
        getter = self.resolver.property_getter(owner.path, node.attr) if self.whole_program else None
        if getter is not None and self._follows(getter):
            if frame.on_loop:
                self.loop_calls.append(LoopCall(node, getter, frame))
            else:
                self._summary(frame).calls.setdefault(getter, node)

    def _on_self(self, node: ast.Call, callee: str, frame: FunctionFrame) -> bool:
        """`self.fetch()` in a method of the class that defines or inherits `fetch`."""
        func = node.func
        return (frame.class_path is not None and frame.owner == f"{frame.class_path}.{frame.name}"
                and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and callee == f"{frame.class_path}.{func.attr}"
                and self.scope.lookup(func.value.id) == Value(frame.class_path, instance=True))

    def _argument_types(self, node: ast.Call) -> dict[str, str]:
        types = {}
        for key, arg in argument_keys(node):
            value = self.resolver.infer(arg, self.scope)
            if value is not None and value.instance:
                types[key] = value.path
        return types

    def _note_parameter_call(self, node: ast.Call, frame: FunctionFrame) -> None:
        """`db.query(User).first()` on an unannotated parameter of the summarised function itself, or on a local
        made from one (`cur.execute(...)` after `cur = conn.cursor()`)."""
        steps = self._parameter_steps(node, frame)
        if steps is not None:
            self._summary(frame).parameter_calls.append((*steps, node))

    def _note_forward(self, node: ast.Call, callee: str, frame: FunctionFrame) -> None:
        """`record_event(conn, ...)` passing on an untyped parameter: its callers' types reach the callee."""
        if frame.parent is not None and frame.parent.owner == frame.owner:
            return
        summary = self._summary(frame)
        forwarded = {key: arg.id for key, arg in argument_keys(node) if isinstance(arg, ast.Name)
                     and arg.id in summary.parameters and self.scope.lookup(arg.id) is None}
        if forwarded:
            summary.forwards.append((callee, forwarded, node.lineno))

    def _parameter_steps(self, node: ast.expr, frame: FunctionFrame
                         ) -> tuple[str, tuple[tuple[str, bool], ...]] | None:
        """The untyped parameter a call is made on and the steps from it, through locals made from it."""
        steps = attribute_steps(node) if isinstance(node, ast.Call) else None
        if steps is None or frame.owner is None or frame.parent is not None and frame.parent.owner == frame.owner:
            return None  # not on a name, or in a nested function (its parameters are not the summary's)
        root, path = steps
        if self.scope.lookup(root) is not None:
            return None
        if root in frame.from_parameters:
            made_from, before = frame.from_parameters[root]
            return made_from, before + path
        return (root, path) if root in self._summary(frame).parameters else None

    def _bind_from_parameter(self, name: ast.expr, value: ast.expr) -> None:
        """`cur = conn.cursor()` or `with conn.cursor() as cur` on an untyped parameter: what `cur` is made from."""
        frame = self.frame
        if frame is None or not isinstance(name, ast.Name) or frame.on_loop or not self.whole_program:
            return
        steps = self._parameter_steps(value, frame) if self.scope.lookup(name.id) is None else None
        if steps is not None:
            frame.from_parameters[name.id] = steps
        else:
            frame.from_parameters.pop(name.id, None)

    def _summary(self, frame: FunctionFrame) -> FunctionSummary:
        """The summary of the function a frame's calls go into, its parameters noted when it is first made."""
        if frame.owner not in self.summaries:
            self.summaries[frame.owner] = FunctionSummary(parameters=self.parameters.get(frame.owner, []),
                                                          cached=frame.owner in self.cached)
        return self.summaries[frame.owner]

    def first_calls_of_chains(self) -> list[RawFinding]:
        """`conn.execute(q).fetchone()` is one blocking statement: keep the first call of a chain only."""
        flagged = {id(raw.node) for raw in self.findings}
        return [raw for raw in self.findings if not any(id(inner) in flagged for inner in receiver_calls(raw.node))]

    def _check_with_item(self, item: ast.withitem) -> str | None:
        """`with lock:` is `lock.acquire()` in disguise: noted where it runs, and which lock it is returned, for
        the critical section it opens."""
        frame = self.frame
        if frame is None or isinstance(item.context_expr, ast.Call):
            return None
        value = self.resolver.infer(item.context_expr, self.scope)
        api = self.knowledge.blocking_api(value.path) if value is not None and value.instance else None
        if api is None or not api.with_statement:
            return None
        lock = self.lock_identity(item.context_expr)
        if lock is not None and (frame.on_loop or frame.owner is not None):
            self._lock_use(RawFinding(node=item.context_expr, api=api, call=f"{value.path}.acquire", frame=frame, lock=lock))
        return lock

    def _lock_called(self, node: ast.Call, callee: str) -> str | None:
        """`lock.acquire()` and `lock.release()` of a thread lock: which lock, noted for the block being walked."""
        owner, _, method = callee.rpartition(".")
        if method not in {"acquire", "release"} or not isinstance(node.func, ast.Attribute):
            return None
        api = self.knowledge.blocking_api(owner)
        lock = self.lock_identity(node.func.value) if api is not None and api.with_statement else None
        if lock is not None:
            (self.acquired if method == "acquire" else self.released).append(lock)
        return lock

    def lock_identity(self, node: ast.expr) -> str | None:
        """Which lock an expression is, named where it is bound, as every critical section under it names it: a
        module's `app.state.token_lock` (imported or not), a class's `app.cache.Cache._lock`, or a function's own
        local; None where that cannot be told (a parameter)."""
        if isinstance(node, ast.Name):
            binder = self.scope.binder(node.id)
            if binder is None or binder.kind == "class":
                return None
            bound = binder.names[node.id]
            if binder.kind == "function":
                return f"{self.index.module_name}.{self.frame.qualname}.{node.id}" if bound is not None else None
            if bound is not None and not bound.instance:
                return bound.path  # imported from the module that binds it
            return f"{self.index.module_name}.{node.id}"
        if isinstance(node, ast.Attribute):
            base = self.resolver.infer(node.value, self.scope)
            if base is None or base.instance and not self.resolver.in_project(base.path):
                return None
            return f"{base.path}.{node.attr}"
        return None

    def _lock_use(self, raw: RawFinding) -> None:
        """A lock taken on the loop waits as long as its longest critical section: known once the whole project is
        read. In a sync function, a conditional part of its summary."""
        if raw.frame.on_loop:
            self.lock_uses.append(raw)
        else:
            self._summary(raw.frame).blocking.append(raw)

    def _note_held(self, node: ast.Call, callee: str, api: BlockingApi | None, frame: FunctionFrame) -> None:
        """A call in a critical section: blocking itself, or a project function that may block."""
        if api is not None:
            held = HeldCall(node, frame, raw=RawFinding(node=node, api=api, call=callee, frame=frame))
        elif self.whole_program and self.resolver.in_project(callee) and not self.knowledge.is_allowed(callee):
            held = HeldCall(node, frame, callee=callee)
        else:
            return
        released = self._released_while_waiting(node, callee)
        for lock in dict.fromkeys(self.held):
            if lock != released:
                self.held_calls.setdefault(lock, []).append(held)

    def _released_while_waiting(self, node: ast.Call, callee: str) -> str | None:
        """The lock a `condition.wait()` (or `wait_for`) lets go of while it waits: its own, not held then."""
        if callee.rpartition(".")[2] not in ("wait", "wait_for") or not isinstance(node.func, ast.Attribute):
            return None
        receiver = self.resolver.infer(node.func.value, self.scope)
        if receiver is None or receiver.path != "threading.Condition":
            return None
        return self.lock_identity(node.func.value)

    def _blocking(self, raw: RawFinding) -> None:
        """On the loop a finding; in a sync function, part of its summary."""
        if raw.frame.on_loop:
            self.findings.append(raw)
        else:
            self._summary(raw.frame).blocking.append(raw)


def defines_coroutines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a function defines `async def`s at the top of its body (a router factory's routes)."""
    return any(isinstance(statement, ast.AsyncFunctionDef) for statement in node.body)


def memoizes_global(node: ast.FunctionDef) -> bool:
    """A lazy global, made on the first call only: `global _config` then `if _config is None: _config = Config()`
    (or `if not _config:`, the assignment anywhere in the branch: `with open(...) as f: _config = load(f)`); or a
    module-level cache (`data = _cache.get(name)`, `if not data: ... _cache[name] = data`). The `if` stands at the
    top of the body, or in a `try` or `with` there (a lock held around it)."""
    rebound = declared_globals(node)
    local = {target.id for child in ast.walk(node) if isinstance(child, (ast.Assign, ast.AnnAssign))
             for target in (child.targets if isinstance(child, ast.Assign) else [child.target])
             if isinstance(target, ast.Name)}
    from_cache = {child.targets[0].id: child.value.func.value.id for child in ast.walk(node)  # `d = _cache.get(k)`
                  if isinstance(child, ast.Assign) and len(child.targets) == 1
                  and isinstance(child.targets[0], ast.Name)
                  and isinstance(child.value, ast.Call) and isinstance(child.value.func, ast.Attribute)
                  and child.value.func.attr == "get" and isinstance(child.value.func.value, ast.Name)
                  and child.value.func.value.id not in local}
    for statement in _top_statements(node.body):
        if not isinstance(statement, ast.If):
            continue
        test = statement.test
        name = (test.left.id if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
                and len(test.ops) == 1 and isinstance(test.ops[0], ast.Is)
                and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None
                else test.operand.id if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
                and isinstance(test.operand, ast.Name) else None)
        if name is None:
            continue
        stores = [target for child in own_nodes(statement.body) if isinstance(child, ast.Assign)
                  for target in child.targets]
        if name in rebound and any(isinstance(target, ast.Name) and target.id == name for target in stores):
            return True
        if name in from_cache and any(isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                                      and target.value.id == from_cache[name] for target in stores):
            return True
    return False


def _top_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a body, those of its `try` and `with` blocks included."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.Try, ast.With)):
            yield from _top_statements(statement.body)


def runs_to_completion(function: ast.AST, name: str) -> bool:
    """Whether `function` hands its nested coroutine function `name` to an event loop runner of its own
    (`asyncio.run(name())`, `loop.run_until_complete(name())`, `anyio.run(name)`)."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and called_name(node) in ("run", "run_until_complete") and node.args:
            entry = node.args[0].func if isinstance(node.args[0], ast.Call) else node.args[0]
            if isinstance(entry, ast.Name) and entry.id == name:
                return True
    return False


def runs_in(frame: FunctionFrame, entries: set[str]) -> bool:
    """Whether `frame` is (or is nested in) a module-level function of `entries`: the coroutine a script runs."""
    while frame.parent is not None:
        frame = frame.parent
    return frame.class_path is None and frame.name in entries


def runs_where_called(node: ast.FunctionDef | ast.AsyncFunctionDef, parent: FunctionFrame) -> bool:
    """A nested function runs in its parent when the parent calls it, except a sync generator only handed to a
    streaming response: Starlette iterates that in its threadpool."""
    name = node.name
    return name in parent.direct_calls or name in parent.streamed_calls and not is_generator(node)


def attribute_steps(call: ast.Call) -> tuple[str, tuple[tuple[str, bool], ...]] | None:
    """`db.session.query(User).first()` → `("db", (("session", False), ("query", True), ("first", True)))`."""
    steps: list[tuple[str, bool]] = []
    node: ast.expr = call
    called = False
    while True:
        if isinstance(node, ast.Call):
            node, called = node.func, True
        elif isinstance(node, ast.Attribute):
            steps.append((node.attr, called))
            node, called = node.value, False
        elif isinstance(node, ast.Name) and steps:
            return node.id, tuple(reversed(steps))
        else:
            return None


def passed_parameters(node: ast.FunctionDef, class_path: str | None) -> list[str]:
    """Parameter names in the order a call passes arguments: a method's `self` or `cls` is bound, not passed."""
    names = [param.arg for param, _ in parameters(node.args)]
    return names[1:] if class_path is not None and not is_staticmethod(node) and names else names


def query_calls(node: ast.expr, depth: int = 0) -> Iterator[ast.Call]:
    """The calls along a query expression, outermost first, and into the statement a session runs:
    `db.query(User).filter(...).first()` gives `first`, `filter`, `query`; `session.scalars(select(User)).one()`
    gives `one`, `scalars`, `select`."""
    while depth < MAX_QUERY_STEPS:
        depth += 1
        if isinstance(node, ast.Await):
            node = node.value
        elif isinstance(node, ast.Call):
            yield node
            if node.args and isinstance(node.func, ast.Attribute) and node.func.attr in STATEMENT_RUNNERS:
                yield from query_calls(node.args[0], depth)
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return


def receiver_calls(node: ast.expr) -> Iterator[ast.Call]:
    """The calls a method call is made on: `a().b().c()` → `a().b()`, `a()`."""
    receiver = node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None
    while receiver is not None:
        if isinstance(receiver, ast.Call):
            yield receiver
            receiver = receiver.func
        elif isinstance(receiver, (ast.Attribute, ast.Subscript)):
            receiver = receiver.value
        else:
            return


def target_names(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            yield from target_names(unstarred(element))


def is_nonblocking(call: ast.Call, api: BlockingApi, source: SourceLines) -> bool:
    """True when an argument selects the call's non-blocking form (`get(block=False)`, `acquire(timeout=0)`)."""
    for condition in api.unless:
        given = keyword(call, condition.arg)
        if given is None and condition.position is not None:
            given = positional(call, condition.position)
        if given is None and condition.default:  # left out, the argument takes its non-blocking default
            return True
        if given is not None and source.segment(given).strip() == condition.value:
            return True
    return False


@dataclass
class AnalysisResult:
    findings: list[tuple[RawFinding, Span]] = field(default_factory=list)
    facts: FastApiFacts | None = None
    summaries: dict[str, tuple[FunctionSummary, list[tuple[RawFinding, Span]]]] = field(default_factory=dict)
    """Each sync function's summary, with the positions of its blocking calls."""
    loop_calls: list[tuple[LoopCall, Span]] = field(default_factory=list)
    class_bases: dict[str, list[str]] = field(default_factory=dict)
    parameter_lines: dict[int, int] = field(default_factory=dict)
    """Line of each call on a parameter of unknown type, by the call node's id."""
    call_lines: dict[int, int] = field(default_factory=dict)
    """Line of each summarised call of a project function, by the call node's id."""
    lock_uses: list[tuple[RawFinding, Span]] = field(default_factory=list)
    held_calls: dict[str, list[tuple[HeldCall, int]]] = field(default_factory=dict)
    """What each lock's critical sections call, with the line of each call."""


def analyze(module: ast.Module, module_name: str, knowledge: Knowledge, text: str,
            project: "Project | None" = None, whole_program: bool = True) -> AnalysisResult:
    """Blocking calls on the event loop in one parsed module (`text` is its source), with their positions; and
    what the whole-program pass needs of it: the summaries of its sync functions and its calls of project functions
    on the loop."""
    facts = FastApiFacts()
    if project is not None:
        project.indexes.setdefault(module_name, None)  # imports of this module from its imports: a cycle
    index = ModuleIndex(module, module_name, knowledge, facts, project)
    if project is not None:
        project.begin_file(module_name, index)
    source = SourceLines(text)
    walker = BlockingCallWalker(index, facts, source, whole_program)
    walker.walk(module)
    if facts.is_script:  # known once the whole module is read: its coroutines run on its own loop, not a server's
        if project is not None and project.imported_elsewhere(module_name):  # and on the service's, imported
            entries = facts.loop_entries
            walker.findings = [raw for raw in walker.findings if not runs_in(raw.frame, entries)]
            walker.loop_calls = [call for call in walker.loop_calls if not runs_in(call.frame, entries)]
            walker.lock_uses = [raw for raw in walker.lock_uses if not runs_in(raw.frame, entries)]
        else:
            walker.findings, walker.loop_calls, walker.lock_uses = [], [], []
    summaries = walker.summaries
    calls = [call for summary in summaries.values() for call in (*summary.calls.values(), *summary.self_calls.values())]
    return AnalysisResult(
        findings=[(raw, source.span(raw.node)) for raw in walker.first_calls_of_chains()], facts=facts,
        summaries={name: (summary, [(raw, source.span(raw.node)) for raw in summary.blocking])
                   for name, summary in summaries.items()},
        parameter_lines={id(call): call.lineno for summary in summaries.values()
                         for _, _, call in summary.parameter_calls},
        loop_calls=[(call, source.span(call.node)) for call in walker.loop_calls],
        class_bases=walker.class_bases,
        call_lines={id(call): call.lineno for call in calls},
        lock_uses=[(raw, source.span(raw.node)) for raw in walker.lock_uses],
        held_calls={lock: [(held, held.node.lineno) for held in calls] for lock, calls in walker.held_calls.items()},
    )

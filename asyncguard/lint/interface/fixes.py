"""`asyncguard check --fix` / `--diff`: rewrite the simple blocking calls, keeping comments and formatting (libcst).

Safe: `time.sleep(x)` in a coroutine becomes `await asyncio.sleep(x)` (and `import asyncio` is added where the
module lacks it). Unsafe (`--unsafe-fixes`): any other reported call in a coroutine, `f(a, b=c)`, becomes
`await asyncio.to_thread(f, a, b=c)`; unsafe because the call then runs in another thread, which not every object
allows (an `sqlite3` connection refuses to be used from a thread other than its own).

A fix is made only where `await` may stand: in the coroutine's own body, not in a nested function, a lambda, a
generator expression, a class body or an annotation, and not on a call that opens a `with` block or feeds a `for`
loop (the block and the loop would still block). Where `asyncio` names something else at the call (a local, a
parameter, a module-level assignment), the fix reaches the module as `_asyncio` (`import asyncio as _asyncio`).

A fixed file is written back in its own encoding, BOM and newlines, atomically, and only while it still holds the
bytes the fix was computed from: a file that cannot be fixed or written is skipped with its reason, never damaged.
"""

from __future__ import annotations

import difflib
import io
import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ClassScope, GlobalScope, MetadataWrapper, PositionProvider, Scope, ScopeProvider

from asyncguard.lint.engine.analysis import analyze
from asyncguard.lint.engine.checker import SourceError, decode
from asyncguard.lint.interface.config import Settings
from asyncguard.lint.interface.files import SourceFile
from asyncguard.lint.findings import Finding
from asyncguard.lint.knowledge.base import Knowledge
from asyncguard.lint.engine.program import INDIRECT
from asyncguard.lint.engine.names import Project
from asyncguard.lint.rule import rules_by_category
from asyncguard.lint.engine.syntax import Span, parse

SAFE = {"AG101": "time.sleep"}
"""Rule code → the call its safe fix rewrites."""
NOT_OFFLOADED = frozenset({"AG001", "AG002", "AG003", "AG111"})
"""Nothing to rewrite, or a rewrite that is never right (an event loop started in a thread is still wrong)."""
NEEDS_PARENTHESES = (cst.Attribute, cst.Subscript, cst.Call, cst.BinaryOperation, cst.UnaryOperation,
                     cst.BooleanOperation, cst.Comparison)


@dataclass
class FileFix:
    path: Path
    display: str
    before: str
    after: str
    fixed: int
    original: bytes
    """The bytes the fix was computed from: the file is replaced only while it still holds them."""
    replacement: bytes
    """The fixed text in the file's own encoding (with its BOM, if it had one)."""

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True),
                                            self.after.splitlines(keepends=True),
                                            fromfile=f"a/{self.display}", tofile=f"b/{self.display}"))


@dataclass
class NotFixed:
    display: str
    reason: str

    def message(self) -> str:
        return f"asyncguard: not fixed: {self.display}: {self.reason}"


def fixable(finding: Finding, unsafe: bool) -> bool:
    return finding.code in SAFE or unsafe and finding.code not in NOT_OFFLOADED


class Fixer(cst.CSTTransformer):
    """Replaces the chosen calls (by node identity) with their awaited form."""

    def __init__(self, chosen: dict[int, tuple[str, str]]):
        super().__init__()
        self.chosen = chosen
        """`id(call)` → ("sleep" or "thread", the name that reaches the asyncio module there)."""
        self.stack: list[cst.CSTNode] = []
        self.applied = 0
        self.names_used: set[str] = set()
        """The names of the asyncio module the applied fixes use: each needs its import."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.stack.append(node)
        return True

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
        self.stack.pop()
        kind, asyncio_name = self.chosen.get(id(original), (None, ""))
        if kind is None or not isinstance(updated, cst.Call) or not await_may_stand(original, self.stack):
            return updated
        self.applied += 1
        self.names_used.add(asyncio_name)
        asyncio_attribute = lambda name: cst.Attribute(cst.Name(asyncio_name), cst.Name(name))  # noqa: E731
        if kind == "sleep":
            call = updated.with_changes(func=asyncio_attribute("sleep"))
        else:
            comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if updated.args \
                else cst.MaybeSentinel.DEFAULT
            call = cst.Call(asyncio_attribute("to_thread"), [cst.Arg(updated.func, comma=comma), *updated.args])
        parent = self.stack[-1] if self.stack else None
        wrapped = isinstance(parent, NEEDS_PARENTHESES)
        return cst.Await(call, lpar=[cst.LeftParen()] if wrapped else [], rpar=[cst.RightParen()] if wrapped else [])


def await_may_stand(call: cst.CSTNode, ancestors: Sequence[cst.CSTNode]) -> bool:
    """Whether `await` may replace the call: it runs in the body of an `async def` (a nested function's defaults
    and decorators run in the function around it), outside annotations, class bodies, lambdas and generator
    expressions, and it neither opens a `with` block nor feeds a `for` loop."""
    parent = ancestors[-1] if ancestors else None
    if isinstance(parent, cst.WithItem) or isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is call:
        return False
    child = call
    for ancestor in reversed(ancestors):
        if isinstance(ancestor, (cst.Annotation, cst.GeneratorExp, cst.Lambda)):
            return False
        if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef)) and child is ancestor.body:
            return isinstance(ancestor, cst.FunctionDef) and ancestor.asynchronous is not None
        child = ancestor
    return False


def asyncio_binding(module: cst.Module) -> str | None:
    """The name `import asyncio` binds at module level (`asyncio`, or its alias), if the module has one."""
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if isinstance(alias.name, cst.Name) and alias.name.value == "asyncio":
                            return alias.asname.name.value if alias.asname else "asyncio"
    return None


def names_asyncio_only(scope: Scope, name: str, imported: bool) -> bool:
    """Whether `name`, seen from `scope`, can only be the module-level `import asyncio` (`imported`) or the one
    about to be added: no enclosing function binds it, and the module binds it by that import alone."""
    while not isinstance(scope, GlobalScope):
        if not isinstance(scope, ClassScope) and scope.assignments[name]:  # a function skips its class's names
            return False
        scope = scope.parent
    return len(scope.assignments[name]) == int(imported)


def unused_name(module: cst.Module, base: str) -> str:
    """`base`, or `base_2`, `base_3`...: the first that no name of the module spells."""
    taken = {node.value for node in m.findall(module, m.Name())}
    candidates = (base if number == 1 else f"{base}_{number}" for number in range(1, len(taken) + 2))
    return next(name for name in candidates if name not in taken)


def with_import_asyncio(module: cst.Module, alias: str | None = None) -> cst.Module:
    """`import asyncio` (`as alias`) at the head of the imports: after the docstring and the `from __future__`
    imports, taking over the blank lines before the import that follows."""
    body = list(module.body)
    position = 0
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        small = statement.body[0]
        is_docstring = index == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)
        is_future = isinstance(small, cst.ImportFrom) and isinstance(small.module, cst.Name) and \
            small.module.value == "__future__"
        if not (is_docstring or is_future):
            break
        position = index + 1
    statement = cst.parse_statement(f"import asyncio as {alias}\n" if alias else "import asyncio\n")
    following = body[position] if position < len(body) else None
    if isinstance(following, cst.SimpleStatementLine) and isinstance(following.body[0], (cst.Import, cst.ImportFrom)):
        statement = statement.with_changes(leading_lines=following.leading_lines)
        body[position] = following.with_changes(leading_lines=())
    body.insert(position, statement)
    return module.with_changes(body=body)


def fix_source(text: str, module_name: str, findings: Sequence[Finding], knowledge: Knowledge,
               project: Project | None, unsafe: bool) -> tuple[str, int]:
    """The text with the findings' fixes applied, and how many were. A finding is fixed only where the text still
    has a call its rule reports at its position: found by the analysis (on `ast`), then rewritten in libcst's
    tree, which keeps comments and formatting, at the same span. Raises SyntaxError, or what libcst raises, on
    text that cannot be parsed, and RecursionError on too deep an expression."""
    tree = parse(text)
    if tree is None:  # syntax too new to analyse: nothing of it was reported
        return text, 0
    result = analyze(tree, module_name, knowledge, text, project,
                     whole_program=any(f.code == INDIRECT for f in findings))
    by_category = rules_by_category()
    at = {(span[0], span[1], by_category[raw.api.category].code): (span, raw.call) for raw, span in result.findings}
    at.update({(span[0], span[1], INDIRECT): (span, call.callee) for call, span in result.loop_calls})
    wanted: dict[Span, str] = {}
    for finding in findings:
        span, call = at.get((finding.line, finding.column, finding.code), (None, None))
        if span is None or not fixable(finding, unsafe):
            continue
        if SAFE.get(finding.code) == call:
            wanted[span] = "sleep"
        elif unsafe:
            wanted[span] = "thread"
    if not wanted:
        return text, 0
    module = cst.parse_module(text)
    metadata = MetadataWrapper(module, unsafe_skip_copy=True)
    kinds = {node: wanted[span] for node, span in call_spans(metadata) if span in wanted}
    imported = asyncio_binding(module)
    plain, alias = imported or "asyncio", unused_name(module, "_asyncio")
    scopes = metadata.resolve(ScopeProvider)
    chosen = {id(node): (kind, plain if names_asyncio_only(scopes[node], plain, imported is not None) else alias)
              for node, kind in kinds.items()}
    fixer = Fixer(chosen)
    fixed = module.visit(fixer)
    if alias in fixer.names_used:
        fixed = with_import_asyncio(fixed, alias)
    if imported is None and plain in fixer.names_used:
        fixed = with_import_asyncio(fixed)
    return fixed.code, fixer.applied


def call_spans(metadata: MetadataWrapper) -> list[tuple[cst.Call, Span]]:
    """Every call of the wrapped module with its span, counted as the analysis counts it (1-based columns)."""
    return [(node, (place.start.line, place.start.column + 1, place.end.line, place.end.column + 1))
            for node, place in metadata.resolve(PositionProvider).items() if isinstance(node, cst.Call)]


def decode_reversibly(data: bytes) -> tuple[str, str]:
    """The source text and the encoding to write it back in (`utf-8-sig` keeps a BOM); a SourceError when that
    encoding would not give back the same bytes, so that a fix could not leave the rest of the file as it was."""
    text = decode(data)
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    try:
        if text.encode(encoding) == data:
            return text, encoding
    except UnicodeError:
        pass
    raise SourceError(f"its bytes do not survive a round trip through {encoding}")


def fix_files(findings: Sequence[Finding], files: Sequence[SourceFile], settings: Settings,
              unsafe: bool) -> tuple[list[FileFix], list[NotFixed]]:
    """The fixes of every file with a fixable finding, resolved against the same project as the check; and the
    files with one that could not be fixed, with why."""
    wanted: dict[str, list[Finding]] = {}
    for finding in findings:
        if fixable(finding, unsafe):
            wanted.setdefault(finding.path, []).append(finding)
    knowledge, project = fixing_context(files, settings)
    fixes, not_fixed = [], []
    for source in files:
        if source.display not in wanted:
            continue
        try:
            original = source.path.read_bytes()
            before, encoding = decode_reversibly(original)
            after, count = fix_source(before, source.module, wanted[source.display], knowledge, project, unsafe)
            replacement = after.encode(encoding)
        except OSError as error:
            not_fixed.append(NotFixed(source.display, f"cannot read: {error.strerror or error}"))
        except SourceError as error:
            not_fixed.append(NotFixed(source.display, str(error)))
        except SyntaxError as error:
            not_fixed.append(NotFixed(source.display, f"syntax error at {error.lineno or 1}:{error.offset or 1}"))
        except cst.ParserSyntaxError as error:
            not_fixed.append(NotFixed(source.display, f"syntax error at {error.raw_line}:{error.raw_column + 1}"))
        except (RecursionError, MemoryError):
            not_fixed.append(NotFixed(source.display, "too deeply nested to fix"))
        else:
            if count:
                fixes.append(FileFix(source.path, source.display, before, after, count, original, replacement))
    return fixes, not_fixed


def fixing_context(files: Sequence[SourceFile], settings: Settings) -> tuple[Knowledge, Project]:
    """The knowledge and the project a fix resolves its calls against: the check's own."""
    from asyncguard.lint.knowledge.base import build_knowledge
    from asyncguard.lint.engine.names import layout

    knowledge = build_knowledge(settings.extra_blocking_calls, settings.allowed_calls)
    modules, roots = layout(files)
    return knowledge, Project(modules, knowledge, search_roots=roots)


def write_fixes(fixes: Sequence[FileFix]) -> tuple[list[FileFix], list[NotFixed]]:
    """Write every fix that can be written; the fixes written, and the files skipped with why."""
    written, not_fixed = [], []
    for fix in fixes:
        reason = replace_if_unchanged(fix)
        if reason is None:
            written.append(fix)
        else:
            not_fixed.append(NotFixed(fix.display, reason))
    return written, not_fixed


def replace_if_unchanged(fix: FileFix) -> str | None:
    """Replace the file with its fixed bytes, atomically (a temporary file beside it, then `os.replace`), keeping
    its mode and owner, and only if it still holds the bytes the fix was computed from (compared after the
    temporary file is written, just before the replace); returns why not, or None once written. A symbolic link
    is followed, so that it keeps pointing at the fixed file."""
    target = Path(os.path.realpath(fix.path))
    try:
        status = target.stat()
        if os.statvfs(target.parent).f_flag & os.ST_RDONLY:
            return "read-only file system"
        if not status.st_mode & 0o222 or not os.access(target, os.W_OK):
            return "read-only file"
        if status.st_nlink > 1:
            return "has other hard links, which a replaced file would no longer share"
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".asyncguard", dir=target.parent)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(fix.replacement)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, stat.S_IMODE(status.st_mode))
            created = os.stat(temporary)
            if (created.st_uid, created.st_gid) != (status.st_uid, status.st_gid):
                try:
                    os.chown(temporary, status.st_uid, status.st_gid)
                except PermissionError:
                    return "cannot keep its owner and group"
            if target.read_bytes() != fix.original:
                return "changed since it was read"
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as error:
        return f"cannot write: {error.strerror or error}"
    return None

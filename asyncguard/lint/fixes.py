"""`asyncguard check --fix` / `--diff`: rewrite the simple blocking calls, keeping comments and formatting (libcst).

Safe: `time.sleep(x)` in a coroutine becomes `await asyncio.sleep(x)` (and `import asyncio` is added where the
module lacks it). Unsafe (`--unsafe-fixes`): any other reported call in a coroutine, `f(a, b=c)`, becomes
`await asyncio.to_thread(f, a, b=c)`; unsafe because the call then runs in another thread, which not every object
allows (an `sqlite3` connection refuses to be used from a thread other than its own).

A fix is made only where `await` may stand: in the coroutine's own body, not in a nested function, a lambda or a
generator expression, and not on a call that opens a `with` block or feeds a `for` loop (the block and the loop
would still block).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import libcst as cst

from asyncguard.lint.analyzer import analyze
from asyncguard.lint.config import Settings
from asyncguard.lint.files import SourceFile
from asyncguard.lint.findings import Finding
from asyncguard.lint.knowledge import Knowledge
from asyncguard.lint.program import INDIRECT
from asyncguard.lint.project import Project

SAFE = {"AG101": "time.sleep"}
"""Rule code → the call its safe fix rewrites."""
NOT_OFFLOADED = frozenset({"AG001", "AG002", "AG111"})
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

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True),
                                            self.after.splitlines(keepends=True),
                                            fromfile=f"a/{self.display}", tofile=f"b/{self.display}"))


def fixable(finding: Finding, unsafe: bool) -> bool:
    return finding.code in SAFE or unsafe and finding.code not in NOT_OFFLOADED


class Fixer(cst.CSTTransformer):
    """Replaces the chosen calls (by node identity) with their awaited form."""

    def __init__(self, chosen: dict[int, str], asyncio_name: str):
        super().__init__()
        self.chosen = chosen
        """`id(call)` → "sleep" or "thread"."""
        self.asyncio = asyncio_name
        self.stack: list[cst.CSTNode] = []
        self.applied = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.stack.append(node)
        return True

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
        self.stack.pop()
        kind = self.chosen.get(id(original))
        if kind is None or not isinstance(updated, cst.Call) or not self._await_may_stand(original):
            return updated
        self.applied += 1
        asyncio_attribute = lambda name: cst.Attribute(cst.Name(self.asyncio), cst.Name(name))  # noqa: E731
        if kind == "sleep":
            call = updated.with_changes(func=asyncio_attribute("sleep"))
        else:
            comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if updated.args \
                else cst.MaybeSentinel.DEFAULT
            call = cst.Call(asyncio_attribute("to_thread"), [cst.Arg(updated.func, comma=comma), *updated.args])
        parent = self.stack[-1] if self.stack else None
        wrapped = isinstance(parent, NEEDS_PARENTHESES)
        return cst.Await(call, lpar=[cst.LeftParen()] if wrapped else [], rpar=[cst.RightParen()] if wrapped else [])

    def _await_may_stand(self, call: cst.CSTNode) -> bool:
        parent = self.stack[-1] if self.stack else None
        if isinstance(parent, cst.WithItem) or isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is call:
            return False
        for ancestor in reversed(self.stack):
            if isinstance(ancestor, cst.GeneratorExp):
                return False
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
                return isinstance(ancestor, cst.FunctionDef) and ancestor.asynchronous is not None
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


def with_import_asyncio(module: cst.Module) -> cst.Module:
    """`import asyncio` at the head of the imports: after the docstring and the `from __future__` imports, taking
    over the blank lines before the import that follows."""
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
    statement = cst.parse_statement("import asyncio\n")
    following = body[position] if position < len(body) else None
    if isinstance(following, cst.SimpleStatementLine) and isinstance(following.body[0], (cst.Import, cst.ImportFrom)):
        statement = statement.with_changes(leading_lines=following.leading_lines)
        body[position] = following.with_changes(leading_lines=())
    body.insert(position, statement)
    return module.with_changes(body=body)


def fix_source(text: str, module_name: str, findings: Sequence[Finding], knowledge: Knowledge,
               project: Project | None, unsafe: bool) -> tuple[str, int]:
    """The text with the findings' fixes applied, and how many were."""
    module = cst.parse_module(text)
    result = analyze(module, module_name, knowledge, project, text,
                     whole_program=any(f.code == INDIRECT for f in findings))
    at = {(span[0], span[1]): (raw.node, raw.call) for raw, span in result.findings}
    at.update({(span[0], span[1]): (call.node, call.callee) for call, span in result.loop_calls})
    chosen = {}
    for finding in findings:
        node, call = at.get((finding.line, finding.column), (None, None))
        if node is None or not fixable(finding, unsafe):
            continue
        if SAFE.get(finding.code) == call:
            chosen[id(node)] = "sleep"
        elif unsafe:
            chosen[id(node)] = "thread"
    if not chosen:
        return text, 0
    fixer = Fixer(chosen, asyncio_binding(module) or "asyncio")
    fixed = module.visit(fixer)
    if fixer.applied and asyncio_binding(module) is None:
        fixed = with_import_asyncio(fixed)
    return fixed.code, fixer.applied


def fix_files(findings: Sequence[Finding], files: Sequence[SourceFile], settings: Settings,
              unsafe: bool) -> list[FileFix]:
    """The fixes of every file with a fixable finding, resolved against the same project as the check."""
    from asyncguard.lint.checker import SourceError, decode
    from asyncguard.lint.knowledge import build_knowledge
    from asyncguard.lint.project import layout

    wanted: dict[str, list[Finding]] = {}
    for finding in findings:
        if fixable(finding, unsafe):
            wanted.setdefault(finding.path, []).append(finding)
    knowledge = build_knowledge(settings.extra_blocking_calls, settings.allowed_calls)
    modules, roots = layout(files)
    project = Project(modules, knowledge, search_roots=roots)
    fixes = []
    for source in files:
        if source.display not in wanted:
            continue
        try:
            before = decode(source.path.read_bytes())
        except (OSError, SourceError):
            continue
        after, count = fix_source(before, source.module, wanted[source.display], knowledge, project, unsafe)
        if count:
            fixes.append(FileFix(source.path, source.display, before, after, count))
    return fixes

"""Where nodes are, without libcst's PositionProvider (which costs about twice the parse).

Python's `ast` gives every call its position at a tenth of libcst's cost, and both trees hold the same calls in the
same source order: the n-th call of one is the n-th call of the other. Where that does not hold (the counts
differ), or for a node that is not a call, libcst's own provider answers.
"""

from __future__ import annotations

import ast
import warnings
from functools import lru_cache
from typing import Iterable

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from asyncguard.lint.engine.syntax import child_nodes

Span = tuple[int, int, int, int]
"""Start line, start column, end line, end column; lines 1-based, columns 1-based characters."""


def libcst_calls(module: cst.Module) -> list[cst.Call]:
    """Every call in source order (an outer call before the calls inside it)."""
    found, stack = [], [module]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call):
            found.append(node)
        stack.extend(reversed(child_nodes(node, in_source_order=True)))
    return found


def called_name(node: cst.Call | ast.Call) -> str:
    """The last name of what is called (`get` of `requests.get(...)`): two trees must agree on it."""
    func = node.func
    if isinstance(func, cst.Name | ast.Name):
        return func.value if isinstance(func, cst.Name) else func.id
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


@lru_cache(maxsize=1)
def parsed(text: str) -> ast.Module | None:
    """The file's `ast`, parsed once for both the call positions and the definition lines."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def ast_calls(text: str) -> list[tuple[Span, str]] | None:
    tree = parsed(text)
    if tree is None:
        return None
    lines = text.splitlines()

    def column(line: int, offset: int) -> int:  # ast counts UTF-8 bytes, findings count characters
        source = lines[line - 1] if 0 < line <= len(lines) else ""
        return len(source.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + 1

    calls = sorted((node for node in ast.walk(tree) if isinstance(node, ast.Call)),
                   key=lambda n: (n.lineno, n.col_offset, -n.end_lineno, -n.end_col_offset))
    return [((n.lineno, column(n.lineno, n.col_offset), n.end_lineno, column(n.end_lineno, n.end_col_offset)),
             called_name(n)) for n in calls]


def spans(module: cst.Module, text: str, nodes: Iterable[cst.CSTNode]) -> dict[int, Span]:
    """Positions of `nodes`, by `id(node)`."""
    nodes = list(nodes)
    if not nodes:
        return {}
    if all(isinstance(node, cst.Call) for node in nodes):
        calls = libcst_calls(module)
        located = ast_calls(text)
        if located is not None and len(located) == len(calls):
            order = {id(call): index for index, call in enumerate(calls)}
            found = {id(node): located[order[id(node)]] for node in nodes}
            if all(found[id(node)][1] == called_name(node) for node in nodes):
                return {key: span for key, (span, _) in found.items()}
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {id(node): (positions[node].start.line, positions[node].start.column + 1,
                       positions[node].end.line, positions[node].end.column + 1) for node in nodes}


def definition_lines(text: str) -> dict[str, int]:
    """Line of each module-level function, class and method, by its name in the module (`f`, `Class`,
    `Class.method`)."""
    tree = parsed(text)
    if tree is None:
        return {}
    lines: dict[str, int] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines.setdefault(prefix + node.name, node.lineno)
            elif isinstance(node, ast.ClassDef):
                lines.setdefault(prefix + node.name, node.lineno)
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                    visit(block, prefix)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body, prefix)

    visit(tree.body, "")
    return lines

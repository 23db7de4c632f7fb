"""The one parse of a file, and small readers of `ast` nodes shared by the analyzer and the FastAPI context."""

from __future__ import annotations

import ast
import re
import warnings
from collections import deque
from typing import Iterator

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
"""Nodes whose bodies are not run where they stand (walks of a function's own body stop at them)."""
Span = tuple[int, int, int, int]
"""Start line, start column, end line, end column; lines 1-based, columns 1-based characters."""
LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""What ends a line for Python's tokenizer (not `str.splitlines`, which also breaks at form feeds)."""


def parse(text: str) -> ast.Module | None:
    """The module's `ast`. Raises SyntaxError (ValueError, RecursionError, MemoryError) where the text is not Python.

    Syntax newer than the running Python's `ast` knows but libcst reads (PEP 695 type parameters and `type`
    statements on Python 3.11) is valid: its tree is the one of the same text with that syntax blanked out, in
    place, so that every position stays where it was; None where the text cannot be put so (nothing to analyse).
    """
    try:
        return _parse_quietly(text)
    except SyntaxError:
        quickly = _without_type_parameters(text)
        if quickly is not None:
            try:  # most such text is PEP 695's alone, blanked without libcst (which took 0.14 s a file)
                return _parse_quietly(quickly)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                pass
        older = _older_syntax(text)
        if older is None:
            raise
    try:
        return _parse_quietly(older) if older else None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _parse_quietly(text: str) -> ast.Module:
    with warnings.catch_warnings():  # an invalid escape sequence in a string is the checked code's business
        warnings.simplefilter("ignore")
        return ast.parse(text)


TYPE_SYNTAX = re.compile(r"^[ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+\w+(?=\[)|^[ \t]*type[ \t]+(\w+)(?=[ \t]*[\[=])",
                         re.MULTILINE)
"""Where PEP 695 syntax may start: a function's or class's type parameters (after the match), a `type` statement."""


def _without_type_parameters(text: str) -> str | None:
    """`_older_syntax` for PEP 695 alone, read off the text: where a match is no such syntax (inside a string), the
    result does not parse or blanks only string content. None where there is nothing to blank."""
    chars = list(text)
    for match in TYPE_SYNTAX.finditer(text):
        if match.group(1) is None:
            _blank(chars, match.end(), _closing_bracket(text, match.end()))
            continue
        name, value = match.group(1), match.end()
        while value < len(text) and text[value] in " \t":
            value += 1
        if value < len(text) and text[value] == "[":
            value = _closing_bracket(text, value)
        equals = text.find("=", value)
        start = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
        if equals < 0 or any(char in "\r\n" for char in text[start:equals]):
            return None
        chars[start:equals + 1] = list(name + " " * (equals - start - len(name)) + "=")
    return "".join(chars) if chars != list(text) else None


def _closing_bracket(text: str, start: int) -> int:
    """Just past the bracket that closes the one at `start` (the end of the text where none does)."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index + 1
    return len(text)


def _blank(chars: list[str], start: int, end: int) -> None:
    """Spaces over `chars[start:end]`, each line break kept and joined to the next by a backslash."""
    for index in range(start, end):  # over several lines: each joined to the next by a backslash
        breaks = index + 1 < len(chars) and chars[index + 1] in "\r\n" and index + 1 < end
        chars[index] = chars[index] if chars[index] in "\r\n" else "\\" if breaks else " "


def _older_syntax(text: str) -> str | None:
    """The text with its type parameters blanked, `type X = ...` made `X = ...` and each f-string only Python 3.12
    reads (PEP 701: `f"{"\\n".join(xs)}"`) made a blank string of the same extent, where libcst reads it; "" for
    valid text with nothing to blank; None for text that is not Python."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(text)
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    starts = [0] + [match.end() for match in LINE_BREAK.finditer(text)]
    offset = lambda position: starts[position.line - 1] + position.column  # noqa: E731
    chars = list(text)
    blanked: list[tuple[int, int]] = []
    for node, place in positions.items():
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node.type_parameters is not None:
            region = positions[node.type_parameters]
            _blank(chars, offset(region.start), offset(region.end))
        elif isinstance(node, cst.FormattedString):
            start, end = offset(place.start), offset(place.end)
            if not any(outer <= start < outer_end for outer, outer_end in blanked) and not _reads(text[start:end]):
                blanked.append((start, end))
                chars[start:end] = _blank_string(text[start:end])
        elif isinstance(node, cst.TypeAlias):
            start, value = offset(place.start), offset(positions[node.value].start)
            name = node.name.value
            if any(char in "\r\n" for char in chars[start:value]):
                return ""
            chars[start:value] = list(name + " " * (value - start - len(name) - 1) + "=")
    rewritten = "".join(chars)
    return rewritten if rewritten != text else ""


def _reads(expression: str) -> bool:
    """Whether this Python parses the expression (an f-string of the newer grammar does not)."""
    try:
        ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _blank_string(literal: str) -> list[str]:
    """A plain string of the same extent, its line breaks kept: `"   "`, or triple-quoted across lines."""
    quote = '"""' if any(char in "\r\n" for char in literal) else '"'
    inner = [char if char in "\r\n" else " " for char in literal[len(quote):len(literal) - len(quote)]]
    return [*quote, *inner, *quote]


class SourceLines:
    """The text's lines, to give `ast` positions as findings show them: `col_offset` counts UTF-8 bytes, a finding's
    column counts characters from 1."""

    def __init__(self, text: str):
        self.lines = LINE_BREAK.split(text)

    def column(self, line: int, offset: int) -> int:
        source = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if source.isascii():
            return min(offset, len(source)) + 1
        return len(source.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + 1

    def span(self, node: ast.expr) -> Span:
        return (node.lineno, self.column(node.lineno, node.col_offset),
                node.end_lineno, self.column(node.end_lineno, node.end_col_offset))

    def segment(self, node: ast.expr) -> str:
        """The node's own text as the source has it (`0x0` stays `0x0`)."""
        line, column, end_line, end_column = self.span(node)
        if line == end_line:
            return self.lines[line - 1][column - 1:end_column - 1]
        middle = self.lines[line:end_line - 1]
        return "\n".join([self.lines[line - 1][column - 1:], *middle, self.lines[end_line - 1][:end_column - 1]])


def dotted_name(node: ast.expr | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def unsubscripted(node: ast.expr) -> ast.expr:
    """A base class as the class it names: `Repository` of `Repository[User]` (a subscripted generic)."""
    return node.value if isinstance(node, ast.Subscript) else node


def unstarred(node: ast.expr) -> ast.expr:
    """`rest` of `*rest` (in a target, a display or a call's arguments)."""
    return node.value if isinstance(node, ast.Starred) else node


def string_value(node: ast.expr | None) -> str | None:
    """The value of a plain string literal (implicitly concatenated or not), else None."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def subscript_elements(node: ast.Subscript) -> list[ast.expr]:
    """The type arguments of `X[a, b]` (a slice, `X[1:2]`, is none)."""
    elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return [element for element in elements if not isinstance(element, ast.Slice)]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    for given in call.keywords:
        if given.arg == name:
            return given.value
    return None


def positional(call: ast.Call, index: int) -> ast.expr | None:
    plain = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
    return plain[index] if index < len(plain) else None


def argument_values(call: ast.Call) -> list[ast.expr]:
    """Every argument's expression, positional ones first (`*args` as `args`, `**kwargs` as `kwargs`)."""
    return [unstarred(arg) for arg in call.args] + [given.value for given in call.keywords]


def parameters(arguments: ast.arguments) -> list[tuple[ast.arg, ast.expr | None]]:
    """The named parameters in the order a call binds them (positional-only, then the others, then keyword-only),
    each with its default."""
    positional_params = [*arguments.posonlyargs, *arguments.args]
    defaults = [None] * (len(positional_params) - len(arguments.defaults)) + list(arguments.defaults)
    return [*zip(positional_params, defaults), *zip(arguments.kwonlyargs, arguments.kw_defaults)]


_NOT_CHILDREN = frozenset({"ctx", "op", "ops", "type_comment", "type_ignores"})
"""Fields that hold only an expression's context or an operator: never a name, call or statement worth walking."""
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(node: ast.AST) -> tuple[str, ...]:
    """The fields of a node that may hold child nodes, in the order `ast` declares them: the source's, but for a
    dict display's keys, which all come before its values."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = _CHILD_FIELDS[type(node)] = tuple(name for name in node._fields if name not in _NOT_CHILDREN)
    return names


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """The syntactic children of a node, without contexts and operators (cheaper than `ast.iter_child_nodes`)."""
    children: list[ast.AST] = []
    for name in child_fields(node):
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            children.append(value)
        elif isinstance(value, list):
            children.extend(item for item in value if isinstance(item, ast.AST))
    return children


def all_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The node and every node under it, breadth first as `ast.walk` gives them, without contexts and operators."""
    pending = deque([node])
    while pending:
        current = pending.popleft()
        yield current
        pending.extend(child_nodes(current))


def own_nodes(body: list[ast.stmt] | ast.expr) -> Iterator[ast.AST]:
    """Every node of a function's body in source order (a statement before the nodes inside it), nested functions,
    lambdas and classes left out: what runs when the body runs."""
    stack: list[ast.AST] = list(reversed(body)) if isinstance(body, list) else [body]
    while stack:
        node = stack.pop()
        if isinstance(node, NESTED_SCOPES):
            continue
        yield node
        stack.extend(reversed(child_nodes(node)))


_BLOCK_ITEMS = (ast.stmt, ast.excepthandler, ast.match_case)
"""What a compound statement's blocks hold: statements, and the `except` and `case` clauses that hold more."""


def own_statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The statements of a function's body in the order of `own_nodes`, without walking into expressions (where no
    statement can be): a fraction of the nodes, for a search of assignments or `global`."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, NESTED_SCOPES):
            continue
        yield node
        blocks: list[ast.AST] = []
        for name in child_fields(node):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], _BLOCK_ITEMS):
                blocks.extend(value)
        stack.extend(reversed(blocks))


def declared_globals(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The module names a function rebinds through `global` (`global model` in a start-up hook that loads it)."""
    return {name for current in own_statements(node.body) if isinstance(current, ast.Global)
            for name in current.names}


def is_generator(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function's own body yields (nested functions and classes aside): calling it runs none of it."""
    return any(isinstance(current, (ast.Yield, ast.YieldFrom)) for current in own_nodes(node.body))


def definition_lines(tree: ast.Module) -> dict[str, int]:
    """Line of each module-level function, class and method, by its name in the module (`f`, `Class`,
    `Class.method`)."""
    lines: dict[str, int] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, FUNCTIONS):
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

"""Small readers of libcst nodes shared by the analyzer and the FastAPI context."""

from __future__ import annotations

import dataclasses

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def unsubscripted(node: cst.BaseExpression) -> cst.BaseExpression:
    """A base class as the class it names: `Repository` of `Repository[User]` (a subscripted generic)."""
    return node.value if isinstance(node, cst.Subscript) else node


def string_value(node: cst.BaseExpression | None) -> str | None:
    """The value of a plain string literal, else None."""
    if isinstance(node, cst.SimpleString):
        try:
            value = node.evaluated_value
        except Exception:  # a malformed literal: not a plain string
            return None
        return value if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = string_value(node.left), string_value(node.right)
        return left + right if left is not None and right is not None else None
    return None


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def positional(call: cst.Call, index: int) -> cst.BaseExpression | None:
    plain = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    return plain[index] if index < len(plain) else None


# Fields that hold only punctuation, whitespace or flags: never a name, call or statement worth walking.
_PUNCTUATION_FIELDS = frozenset({
    "lpar", "rpar", "comma", "semicolon", "colon", "dot", "equal", "operator", "newline", "leading_lines",
    "lines_after_decorators", "header", "footer", "indent", "default_indent", "default_newline", "empty_lines",
    "encoding", "first_colon", "second_colon", "lbrace", "rbrace", "lbracket", "rbracket", "trailing_comma",
    "trailing_whitespace", "asynchronous", "star", "posonly_ind", "relative", "comment", "has_trailing_newline",
    "conversion", "whitespace",
})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


SOURCE_ORDER = {
    cst.FunctionDef: ("decorators", "params", "returns", "body"),
    cst.ClassDef: ("decorators", "bases", "keywords", "body"),
    cst.IfExp: ("body", "test", "orelse"),
    cst.ExceptHandler: ("type", "name", "body"),
    cst.ExceptStarHandler: ("type", "name", "body"),
}
"""Node types whose fields are not in the order the source has them: their children in source order."""


def child_nodes(node: cst.CSTNode, in_source_order: bool = False) -> list[cst.CSTNode]:
    """The syntactic children of a node, in field order (or the source's), without whitespace and punctuation.

    libcst's own `children` and visitor rebuild every node they pass; reading the dataclass fields is several
    times faster, and the checker walks every coroutine of every file.
    """
    names = SOURCE_ORDER.get(type(node)) if in_source_order else None
    if names is None:
        names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(node)
            if f.name not in _PUNCTUATION_FIELDS and not f.name.startswith("whitespace")
        )
        _CHILD_FIELDS[type(node)] = names
    children: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            children.append(value)
        elif isinstance(value, (list, tuple)):
            children.extend(item for item in value if isinstance(item, cst.CSTNode))
    return children


def is_generator(node: cst.FunctionDef) -> bool:
    """Whether the function's own body yields (nested functions and classes aside): calling it runs none of it."""
    stack: list[cst.CSTNode] = [node.body]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Yield):
            return True
        if not isinstance(current, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            stack.extend(child_nodes(current))
    return False

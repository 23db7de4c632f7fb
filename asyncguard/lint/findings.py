"""What the checker reports: plain, typed data that every output format renders."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from asyncguard.lint.rule import rules_by_code


@dataclass(frozen=True)
class Finding:
    """One blocking call (or one file that could not be checked) at a position in a file."""

    path: str
    """As given on the command line or found under it, with `/` separators."""
    line: int
    """1-based."""
    column: int
    """1-based, as ruff and flake8 print it."""
    end_line: int
    end_column: int
    code: str
    message: str
    category: str
    context: str = ""
    """Where the call runs on the event loop: "path operation GET /users/{user_id}", "dependency get_db"."""
    call: str = ""
    """The blocking call's qualified name (`requests.get`)."""
    suggestion: str = ""
    """The async alternative."""
    chain: tuple[dict, ...] = field(default=())
    """For findings reached through helpers: the call chain, outermost first (`{"name", "path", "line"}` each,
    the last one the blocking call itself)."""
    via: str = ""
    """For findings reached through helpers: the rule of the blocking call the chain ends in (`AG102`)."""

    def to_json(self) -> dict:
        """Shallow: a chain step is a flat dict of strings and ints (`asdict` recurses, and costs a warm run a third
        of its time)."""
        data = {name: getattr(self, name) for name in FINDING_FIELDS}
        data["chain"] = [dict(step) for step in self.chain]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Finding":
        return cls(**{**data, "chain": tuple(data.get("chain", ()))})

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code)


FINDING_FIELDS = tuple(f.name for f in fields(Finding))


NOTICES = frozenset({"AG001", "AG002"})
"""Codes that say a file was not checked (or the checker failed on it), not that anything blocks."""


def not_checked(path: str, reason: str, line: int = 1, column: int = 1) -> Finding:
    """AG001: the file could not be checked (unreadable, not text, not Python), and why."""
    return _file_finding("AG001", "input", path, reason, max(line, 1), max(column, 1))


def internal_error(path: str, error: BaseException | str) -> Finding:
    """AG002: the checker itself failed on this file (`error` as raised, or already described: from a worker)."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return _file_finding("AG002", "internal", path, reason, 1, 1)


def _file_finding(code: str, category: str, path: str, reason: str, line: int, column: int) -> Finding:
    message = rules_by_code()[code].message.format(call=reason)
    return Finding(path=path, line=line, column=column, end_line=line, end_column=column, code=code,
                   message=message, category=category, call=reason)


def source_lines(path: str) -> list[str]:
    """The lines of a finding's file as shown beside it (excerpts, baselines); none when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


IMPLICIT_CALLS = {"__iter__": "iter", "__len__": "len"}
"""Methods Python calls for a `for` loop, `list(...)` or `len(...)`: shown as the builtin (`iter(peewee.ModelSelect)`)."""


def shown_call(call: str) -> str:
    """`requests.get`, `open`, `conn.execute`, `pymongo.MongoClient[...].users.find_one`, `iter(peewee.ModelSelect)`:
    a qualified name as a reader writes it."""
    owner, _, method = call.rpartition(".")
    if method in IMPLICIT_CALLS:
        return f"{IMPLICIT_CALLS[method]}({shown_call(owner)})"
    shown = call.replace("builtins.", "").replace(".__call__", "").replace(".__getitem__", "[...]")
    return shown[len("<unknown>."):] if shown.startswith("<unknown>.") else shown


def is_implicit(call: str) -> bool:
    """A call Python makes for the code (`for row in query`), not one written with parentheses."""
    return call.rpartition(".")[2] in IMPLICIT_CALLS

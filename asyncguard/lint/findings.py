"""What the checker reports: plain, typed data that every output format renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    """For findings reached through helpers: the call chain, outermost first."""

    def to_json(self) -> dict:
        data = asdict(self)
        data["chain"] = list(self.chain)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Finding":
        return cls(**{**data, "chain": tuple(data.get("chain", ()))})

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code)

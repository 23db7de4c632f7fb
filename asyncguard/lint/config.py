"""Settings: `[tool.asyncguard]` in the nearest pyproject.toml, overridden by command-line flags."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from asyncguard.lint.rule import all_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KNOWN_KEYS = {
    "select", "extend-select", "ignore", "exclude", "extend-exclude", "extra-blocking-calls", "allowed-calls",
}


class ConfigError(Exception):
    """A setting that cannot be used; reported in one line, exit status 2."""


@dataclass
class Settings:
    select: list[str] = field(default_factory=lambda: ["AG"])
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    extend_exclude: list[str] = field(default_factory=list)
    extra_blocking_calls: dict[str, dict[str, str]] = field(default_factory=dict)
    allowed_calls: list[str] = field(default_factory=list)
    project_root: Path = field(default_factory=Path.cwd)
    config_file: Path | None = None

    def enabled_codes(self) -> frozenset[str]:
        """Rule codes to report: prefixes as in ruff (`AG1` selects AG100-AG199); AG001/AG002 always report."""
        codes = {rule.code for rule in all_rules()}
        chosen = {c for c in codes if any(c.startswith(p) for p in [*self.select, *self.extend_select])}
        chosen -= {c for c in codes if any(c.startswith(p) for p in self.ignore)}
        return frozenset(chosen | {"AG001", "AG002"})

    def fingerprint(self) -> str:
        """Changes whenever a setting that affects findings changes: part of the cache key."""
        relevant = {k: v for k, v in asdict(self).items() if k not in {"project_root", "config_file"}}
        return hashlib.blake2b(json.dumps(relevant, sort_keys=True).encode(), digest_size=8).hexdigest()


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for directory in [start, *start.parents] if start.is_dir() else start.parents:
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(paths: Iterable[str], config_file: str | None = None) -> Settings:
    """Settings from `--config FILE`, or the pyproject.toml nearest to the first path."""
    if config_file is not None:
        pyproject = Path(config_file)
        if not pyproject.is_file():
            raise ConfigError(f"config file not found: {config_file}")
    else:
        first = next(iter(paths), ".")
        pyproject = find_pyproject(Path(first) if Path(first).exists() else Path.cwd())
    if pyproject is None:
        return Settings()
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {pyproject}: {error}") from None
    table = data.get("tool", {}).get("asyncguard", {})
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{pyproject}: unknown key(s) in [tool.asyncguard]: {', '.join(sorted(unknown))}")
    settings = Settings(project_root=pyproject.parent, config_file=pyproject)
    for key, value in table.items():
        attribute = key.replace("-", "_")
        expected = dict if key == "extra-blocking-calls" else list
        if not isinstance(value, expected):
            raise ConfigError(f"{pyproject}: [tool.asyncguard] {key} must be a {'table' if expected is dict else 'list'}")
        setattr(settings, attribute, value)
    for pattern, spec in settings.extra_blocking_calls.items():
        if isinstance(spec, str):
            settings.extra_blocking_calls[pattern] = {"suggestion": spec}
        elif not isinstance(spec, dict):
            raise ConfigError(f"{pyproject}: extra-blocking-calls.{pattern} must be a string or a table")
    return settings


def parse_codes(text: str | None) -> list[str]:
    """`AG101,AG2` → ["AG101", "AG2"]; rejects what is not a code prefix."""
    if not text:
        return []
    codes = [part.strip().upper() for part in text.split(",") if part.strip()]
    for code in codes:
        if code != "ALL" and not (code.startswith("AG") and code[2:].isdigit() or code == "AG"):
            raise ConfigError(f"not a rule code or prefix: {code!r}")
    return ["AG" if code == "ALL" else code for code in codes]

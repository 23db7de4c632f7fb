"""Settings: `[tool.asyncguard]` in the nearest pyproject.toml, overridden by command-line flags."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from asyncguard.lint.interface.files import DEFAULT_EXCLUDES
from asyncguard.lint.knowledge.base import glob_to_regex
from asyncguard.lint.rule import all_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CODE_KEYS = ("select", "extend-select", "ignore")
LIST_KEYS = (*CODE_KEYS, "exclude", "extend-exclude", "allowed-calls")
KNOWN_KEYS = {*LIST_KEYS, "extra-blocking-calls", "per-file-ignores", "python"}
EXTRA_CALL_KEYS = ("message", "suggestion")
"""What asyncguard.lint.knowledge.base.build_knowledge reads of an extra-blocking-calls entry."""


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
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    """Glob (of the path from the project root, or the file's name) → rule codes or prefixes not reported there."""
    allowed_calls: list[str] = field(default_factory=list)
    python: str | None = None
    """The project's interpreter (or venv), whose installed libraries are learned; "" for none at all."""
    learned: list[str] = field(default_factory=list)
    """Directories of knowledge learned from the project's environment (set by the run, not configured)."""
    learned_digest: str = ""
    """Changes with any learned file the run reads, shipped or not: part of the cache key."""
    project_root: Path = field(default_factory=Path.cwd)
    config_file: Path | None = None

    def enabled_codes(self) -> frozenset[str]:
        """Rule codes to report: prefixes as in ruff (`AG1` selects AG100-AG199); AG001/AG002 always report."""
        codes = {rule.code for rule in all_rules()}
        chosen = {c for c in codes if any(c.startswith(p) for p in [*self.select, *self.extend_select])}
        chosen -= {c for c in codes if any(c.startswith(p) for p in self.ignore)}
        return frozenset(chosen | {"AG001", "AG002"})

    def walk_excludes(self, instead: Iterable[str] = (), extra: Iterable[str] = ()) -> list[str]:
        """What a walk leaves out: `exclude` (else the defaults), or `instead` of it when given, then
        `extend-exclude` and `extra` (the command line's `--exclude` and `--extend-exclude`)."""
        return [*(list(instead) or self.exclude or DEFAULT_EXCLUDES), *self.extend_exclude, *extra]

    def ignored_in_file(self, path: Path, code: str) -> bool:
        """`per-file-ignores` says not to report `code` in the file at `path`."""
        if not self.per_file_ignores:
            return False
        try:
            relative = path.resolve().relative_to(self.project_root.resolve()).as_posix()
        except ValueError:
            relative = path.as_posix()
        return any(code.startswith(tuple(codes)) and (fnmatch.fnmatchcase(relative, glob) or
                                                      fnmatch.fnmatchcase(path.name, glob))
                   for glob, codes in self.per_file_ignores.items())

    def fingerprint(self) -> str:
        """Changes whenever a setting that affects findings changes: part of the cache key."""
        relevant = {k: v for k, v in asdict(self).items()
                    if k not in {"project_root", "config_file", "per_file_ignores"}}  # applied to what is found
        return hashlib.blake2b(json.dumps(relevant, sort_keys=True).encode(), digest_size=8).hexdigest()


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start`; one in a directory that cannot be entered is not seen."""
    start = start.resolve()
    for directory in [start, *start.parents] if os.path.isdir(start) else start.parents:
        candidate = directory / "pyproject.toml"
        if os.path.isfile(candidate):
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
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{pyproject}: tool must be a table")
    table = tool.get("asyncguard", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.asyncguard] must be a table")
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{pyproject}: unknown key(s) in [tool.asyncguard]: {', '.join(sorted(unknown))}")
    settings = Settings(project_root=pyproject.parent, config_file=pyproject)
    try:
        for key, value in table.items():
            setattr(settings, key.replace("-", "_"), validated(key, value))
    except ConfigError as error:
        raise ConfigError(f"{pyproject}: [tool.asyncguard] {error}") from None
    return settings


def validated(key: str, value: object) -> object:
    """A setting checked as ruff checks its own, so that a mistake is an error rather than a silently different
    run: the right types, codes that select a rule, patterns that compile."""
    if key == "extra-blocking-calls":
        return extra_blocking_calls(value)
    if key == "per-file-ignores":
        if not isinstance(value, dict) or not all(isinstance(codes, list) and all(isinstance(c, str) for c in codes)
                                                  for codes in value.values()):
            raise ConfigError('per-file-ignores must be a table of globs to lists of codes ({"tests/*" = ["AG1"]})')
        return {glob: [rule_selector(code, f"per-file-ignores {glob!r}") for code in codes]
                for glob, codes in value.items()}
    if key == "python":
        if not isinstance(value, str):
            raise ConfigError("python must be a string: the interpreter or venv, \"\" for none")
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{key} must be a list of strings")
    if key in CODE_KEYS:
        return [rule_selector(code, key) for code in value]
    if key == "allowed-calls":
        for pattern in value:
            check_pattern(pattern, key)
    return value


def extra_blocking_calls(value: object) -> dict[str, dict[str, str]]:
    """`pattern = "suggestion"` or `pattern = { message = ..., suggestion = ... }`, each made a table."""
    if not isinstance(value, dict):
        raise ConfigError("extra-blocking-calls must be a table")
    calls = {}
    for pattern, spec in value.items():
        check_pattern(pattern, "extra-blocking-calls")
        entry = f'extra-blocking-calls."{pattern}"'
        if isinstance(spec, str):
            spec = {"suggestion": spec}
        elif not isinstance(spec, dict):
            raise ConfigError(f"{entry} must be a string (the suggestion) or a table")
        unknown = set(spec) - set(EXTRA_CALL_KEYS)
        if unknown:
            raise ConfigError(f"{entry}: unknown key(s): {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(EXTRA_CALL_KEYS)})")
        for name, text in spec.items():
            if not isinstance(text, str):
                raise ConfigError(f"{entry}.{name} must be a string")
        calls[pattern] = spec
    return calls


def check_pattern(pattern: str, key: str) -> None:
    """A qualified-name pattern compiles as the knowledge base compiles it."""
    try:
        re.compile(glob_to_regex(pattern))
    except re.error as error:
        raise ConfigError(f"{key}: not a pattern: {pattern!r} ({error.msg})") from None


def rule_selector(code: str, where: str) -> str:
    """A rule code or prefix that selects at least one rule (`AG101`, `AG1`, `AG`; `ALL` is `AG`), written in
    upper case: as in ruff, anything else is an error, not a selection of nothing."""
    if code == "ALL":
        return "AG"
    if selects_a_rule(code):
        return code
    hint = f"; did you mean {code.upper()!r}?" if code.upper() == "ALL" or selects_a_rule(code.upper()) else ""
    raise ConfigError(f"{where}: not a rule code or prefix: {code!r}{hint}")


def selects_a_rule(code: str) -> bool:
    return re.fullmatch(r"AG\d*", code) is not None and any(rule.code.startswith(code) for rule in all_rules())


def parse_codes(text: str | None, option: str) -> list[str]:
    """`AG101,AG2` → ["AG101", "AG2"] (None: the flag was not given); a value that selects nothing is an error."""
    if text is None:
        return []
    codes = [part.strip() for part in text.split(",") if part.strip()]
    if not codes:
        raise ConfigError(f"{option}: no rule code in {text!r}")
    return [rule_selector(code, option) for code in codes]

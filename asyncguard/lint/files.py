"""Which files to check: walk the given paths, honour `.gitignore` and the configured excludes.

Symbolic links to directories are not followed (no loops); a path given explicitly is always checked, as in ruff.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", "node_modules", "build", "dist",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".asyncguard_cache", ".hydroid_cache", ".eggs", "*.egg-info",
    "site-packages",
)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    display: str
    """The path as the user sees it in findings, relative to the working directory where possible."""
    module: str
    """Dotted module name relative to the checked root (`app.routers.users`)."""


@dataclass(frozen=True)
class IgnoreRule:
    base: Path
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def gitignore_regex(pattern: str) -> str:
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out.append(pattern[i:end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return body if anchored else f"(?:.*/)?{body}"


def read_gitignore(directory: Path) -> list[IgnoreRule]:
    try:
        text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rules = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        rules.append(IgnoreRule(directory, re.compile(gitignore_regex(line)), negate, dir_only))
    return rules


def is_ignored(path: Path, is_dir: bool, rules: Iterable[IgnoreRule]) -> bool:
    ignored = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        try:
            relative = path.relative_to(rule.base).as_posix()
        except ValueError:
            continue
        if rule.regex.fullmatch(relative):
            ignored = not rule.negate
    return ignored


def matches_exclude(path: Path, root: Path, patterns: Iterable[str]) -> bool:
    """ruff-style excludes: a pattern matches the file or directory name, or its path relative to the root.

    Only entries found while walking are matched, so a directory given explicitly is always checked.
    """
    name = path.name
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        relative = path.as_posix()
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relative, pattern):
            return True
    return False


def module_name(path: Path, root: Path) -> str:
    """The dotted name Python imports the file by: its package chain (`__init__.py` files) where it has one,
    else its path relative to the checked root (namespace packages, scripts)."""
    if (path.parent / "__init__.py").exists():
        parts = [path.stem]
        directory = path.parent
        while (directory / "__init__.py").exists() and directory.parent != directory:
            parts.append(directory.name)
            directory = directory.parent
        parts.reverse()
    else:
        try:
            parts = list(path.relative_to(root).with_suffix("").parts)
        except ValueError:
            parts = [path.stem]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or path.stem


def display_path(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return path.as_posix()


def discover(paths: Iterable[str], project_root: Path, excludes: Iterable[str]) -> Iterator[SourceFile]:
    """Python files under the given paths, in a stable order, each once."""
    cwd = Path.cwd()
    excludes = tuple(excludes)
    seen: set[Path] = set()
    inherited = [rule for directory in repository_dirs(project_root.resolve()) for rule in read_gitignore(directory)]
    for given in paths:
        start = Path(given)
        absolute = Path(os.path.abspath(start))
        if absolute.is_file() or (absolute.is_symlink() and not absolute.is_dir()):
            if absolute not in seen:
                seen.add(absolute)
                root = absolute.parent
                yield SourceFile(absolute, display_path(absolute, cwd), module_name(absolute, root))
            continue
        for file in _walk(absolute, project_root, excludes, inherited):
            if file not in seen:
                seen.add(file)
                yield SourceFile(file, display_path(file, cwd), module_name(file, absolute))


def repository_dirs(project_root: Path) -> list[Path]:
    """The project root and its parents up to the repository's top, outermost first: their `.gitignore`s apply."""
    chain = [project_root]
    for parent in project_root.parents:
        if (chain[-1] / ".git").exists():
            break
        chain.append(parent)
    if not (chain[-1] / ".git").exists():
        chain = [project_root]
    return list(reversed(chain))


def _walk(root: Path, project_root: Path, excludes: tuple[str, ...], inherited: list[IgnoreRule]) -> Iterator[Path]:
    rules_by_dir: dict[str, list[IgnoreRule]] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda error: None):
        here = Path(directory)
        parent_rules = rules_by_dir.get(os.path.dirname(directory), inherited)
        rules = parent_rules + read_gitignore(here) if ".gitignore" in filenames else parent_rules
        rules_by_dir[directory] = rules
        dirnames[:] = sorted(
            d for d in dirnames
            if not matches_exclude(here / d, project_root, excludes) and not is_ignored(here / d, True, rules)
        )
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            file = here / filename
            if matches_exclude(file, project_root, excludes) or is_ignored(file, False, rules):
                continue
            yield file

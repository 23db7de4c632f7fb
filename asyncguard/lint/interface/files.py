"""Which files to check: walk the given paths, honour `.gitignore` and the configured excludes.

Symbolic links to directories are not followed (no loops); a path given explicitly is always checked, as in ruff.
Paths are handled as strings here: on a warm run, walking the tree is most of the work.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", "node_modules", "build", "dist",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".asyncguard_cache", ".hydroid_cache", ".eggs", "*.egg-info",
    "site-packages", "tests", "test", "test_*.py", "*_test.py", "conftest.py",
)
"""What a walk leaves out unless `exclude` says otherwise: tools' and environments' directories, and the tests
(an async test that blocks holds its own loop, not the service's). A path named on the command line is checked."""
TEST_FILE_NAMES = ("test_*.py", "*_test.py")
"""Names that leave a file out only if it reads as a test module (`TEST_CODE`): `routers/test_batteries.py` of a
lab service is a router."""
TEST_CODE = re.compile(rb"^(?:async\s+def|def)\s+test|^class\s+Test|^\s*(?:import|from)\s+(?:pytest|unittest)\b", re.M)
"""What pytest or unittest would collect or run: a top-level `test_` function, a `Test` class, their imports."""


class SourceFile:
    """A file to check: where it is, how to show it, and (computed on first use) its module name."""

    __slots__ = ("path", "display", "root", "problem", "_module")

    def __init__(self, path: Path, display: str, root: str, module: str | None = None, problem: str | None = None):
        self.path = path
        self.display = display
        """The path as the user sees it in findings, relative to the working directory where possible."""
        self.root = root
        """The checked directory the file was found under."""
        self.problem = problem
        """Why it cannot be checked, found while walking (a directory that cannot be read): reported as AG001."""
        self._module = module

    @property
    def module(self) -> str:
        """Dotted module name (`app.routers.users`)."""
        if self._module is None:
            self._module = module_name(str(self.path), self.root)
        return self._module

    def __getstate__(self):
        return (self.path, self.display, self.root, self.problem, self.module)

    def __setstate__(self, state):
        self.path, self.display, self.root, self.problem, self._module = state


@dataclass(frozen=True)
class IgnoreRule:
    base: str
    """The directory of the `.gitignore`, with a trailing separator."""
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


def read_gitignore(directory: str) -> list[IgnoreRule]:
    try:
        with open(os.path.join(directory, ".gitignore"), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
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
        rules.append(IgnoreRule(os.path.join(directory, ""), re.compile(gitignore_regex(line)), negate, dir_only))
    return rules


class IgnoreRules:
    """The `.gitignore` rules that apply in a directory, in order (the last that matches decides). Most paths match
    none: one regular expression of them all answers that at once, and only a path it matches is tried rule by
    rule."""

    def __init__(self, rules: list[IgnoreRule]):
        self.rules = rules
        self._any_dir = self._union(rules)
        self._any_file = self._union([rule for rule in rules if not rule.dir_only])

    @staticmethod
    def _union(rules: list[IgnoreRule]) -> Callable[[str], object]:
        if not rules:
            return lambda _: None
        return re.compile("|".join(f"(?:{re.escape(rule.base)}(?:{rule.regex.pattern}))" for rule in rules)).fullmatch

    def extended(self, directory: str) -> "IgnoreRules":
        """With the rules of the `.gitignore` in `directory` after these."""
        return IgnoreRules(self.rules + read_gitignore(directory))

    def ignores(self, path: str, is_dir: bool) -> bool:
        if not (self._any_dir if is_dir else self._any_file)(path):
            return False
        ignored = False
        for rule in self.rules:
            if (rule.dir_only and not is_dir) or not path.startswith(rule.base):
                continue
            if rule.regex.fullmatch(path[len(rule.base):]):
                ignored = not rule.negate
        return ignored


def matches_exclude(path: str, name: str, root: str, patterns: tuple[str, ...]) -> bool:
    """ruff-style excludes: a pattern matches the file or directory name, or its path relative to the root.

    Only entries found while walking are matched, so a directory given explicitly is always checked.
    """
    relative = path[len(root):] if path.startswith(root) else path
    matcher = exclude_matcher(patterns)
    return bool(matcher(name) or matcher(relative))


@lru_cache(maxsize=16)
def exclude_matcher(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """One regular expression for all the patterns (fnmatch's, case-sensitive): a walk tries it on every entry."""
    if not patterns:
        return lambda _: None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


@lru_cache(maxsize=4096)
def is_package(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "__init__.py"))


def module_name(path: str, root: str) -> str:
    """The dotted name Python imports the file by: its package chain (`__init__.py` files) where it has one,
    else its path relative to the checked root (namespace packages, scripts)."""
    directory, filename = os.path.split(path)
    parts = [filename[:-3] if filename.endswith(".py") else filename]
    if is_package(directory):
        while is_package(directory) and os.path.dirname(directory) != directory:
            directory, package = os.path.split(directory)
            parts.append(package)
        parts.reverse()
    elif path.startswith(os.path.join(root, "")):
        parts = path[len(os.path.join(root, "")):-3].split(os.sep)
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def distinct_module_names(files: list[SourceFile]) -> None:
    """Files of a monorepo's services that Python imports by the same name (`app.auth` of `apps/booking-api/` and of
    `apps/marketplace-api/`) are named by their path from the checked root instead (`apps.booking-api.app.auth`),
    and so is every other module of their top-level packages there (`apps.booking-api.app.routers.auth`): one name,
    one module, and each package's own imports and relative imports still meet (the nearest `app.auth` is its own)."""
    def top_package(source: SourceFile) -> tuple[Path, str]:
        """The directory holding the file's top-level package (or module), with that package's name."""
        parts = source.module.split(".")
        depth = len(parts) + (source.path.name == "__init__.py")
        return source.path.parents[depth - 1], parts[0]

    checked = [source for source in files if source.problem is None]
    by_name: dict[str, set[tuple[Path, str]]] = {}
    for source in checked:
        by_name.setdefault(source.module, set()).add(top_package(source))
    shared = {top for tops in by_name.values() if len({directory for directory, _ in tops}) > 1 for top in tops}
    for source in checked:
        directory, _ = found = top_package(source)
        prefix = os.path.relpath(directory, source.root)
        if found in shared and prefix != os.curdir and not prefix.startswith(os.pardir):
            source._module = ".".join([*prefix.split(os.sep), source.module])


def display_path(path: str, cwd: str) -> str:
    shown = path[len(cwd):] if path.startswith(cwd) else path
    return shown.replace(os.sep, "/")


def discover(paths: Iterable[str], project_root: Path, excludes: Iterable[str]) -> Iterator[SourceFile]:
    """Python files under the given paths, in a stable order, each once."""
    cwd = os.path.join(os.getcwd(), "")
    excludes = tuple(p.rstrip("/") for p in excludes)
    seen: set[str] = set()
    root_prefix = os.path.join(str(project_root.resolve()), "")
    inherited = IgnoreRules([rule for directory in repository_dirs(project_root.resolve())
                             for rule in read_gitignore(directory)])
    for given in paths:
        absolute = os.path.abspath(given)
        unlisted: list[OSError] = []
        if os.path.isdir(absolute):
            files = _walk(absolute, root_prefix, excludes, inherited, unlisted.append)
            root = naming_root(absolute)
        else:
            files, root = iter([absolute]), os.path.dirname(absolute)
        for file in files:
            if file not in seen:
                seen.add(file)
                yield SourceFile(Path(file), display_path(file, cwd), root)
        for error in unlisted:  # what it holds is not checked: that is a finding, not a silence
            directory = os.fspath(error.filename)
            if directory not in seen:
                seen.add(directory)
                yield SourceFile(Path(directory), display_path(directory, cwd), root,
                                 problem=f"cannot read directory: {error.strerror or error}")


def naming_root(directory: str) -> str:
    """Where the module names of files found under a checked directory start: the directory itself, or, for a
    namespace directory given by name (`check app/` of code that runs as `app.main` and imports `app.models`), its
    parent, so both `app.models` and `models` resolve (`module_keys` keeps every unambiguous suffix)."""
    name = os.path.basename(directory)
    if is_package(directory) or not name.isidentifier() or directory == os.getcwd():
        return directory
    return os.path.dirname(directory)


def path_error(path: str) -> str | None:
    """What makes a path given on the command line unusable, or None: it does not exist, or it is a directory that
    cannot be listed or a file that cannot be opened (anything else, a FIFO, is reported when checked)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return f"path does not exist: {path}"
    except OSError as error:
        return f"cannot read {path}: {error.strerror or error}"
    try:
        if os.path.isdir(path):
            os.scandir(path).close()
        elif os.path.isfile(path):
            open(path, "rb").close()
    except OSError as error:
        return f"cannot read {path}: {error.strerror or error}"
    return None


def repository_dirs(project_root: Path) -> list[str]:
    """The project root and its parents up to the repository's top, outermost first: their `.gitignore`s apply."""
    chain = [project_root]
    for parent in project_root.parents:
        if (chain[-1] / ".git").exists():
            break
        chain.append(parent)
    if not (chain[-1] / ".git").exists():
        chain = [project_root]
    return [str(directory) for directory in reversed(chain)]


def _walk(root: str, project_root: str, excludes: tuple[str, ...], inherited: IgnoreRules,
          on_unlisted: Callable[[OSError], None]) -> Iterator[str]:
    """The files to check under `root`; each directory that cannot be listed is handed to `on_unlisted`."""
    rules_by_dir: dict[str, IgnoreRules] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False, onerror=on_unlisted):
        parent_rules = rules_by_dir.get(os.path.dirname(directory), inherited)
        rules = parent_rules.extended(directory) if ".gitignore" in filenames else parent_rules
        rules_by_dir[directory] = rules
        prefix = os.path.join(directory, "")
        dirnames[:] = sorted(
            d for d in dirnames
            if not matches_exclude(prefix + d, d, project_root, excludes) and not rules.ignores(prefix + d, True)
        )
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            file = prefix + filename
            if matches_exclude(file, filename, project_root, excludes) and not _only_named_like_a_test(
                    file, filename, project_root, excludes) or rules.ignores(file, False):
                continue
            yield file


def _only_named_like_a_test(file: str, name: str, project_root: str, excludes: tuple[str, ...]) -> bool:
    """Whether an excluded file is excluded only by a test-file name (`TEST_FILE_NAMES`) and holds no test."""
    others = tuple(pattern for pattern in excludes if pattern not in TEST_FILE_NAMES)
    if len(others) == len(excludes) or matches_exclude(file, name, project_root, others):
        return False
    try:
        with open(file, "rb") as handle:
            return TEST_CODE.search(handle.read()) is None
    except OSError:
        return True  # checked, so that it is reported as not readable


def absolute_module(package: str, level: int, module: str) -> str:
    """The absolute name of `from <level dots><module> import ...` written in a module of `package` (Python's
    `__package__`: the package itself for its `__init__.py`)."""
    if not level:
        return module
    parts = package.split(".") if package else []
    parts = parts[: max(len(parts) - level + 1, 0)]
    return ".".join([*parts, module] if module else parts)

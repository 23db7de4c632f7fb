"""The project's own environment: learn, on demand, the installed libraries the checked code imports.

The shipped knowledge knows the most used public libraries at one release; a service also imports private and
internal packages, and other releases. Given the project's interpreter (`--python`, or a `.venv`/`venv` beside the
project, or `$VIRTUAL_ENV`), the libraries that the checked files import and that the shipped data does not
know at their installed release are learned from their installed sources, once: the result is cached per
interpreter and release, so later runs only read it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable

from packaging.utils import canonicalize_name

from asyncguard.lint.knowledge.learned_data import INDEX, shipped_directory
from asyncguard.lint.knowledge.pypi import METADATA, Sources

IMPORT = re.compile(r"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import|import\s+([A-Za-z_]\w*))", re.MULTILINE)
STANDARD_LIBRARY = frozenset(getattr(sys, "stdlib_module_names", ()))
SEARCHED = (".venv", "venv")
"""Where a project keeps its environment, beside its pyproject.toml."""


class UnusableInterpreter(Exception):
    """The interpreter cannot be used; the message says why, in one line."""


@dataclass(frozen=True)
class Installed:
    distribution: str
    version: str
    files: tuple[Path, ...]
    """Its `.py` files, with the directory they are installed under."""
    root: Path
    metadata_file: Path | None


def find_python(project_root: Path, explicit: str | None) -> Path | None:
    """The interpreter named, or the project's own environment's, or None."""
    if explicit is not None:
        path = Path(explicit)
        if path.is_dir():  # a venv given by its directory
            path = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UnusableInterpreter(f"--python {explicit}: not an executable Python interpreter")
        return path
    candidates = [project_root / name / "bin" / "python" for name in SEARCHED]
    if os.environ.get("VIRTUAL_ENV"):
        candidates.append(Path(os.environ["VIRTUAL_ENV"]) / "bin" / "python")
    return next((path for path in candidates if path.is_file() and os.access(path, os.X_OK)), None)


def site_directories(python: Path) -> list[Path]:
    script = "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps([p['purelib'], p['platlib']]))"
    try:
        done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=30, check=False)
        directories = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        raise UnusableInterpreter(f"--python {python}: cannot ask it where its packages are") from None
    return [Path(d) for d in dict.fromkeys(directories) if Path(d).is_dir()]


def installed_by_import_name(directories: list[Path]) -> dict[str, Installed]:
    """Top-level import name → the installed distribution that provides it."""
    found: dict[str, Installed] = {}
    for distribution in metadata.distributions(path=[str(d) for d in directories]):
        name = distribution.metadata.get("Name")
        if not name or not distribution.files:
            continue
        root = Path(str(distribution.locate_file("")))
        files = tuple(root / f for f in distribution.files
                      if str(f).endswith(".py") and ".." not in f.parts and "__pycache__" not in f.parts)
        tops = {Path(f).relative_to(root).parts[0].removesuffix(".py") for f in files}
        metadata_file = next((root / f for f in distribution.files if str(f).endswith(".dist-info/METADATA")), None)
        entry = Installed(canonicalize_name(name), distribution.version, files, root, metadata_file)
        for top in tops:
            if top.isidentifier():
                found.setdefault(top, entry)
    return found


def imported_names(paths: Iterable[Path]) -> set[str]:
    """The top-level names the files import (a text scan: no parse)."""
    names: set[str] = set()
    for path in paths:
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a FIFO named *.py would block the read forever
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in IMPORT.finditer(text):
            names.add(match.group(1) or match.group(2))
    return names - STANDARD_LIBRARY


def learned_directory(python: Path, cache: Path) -> Path:
    """Per interpreter and per version of what learns: a newer engine or curated base learns anew."""
    key = hashlib.blake2b(f"{python.absolute()}\0{learner_digest()}".encode(), digest_size=8).hexdigest()
    return cache / "environments" / key


@functools.cache
def learner_digest() -> str:
    """Of the sources that decide what is learned: the engine, the learner, its driver and the curated base."""
    package = Path(__file__).resolve().parents[1]
    sources = [*sorted((package / "engine").glob("*.py")), package / "knowledge" / "learner.py",
               package / "knowledge" / "learn.py", package / "knowledge" / "blocking_calls.toml"]
    return hashlib.blake2b(b"".join(path.read_bytes() for path in sources), digest_size=8).hexdigest()


def learn_environment(python: Path, checked: Iterable[Path], project_modules: set[str], cache: Path,
                      report=lambda message: None) -> Path:
    """The directory of what was learned of the libraries `checked` imports from `python`'s environment; only
    releases not learned before (here or in the shipped data) are learned now."""
    from asyncguard.lint.knowledge.learn import build_sources

    installed = installed_by_import_name(site_directories(python))
    out = learned_directory(python, cache)
    known = _known_releases([shipped_directory(), out])
    wanted = {}
    for name in sorted(imported_names(checked) - project_modules):
        release = installed.get(name)
        if release is not None and (release.distribution, release.version) not in known:
            wanted[release.distribution] = release
    if wanted:
        report(f"learning {len(wanted)} installed librar{'ies' if len(wanted) > 1 else 'y'} from "
               f"{python} (cached for later runs): {', '.join(sorted(wanted))}")
        build_sources([_view(release, cache) for release in wanted.values()], out, jobs=min(os.cpu_count() or 1, 4),
                      time_limit=300, with_learned=[], quiet=True)
    return out


def _known_releases(directories: list[Path]) -> set[tuple[str, str]]:
    known = set()
    for directory in directories:
        try:
            index = json.loads((directory / INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for distribution, versions in index.get("versions", {}).items():
            known.update((distribution, version) for version in versions)
    return known


def _view(release: Installed, cache: Path) -> Sources:
    """The release's own files, linked into a directory of their own: the learner reads a release, not the whole
    of site-packages."""
    root = cache / "installed" / f"{release.distribution}-{release.version}"
    if not (root / ".complete").exists():
        for path in release.files:
            target = root / path.relative_to(release.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(path)
        if release.metadata_file is not None and release.metadata_file.exists():
            (root / METADATA).write_bytes(release.metadata_file.read_bytes())
        root.mkdir(parents=True, exist_ok=True)
        (root / ".complete").touch()
    return Sources(release.distribution, release.version, root)

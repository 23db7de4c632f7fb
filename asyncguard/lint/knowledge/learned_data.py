"""The generated half of the knowledge: what `asyncguard.lint.knowledge.learn` found in libraries' sources.

Each directory of learned files has an `index.json` naming, for every top-level import name, the file learned from
the distribution that provides it. A file is read only when a checked module calls into one of its packages, so a
service importing five libraries pays for five files, not for three hundred. Directories given later win (the
project's own environment over the shipped data); the curated base wins over both (see `Knowledge`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

INDEX = "index.json"
MAX_IMPORT_DEPTH = 3
"""Import names are at most this deep (`google.cloud.storage`)."""


@dataclass(frozen=True)
class LearnedBlocking:
    category: str
    chain: tuple[str, ...]
    """The library's own steps, outermost first, the last one the call that blocks."""
    source: str
    """`elasticsearch 9.5.1`: what it was learned from."""
    asynchronous: str | None
    """The same library's async counterpart of the class, where it has one (`AsyncElasticsearch`)."""


@dataclass
class _Package:
    distribution: str
    blocking: dict[str, dict]
    aliases: dict[str, str]
    returns: dict[str, str]
    attributes: dict[str, str]
    counterparts: dict[str, str]


def knowledge_digest(directories: list[Path]) -> str:
    """A digest of the shipped learned data and of `directories`' (their indexes hold digests of their files)."""
    return LearnedData([shipped_directory(), *directories]).fingerprint


def shipped_directory() -> Path:
    return Path(str(resources.files("asyncguard.lint.knowledge").joinpath("learned")))


class LearnedData:
    def __init__(self, directories: Iterable[Path], without: frozenset[str] = frozenset()):
        """`without`: import names not to know (a library being learned again must not be told what it does)."""
        self.files: dict[str, Path] = {}
        """Import name (`elasticsearch`, `google.cloud.storage`) → the learned file that speaks for it (the last
        directory's)."""
        digests = []
        for directory in directories:
            try:
                index = json.loads((directory / INDEX).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            digests.append(index.get("digest", ""))
            for module, name in index.get("modules", {}).items():
                if module not in without:
                    self.files[module] = directory / name
        self.fingerprint = hashlib.blake2b("".join(digests).encode(), digest_size=8).hexdigest()
        self._packages: dict[Path, _Package | None] = {}
        self._blocking: dict[str, LearnedBlocking | None] = {}

    def _package(self, name: str) -> _Package | None:
        parts = name.split(".", MAX_IMPORT_DEPTH)
        path = None
        for cut in range(min(len(parts) - 1, MAX_IMPORT_DEPTH), 0, -1):
            path = self.files.get(".".join(parts[:cut]))
            if path is not None:
                break
        if path is None:
            return None
        if path not in self._packages:
            self._packages[path] = _read(path)
        return self._packages[path]

    def _defined(self, package: _Package, name: str) -> str:
        """The name where the package defines it: the longest public spelling that prefixes it rewritten."""
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            target = package.aliases.get(".".join(parts[:cut]))
            if target is not None:
                return ".".join([target, *parts[cut:]])
        return name

    def blocking(self, name: str) -> LearnedBlocking | None:
        if name in self._blocking:
            return self._blocking[name]
        package = self._package(name)
        found = None
        if package is not None:
            defined = self._defined(package, name)
            entry = package.blocking.get(defined)
            if entry is not None:
                owner, _, _ = defined.rpartition(".")
                found = LearnedBlocking(entry["category"], tuple(step[0] for step in entry["chain"]),
                                        f"{package.distribution} {entry['version']}",
                                        package.counterparts.get(owner) or package.counterparts.get(defined))
        self._blocking[name] = found
        return found

    def result_type(self, name: str) -> str | None:
        package = self._package(name)
        return package.returns.get(self._defined(package, name)) if package is not None else None

    def attribute_type(self, name: str) -> str | None:
        package = self._package(name)
        return package.attributes.get(self._defined(package, name)) if package is not None else None


def _read(path: Path) -> _Package | None:
    """A damaged or unreadable file is no knowledge, never an error of the run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Package(data["distribution"], dict(data["blocking"]), dict(data["aliases"]),
                        dict(data["returns"]), dict(data["attributes"]), dict(data["counterparts"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None

"""Which distributions FastAPI services depend on, counted in their own dependency files: the evidence for the
list of libraries the knowledge builder learns (`asyncguard/lint/knowledge/learned/distributions.json`).

Each repository counts once per distribution, whatever number of files names it. Repositories are read from git
directories (`fetch` snapshots) without a work tree.

    python -m asyncguard.lint.measure.popular GITDIR... --out distributions.json [--top 300]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEPENDENCY_FILE = re.compile(r"(^|/)(requirements[^/]*\.(txt|in)|pyproject\.toml|Pipfile|setup\.py)$")
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
NOT_DISTRIBUTIONS = frozenset({"python", "pip", "setuptools", "wheel"})


def declared(name: str, text: str) -> set[str]:
    """The distributions one dependency file names."""
    if name.endswith(".toml") or name.endswith("Pipfile"):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return set()
        entries = list(data.get("project", {}).get("dependencies", []))
        for group in data.get("project", {}).get("optional-dependencies", {}).values():
            entries += group
        poetry = data.get("tool", {}).get("poetry", {})
        entries += list(poetry.get("dependencies", {})) + list(data.get("packages", {}))
        for group in poetry.get("group", {}).values():
            entries += list(group.get("dependencies", {}))
    elif name.endswith("setup.py"):
        entries = re.findall(r"['\"]([A-Za-z0-9][A-Za-z0-9._-]*)\s*[<>=~!\[;'\"]", text)
    else:
        entries = [line for line in text.splitlines() if not line.lstrip().startswith(("#", "-"))]
    found = set()
    for entry in entries:
        match = REQUIREMENT.match(entry)
        if match:
            found.add(canonicalize_name(match.group(1)))
    return found - NOT_DISTRIBUTIONS


def repository_distributions(git_dir: Path) -> set[str]:
    listing = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD"],
                             capture_output=True, text=True, check=False).stdout.splitlines()
    found: set[str] = set()
    for path in listing:
        if DEPENDENCY_FILE.search(path) and "node_modules" not in path:
            text = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{path}"],
                                  capture_output=True, text=True, errors="replace", check=False).stdout
            found |= declared(path, text)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncguard.lint.measure.popular", description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--top", type=int, default=300)
    args = parser.parse_args(argv)
    counts: Counter[str] = Counter()
    repositories = 0
    for git_dir in args.git_dirs:
        found = repository_distributions(git_dir)
        repositories += bool(found)
        counts.update(found)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    payload = {"repositories": repositories, "distributions": [{"name": n, "repositories": c} for n, c in ranked],
               "learned": [name for name, _ in ranked[:args.top]]}
    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"{repositories} repositories, {len(ranked)} distributions; the first {args.top} are learned")
    return 0


if __name__ == "__main__":
    sys.exit(main())

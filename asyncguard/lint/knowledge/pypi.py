"""A distribution's pure-Python sources from PyPI, cached: what the knowledge builder reads.

PyPI's simple index (PEP 691, JSON) names every file of a release with its size, so the file taken is chosen before
anything is downloaded: a pure-Python wheel first, then a wheel this interpreter could install, then the sdist; a file
over `MAX_DOWNLOAD` (a CUDA build of a framework) is refused, since its Python sources say little that a curated
entry does not. Only `.py` files are unpacked. A release already in the cache is never fetched again.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

INDEX = "https://pypi.org/simple"
METADATA = ".metadata"
"""The release's own metadata, kept beside its sources."""
MAX_DOWNLOAD = 60 * 1024 * 1024
SKIPPED_DIRECTORIES = frozenset({"tests", "test", "testing", "docs", "examples", "benchmarks", "__pycache__"})
"""Parts of a distribution that users never call into."""


class FetchError(Exception):
    """The distribution cannot be brought in; the message says why, in one line."""


@dataclass(frozen=True)
class Sources:
    """One release's Python files, unpacked: `root` holds its top-level packages and modules."""

    distribution: str
    version: str
    root: Path


def fetch(requirement: str, cache: Path, timeout: float = 60) -> Sources:
    """`name` (the newest final release) or `name==version`, from the cache or PyPI. A pinned release already
    unpacked, or downloaded, needs no network."""
    name, _, pinned = requirement.partition("==")
    distribution = canonicalize_name(name.strip())
    version = pinned.strip()
    if version:
        cached = _cached(distribution, version, cache)
        if cached is not None:
            return cached
    files = _release_files(distribution, timeout)
    version = version or _newest(files)
    cached = _cached(distribution, version, cache)
    if cached is not None:
        return cached
    chosen = _best_file([f for f in files if _version_of(f["filename"], distribution) == version], requirement)
    archive = cache / "downloads" / chosen["filename"]
    if not archive.exists():
        _download(chosen["url"], archive, timeout)
    root = cache / "src" / f"{distribution}-{version}"
    unpack(archive, root)
    return Sources(distribution, version, root)


def _cached(distribution: str, version: str, cache: Path) -> Sources | None:
    root = cache / "src" / f"{distribution}-{version}"
    if not (root / ".complete").exists():
        downloaded = [path for path in sorted((cache / "downloads").glob("*"))
                      if _version_of(path.name, distribution) == version]
        if not downloaded:
            return None
        unpack(downloaded[0], root)
    return Sources(distribution, version, root)


def _release_files(distribution: str, timeout: float) -> list[dict]:
    request = urllib.request.Request(f"{INDEX}/{distribution}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            listing = json.load(response)
    except OSError as error:
        raise FetchError(f"{distribution}: cannot read the index: {error}") from None
    except ValueError:
        raise FetchError(f"{distribution}: the index did not answer with JSON") from None
    return [f for f in listing.get("files", []) if not f.get("yanked")]


def _version_of(filename: str, distribution: str) -> str | None:
    if filename.endswith(".whl"):
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except ValueError:
            return None
        return str(version) if name == distribution else None
    match = re.fullmatch(r"(.+)-([^-]+)\.(?:tar\.gz|zip)", filename)
    if match is None or canonicalize_name(match.group(1)) != distribution:
        return None
    return match.group(2)


def _newest(files: list[dict]) -> str:
    versions = set()
    for entry in files:
        written = _version_of(entry["filename"], _name_in(entry["filename"]))
        try:
            version = Version(written) if written is not None else None
        except InvalidVersion:
            continue
        if version is not None and not version.is_prerelease:
            versions.add(version)
    if not versions:
        raise FetchError("no final release on PyPI")
    return str(max(versions))


def _name_in(filename: str) -> str:
    return canonicalize_name(re.split(r"-\d", filename, maxsplit=1)[0])


def _best_file(files: list[dict], requirement: str) -> dict:
    supported = {str(tag) for tag in sys_tags()}
    pure, compatible, sdists = [], [], []
    for entry in files:
        filename = entry["filename"]
        if filename.endswith(".whl"):
            tags = {str(tag) for tag in parse_wheel_filename(filename)[3]}
            if any(tag.endswith("-none-any") and tag.startswith("py3") for tag in tags):
                pure.append(entry)
            elif tags & supported:
                compatible.append(entry)
        elif filename.endswith((".tar.gz", ".zip")):
            sdists.append(entry)
    for candidates in (pure, compatible, sdists):
        if candidates:
            chosen = candidates[0]
            if chosen.get("size", 0) > MAX_DOWNLOAD:
                raise FetchError(f"{requirement}: {chosen['filename']} is {chosen['size'] // 2**20} MB, "
                                 f"over the {MAX_DOWNLOAD // 2**20} MB limit")
            return chosen
    raise FetchError(f"{requirement}: no wheel or sdist this interpreter can read")


def _download(url: str, target: Path, timeout: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{target.name}: download failed: {error}") from None
    partial.replace(target)


def unpack(archive: Path, root: Path) -> None:
    """The `.py` files of a wheel or sdist under `root` (an sdist's top directory and `src/` layout removed)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        members = _python_members(archive)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        raise FetchError(f"{archive.name}: cannot unpack: {error}") from None
    for name, data in members:
        if not name.endswith(".py"):
            if not (root / METADATA).exists():
                (root / METADATA).write_bytes(data)
            continue
        path = PurePosixPath(name)
        if archive.suffix != ".whl":
            path = PurePosixPath(*path.parts[1:])  # the sdist's `name-version/`
            if path.parts[:1] == ("src",):
                path = PurePosixPath(*path.parts[1:])
        if not path.parts or ".." in path.parts or SKIPPED_DIRECTORIES & set(path.parts[:-1]) \
                or path.parts[0].endswith((".data", ".dist-info", ".egg-info")) or path.name == "setup.py":
            continue
        target = root.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (root / ".complete").touch()


def _python_members(archive: Path) -> list[tuple[str, bytes]]:
    """The `.py` files, and the metadata (`METADATA` of a wheel, `PKG-INFO` of an sdist) that names what the
    release requires."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as bundle:
            return [(info.filename, bundle.read(info)) for info in bundle.infolist() if _wanted(info.filename)]
    with tarfile.open(archive) as bundle:
        return [(member.name, bundle.extractfile(member).read()) for member in bundle.getmembers()
                if member.isfile() and _wanted(member.name)]


def _wanted(name: str) -> bool:
    return name.endswith(".py") or name.endswith((".dist-info/METADATA", "/PKG-INFO")) and name.count("/") <= 1


def requirements(root: Path) -> list[str]:
    """The distributions an unpacked release requires (extras and markers aside), as canonical names."""
    try:
        text = (root / METADATA).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line[len("Requires-Dist:"):])
            if match:
                found.append(canonicalize_name(match.group(1)))
    return sorted(set(found))

"""The sample apps' manifest (`sample_apps/manifest.toml`) as typed data, and the README section made from it.

`python -m asyncguard.bench.manifest sample_apps/manifest.toml` rewrites the flaw list in sample_apps/README.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from asyncguard.generated import replace_section

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTION_START = "<!-- flaws:start (generated from manifest.toml by `python -m asyncguard.bench.manifest`) -->"
SECTION_END = "<!-- flaws:end -->"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """With its example parameters filled in (`/flawed/price/sku-042`, `/flawed/stream?n=20`)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request (`Authorization`, and `Content-Type` for a body)."""
    body: str | None = None
    """The request body (a scenario's `json`, serialised, or its `body`)."""


@dataclass(frozen=True)
class Expectation:
    """How a response is validated before it is timed: a flawed app must fail for the right reason."""

    status: int | None = None
    """None: any 2xx, as Locust and k6 count a success."""
    keys: tuple[str, ...] = ()
    contains: str | None = None

    @property
    def described(self) -> str:
        return "2xx" if self.status is None else str(self.status)


def answered_as_expected(status: int, expected: int | None) -> bool:
    """The expected status, or any 2xx where none was given."""
    return 200 <= status < 300 if expected is None else status == expected


@dataclass(frozen=True)
class LintFinding:
    code: str
    context: str


@dataclass(frozen=True)
class Flaw:
    id: str
    title: str
    why: str
    fix: str
    flawed: Endpoint
    fixed: tuple[Endpoint, ...]
    expect: Expectation
    findings: tuple[LintFinding, ...] = ()
    profile_frames: tuple[str, ...] = ()
    """The blocking frames a profile of the flawed endpoint shows: `function` or `file-path-part:function`."""
    note: str = ""


@dataclass(frozen=True)
class Manifest:
    app: str
    upstream: str
    flaws: tuple[Flaw, ...] = field(default_factory=tuple)
    path: Path | None = None
    bystander: Endpoint | None = None
    """The cheap request timed alongside every load: what any other client of the app waits meanwhile."""


def load_manifest(path: Path) -> Manifest:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    flaws = tuple(
        Flaw(
            id=entry["id"], title=entry["title"], why=entry["why"], fix=entry["fix"],
            flawed=Endpoint(**entry["flawed"]),
            fixed=tuple(Endpoint(**e) for e in entry["fixed"]),
            expect=Expectation(status=entry["expect"].get("status", 200),
                               keys=tuple(entry["expect"].get("keys", ())),
                               contains=entry["expect"].get("contains")),
            findings=tuple(LintFinding(**f) for f in entry.get("findings", ())),
            profile_frames=tuple(entry.get("profile_frames", ())),
            note=entry.get("note", ""),
        )
        for entry in data["flaw"]
    )
    bystander = Endpoint(**data["bystander"]) if "bystander" in data else None
    return Manifest(app=data["app"], upstream=data["upstream"], flaws=flaws, path=path, bystander=bystander)


def readme_section(manifest: Manifest) -> str:
    lines = [SECTION_START, ""]
    for flaw in manifest.flaws:
        fixed = ", ".join(f"`{e.method} {e.path}`" for e in flaw.fixed)
        codes = ", ".join(f"{f.code} ({f.context})" for f in flaw.findings) or "none"
        lines += [
            f"### {flaw.title}",
            "",
            f"- **Flawed:** `{flaw.flawed.method} {flaw.flawed.path}` · **fixed:** {fixed}",
            f"- **Why it hurts:** {flaw.why}",
            f"- **Fix:** {flaw.fix}",
            f"- **asyncguard check reports:** {codes}",
        ]
        if flaw.note:
            lines.append(f"- **Note:** {flaw.note}")
        lines.append("")
    lines.append(SECTION_END)
    return "\n".join(lines)


def update_readme(readme: Path, manifest: Manifest) -> bool:
    return replace_section(readme, SECTION_START, SECTION_END, readme_section(manifest))


if __name__ == "__main__":
    manifest_path = Path(sys.argv[1] if len(sys.argv) > 1 else "sample_apps/manifest.toml")
    readme_path = manifest_path.parent / "README.md"
    changed = update_readme(readme_path, load_manifest(manifest_path))
    print(f"{readme_path}: {'updated' if changed else 'up to date'}")

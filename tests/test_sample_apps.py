"""The sample shop: asyncguard reports exactly its flawed lines, and both sides honour one contract."""

from __future__ import annotations

import json
import urllib.request

import pytest

from asyncguard.bench.manifest import load_manifest, readme_section
from asyncguard.bench.server import Server
from asyncguard.lint.interface.config import Settings
from asyncguard.lint.interface.files import discover
from asyncguard.lint.interface.runner import run
from conftest import ROOT
from test_ground_truth import check_tree, expectations

SAMPLE_APPS = ROOT / "sample_apps"
MANIFEST = load_manifest(SAMPLE_APPS / "manifest.toml")


def test_asyncguard_reports_exactly_the_marked_lines():
    reported, expected = check_tree(SAMPLE_APPS), expectations(SAMPLE_APPS)
    assert expected, "the flawed endpoints carry inline expectations"
    assert sorted(reported - expected) == [], "reported in fixed or correct code"
    assert sorted(expected - reported) == [], "flawed line not reported"


def test_findings_match_the_manifest():
    result = run(discover([str(SAMPLE_APPS)], SAMPLE_APPS, []), Settings(project_root=SAMPLE_APPS), use_cache=False)
    reported = {(f.code, f.context) for f in result.findings}
    declared = {(f.code, f.context) for flaw in MANIFEST.flaws for f in flaw.findings}
    assert reported == declared
    assert not any("/fixed" in f.context for f in result.findings)


def test_readme_lists_every_flaw_from_the_manifest():
    readme = (SAMPLE_APPS / "README.md").read_text(encoding="utf-8")
    assert readme_section(MANIFEST) in readme, "run `python -m asyncguard.bench.manifest`"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The shop app in-process (TestClient runs its lifespan) against a real upstream on 127.0.0.1."""
    from fastapi.testclient import TestClient

    data = tmp_path_factory.mktemp("shop")
    with Server(MANIFEST.upstream, app_dir=SAMPLE_APPS, health_path="/health") as upstream:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(SAMPLE_APPS))
            patch.setenv("SHOP_UPSTREAM_URL", upstream.url)
            patch.setenv("SHOP_DATA_DIR", str(data))
            from shop.main import app

            with TestClient(app) as client:
                yield client


def shape(response) -> object:
    """Status and body shape (keys and value types; for event streams, the events), not the values."""
    if response.headers["content-type"].startswith("text/event-stream"):
        return response.status_code, [line.split(b"n")[0] for line in response.content.split(b"\n\n") if line]
    return response.status_code, {key: type(value).__name__ for key, value in response.json().items()}


@pytest.mark.parametrize("flaw", MANIFEST.flaws, ids=[f.id for f in MANIFEST.flaws])
def test_flawed_and_fixed_answer_alike(shop, flaw):
    flawed = shop.request(flaw.flawed.method, flaw.flawed.path)
    assert flawed.status_code == flaw.expect.status, flawed.text
    if flaw.expect.keys:
        assert set(flaw.expect.keys) <= set(flawed.json())
    if flaw.expect.contains:
        assert flaw.expect.contains in flawed.text
    for fixed in flaw.fixed:
        assert shape(shop.request(fixed.method, fixed.path)) == shape(flawed), fixed.path


def test_both_variants_compute_the_same_values(shop):
    assert shop.get("/flawed/sales-report").json() == shop.get("/fixed/sales-report").json()
    assert shop.post("/flawed/password-hash").json() == shop.post("/fixed/password-hash").json()
    assert shop.get("/flawed/price/sku-001").json() == shop.get("/fixed/price/sku-001").json()


def test_shop_starts_under_uvicorn_and_shuts_down_cleanly(tmp_path):
    with Server(MANIFEST.upstream, app_dir=SAMPLE_APPS) as upstream:
        server = Server(MANIFEST.app, app_dir=SAMPLE_APPS,
                        env={"SHOP_UPSTREAM_URL": upstream.url, "SHOP_DATA_DIR": str(tmp_path)})
        with server:
            with urllib.request.urlopen(server.url + "/fixed/price/sku-007", timeout=5) as response:
                assert json.load(response)["sku"] == "sku-007"
            pid = server.process.pid
        assert server.process.returncode == 0
        assert "Application shutdown complete" in server.stderr_tail()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)

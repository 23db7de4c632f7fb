"""The knowledge builder: what it learns from a library's sources, and what the checker then finds with it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from asyncguard.lint.engine.checker import check_source
from asyncguard.lint.knowledge.base import build_knowledge
from asyncguard.lint.knowledge.learn import build, main
from asyncguard.lint.knowledge.learner import Learner
from asyncguard.lint.knowledge.pypi import Sources

SDK = {
    "searchsdk/__init__.py": "from ._client import AsyncClient, Client, connect\n",
    "searchsdk/_client.py": '''\
import os
import sqlite3
import urllib.request

from ._query import Query


def connect(path):
    return sqlite3.connect(path)


class Base:
    def _send(self, url):
        return urllib.request.urlopen(url).read()

    def ping(self):
        return self._send(self.url + "/ping")


class Client(Base):
    def __init__(self, url, timeout=10):
        self.url = url
        self.timeout = timeout
        self.query = Query(self)

    def search(self, text):
        return self._send(self.url + "/search?q=" + text)

    def describe(self):
        return {"url": self.url}

    def has_proxy(self):
        return os.path.exists("/etc/searchsdk/proxy")


class AsyncClient:
    async def search(self, text):
        return text
''',
    "searchsdk/_query.py": '''\
import time
import urllib.request


class Request:
    def __init__(self, url):
        self.url = url

    def do(self):
        return urllib.request.urlopen(self.url).read()


class Query:
    def __init__(self, client):
        self.client = client

    def get(self, name) -> Request:
        return Request(self.client.url + "/" + name)

    def wait(self):
        time.sleep(1)
''',
}

SERVICE = '''\
from fastapi import FastAPI
from searchsdk import Client, connect

app = FastAPI()
client = Client("http://search")


@app.get("/items")
async def items(q: str):
    found = client.search(q)
    client.describe()
    rows = connect("app.db")
    return client.query.get("Item").do(), found, rows
'''


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def wheel(directory: Path, distribution: str, version: str, files: dict[str, str], requires: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{distribution}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as bundle:
        for name, text in files.items():
            bundle.writestr(name, text)
        bundle.writestr(f"{distribution}-{version}.dist-info/METADATA",
                        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n{requires}")
    return path


@pytest.fixture
def learned(tmp_path):
    root = write_tree(tmp_path / "src", SDK)
    return Learner(Sources("searchsdk", "1.0", root), build_knowledge()).learn()


def test_public_calls_that_reach_io_are_learned_with_their_chain(learned):
    search = learned.blocking["searchsdk._client.Client.search"]
    assert search.category == "http"
    assert [step[0] for step in search.chain] == [
        "searchsdk._client.Client.search", "searchsdk._client.Base._send", "urllib.request.urlopen"]
    assert search.chain[0][1:] == ["searchsdk/_client.py", 27]  # where `search` calls `_send`
    assert learned.blocking["searchsdk._client.connect"].category == "database"
    assert "searchsdk._client.Client.ping" in learned.blocking  # inherited from a package base
    assert learned.blocking["searchsdk._query.Request.do"].category == "http"


def test_constructors_that_only_build_coroutines_and_pure_methods_are_not_learned(learned):
    for name in ("searchsdk._client.Client", "searchsdk._client.Client.describe", "searchsdk._client.AsyncClient.search",
                 "searchsdk._query.Query.get", "searchsdk._client.Client.has_proxy"):  # a cheap stat is no I/O
        assert name not in learned.blocking
    assert learned.coroutines == 1


def test_public_spellings_result_types_and_attributes_are_learned(learned):
    assert learned.aliases["searchsdk.Client"] == "searchsdk._client.Client"
    assert learned.returns["searchsdk._query.Query.get"] == "searchsdk._query.Request"
    assert learned.attributes["searchsdk._client.Client.query"] == "searchsdk._query.Query"


def test_a_library_s_sleep_is_learned_where_nothing_else_blocks(learned):
    assert learned.blocking["searchsdk._query.Query.wait"].category == "sleep"


def test_the_checker_reports_learned_calls_through_public_names_and_chained_results(tmp_path):
    cache = tmp_path / "cache"
    wheel(cache / "downloads", "searchsdk", "1.0", SDK)
    build(["searchsdk==1.0"], tmp_path / "learned", cache, jobs=1, time_limit=120, with_learned=[], quiet=True)
    knowledge = build_knowledge(learned=[tmp_path / "learned"])
    findings = check_source(SERVICE, "app.py", "app", knowledge)
    assert [(f.line, f.code, f.call) for f in findings] == [
        (10, "AG102", "searchsdk.Client.search"),
        (12, "AG106", "searchsdk.connect"),
        (13, "AG102", "searchsdk._query.Request.do"),
    ]
    assert "(learned from searchsdk 1.0: Client.search → Base._send → urllib.request.urlopen)" in findings[0].message
    assert findings[0].suggestion == "`AsyncClient` of the same library, or `await asyncio.to_thread(...)`"


def test_without_learned_data_the_calls_are_unknown():
    assert check_source(SERVICE, "app.py", "app", build_knowledge()) == []


def test_the_build_is_reproducible_and_learns_a_release_after_what_it_requires(tmp_path):
    cache = tmp_path / "cache"
    wheel(cache / "downloads", "searchsdk", "1.0", SDK)
    wrapper = {"searchwrap/__init__.py": "import searchsdk\n\n\ndef find(text):\n"
                                         "    return searchsdk.Client('http://s').search(text)\n"}
    wheel(cache / "downloads", "searchwrap", "2.0", wrapper, requires="Requires-Dist: searchsdk>=1\n")
    outputs = []
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        build(["searchwrap==2.0", "searchsdk==1.0"], out, cache, jobs=2, time_limit=120, with_learned=[],
              quiet=True)
        outputs.append({path.name: path.read_bytes() for path in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    wrap = json.loads(outputs[0]["searchwrap.json"])
    assert [step[0] for step in wrap["blocking"]["searchwrap.find"]["chain"]] == [
        "searchwrap.find", "searchsdk.Client.search"]
    assert json.loads(outputs[0]["index.json"])["modules"] == {"searchsdk": "searchsdk.json",
                                                               "searchwrap": "searchwrap.json"}


def test_a_release_that_cannot_be_had_is_skipped_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("asyncguard.lint.knowledge.pypi.INDEX", "http://127.0.0.1:9/simple")
    status = main(["nosuchdist==1.0", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert status == 1
    err = capsys.readouterr().err
    assert "skipped nosuchdist==1.0: nosuchdist: cannot read the index" in err
    assert "Traceback" not in err


def test_shipped_files_are_what_the_builder_makes_of_their_release(tmp_path):
    """The shipped file of a small pure-Python release, learned again from its wheel kept in the tests."""
    shipped = Path(__file__).parents[1] / "asyncguard/lint/knowledge/learned"
    kept = sorted((Path(__file__).parent / "fixtures/learn").glob("*.whl"))
    assert kept, "a wheel to learn again is kept in tests/fixtures/learn"
    for archive in kept:
        cache = tmp_path / archive.stem
        (cache / "downloads").mkdir(parents=True)
        (cache / "downloads" / archive.name).write_bytes(archive.read_bytes())
        distribution, version = archive.name.split("-")[:2]
        distribution = distribution.replace("_", "-")
        build([f"{distribution}=={version}"], tmp_path / "out", cache, jobs=1, time_limit=300,
              with_learned=[], quiet=True)
        assert (tmp_path / "out" / f"{distribution}.json").read_text() == \
            (shipped / f"{distribution}.json").read_text()


def test_a_project_package_named_like_a_library_is_the_project_s(tmp_path):
    """A service's own `searchsdk/` package is not the learned library of that name."""
    from asyncguard.lint.interface.runner import project_packages
    from asyncguard.lint.knowledge.learned_data import LearnedData

    cache = tmp_path / "cache"
    wheel(cache / "downloads", "searchsdk", "1.0", SDK)
    build(["searchsdk==1.0"], tmp_path / "learned", cache, jobs=1, time_limit=120, with_learned=[], quiet=True)
    modules = {"searchsdk.client": tmp_path / "searchsdk/client.py", "client": tmp_path / "searchsdk/client.py",
               "app.main": tmp_path / "app/main.py", "main": tmp_path / "app/main.py"}
    assert project_packages(modules) == {"searchsdk", "app"}
    assert LearnedData([tmp_path / "learned"]).blocking("searchsdk.connect") is not None
    assert LearnedData([tmp_path / "learned"], without=frozenset({"searchsdk"})).blocking("searchsdk.connect") is None

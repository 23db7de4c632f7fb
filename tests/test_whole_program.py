"""The whole-program pass through the runner: the chain as evidence, rule selection, and a cache that notices
when a helper changes."""

from __future__ import annotations

import os
import time

from asyncguard.lint.interface.config import Settings
from asyncguard.lint.interface.files import discover
from asyncguard.lint.interface.runner import run

HANDLER = """\
from app.services import billing


async def pay(order):
    return billing.charge(order)
"""
BILLING_CLEAN = """\
from app.clients import gateway


def charge(order):
    return gateway.post({"order": order})
"""
GATEWAY = """\
def post(payload):
    return payload
"""
GATEWAY_BLOCKING = """\
import requests


def post(payload):
    return requests.post("https://gateway.example", json=payload, timeout=5)
"""


def project(tmp_path, gateway: str = GATEWAY):
    for name, text in {"app/__init__.py": "", "app/routes.py": HANDLER, "app/services/__init__.py": "",
                       "app/services/billing.py": BILLING_CLEAN, "app/clients/__init__.py": "",
                       "app/clients/gateway.py": gateway}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def check(root, **settings):
    return run(list(discover([str(root / "app")], root, [])), Settings(project_root=root, **settings)).findings


def test_a_helper_that_starts_blocking_is_seen_through_the_cache(tmp_path):
    root = project(tmp_path)
    assert check(root) == []
    gateway = root / "app" / "clients" / "gateway.py"
    gateway.write_text(GATEWAY_BLOCKING)
    os.utime(gateway, (time.time() + 5, time.time() + 5))
    (finding,) = check(root)
    assert finding.code == "AG800" and finding.via == "AG102" and finding.path.endswith("app/routes.py")
    assert [step["name"] for step in finding.chain] == ["app.services.billing.charge", "app.clients.gateway.post",
                                                        "requests.post"]
    assert finding.chain[-1]["line"] == 5 and finding.chain[-1]["path"].endswith("app/clients/gateway.py")
    assert "charge → post → requests.post" in finding.message
    assert check(root) == [finding]  # warm: the same finding from the cache
    gateway.write_text(GATEWAY)
    os.utime(gateway, (time.time() + 10, time.time() + 10))
    assert check(root) == []


def test_chains_follow_the_selection_of_the_rule_they_end_in(tmp_path):
    root = project(tmp_path, GATEWAY_BLOCKING)
    assert [f.code for f in check(root)] == ["AG800"]
    assert check(root, ignore=["AG102"]) == []
    assert check(root, ignore=["AG800"]) == []
    assert check(root, allowed_calls=["app.services.billing.charge"]) == []


def test_a_call_on_the_loop_suppressed_with_noqa_is_not_reported(tmp_path):
    root = project(tmp_path, GATEWAY_BLOCKING)
    (root / "app" / "routes.py").write_text(HANDLER.replace("billing.charge(order)",
                                                            "billing.charge(order)  # noqa: AG800"))
    assert check(root) == []


def write_tree(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_names_a_package_re_exports_resolve_to_where_they_are_defined(tmp_path):
    """`from .mailer import send` in `services/__init__.py` is `app.services.mailer.send` (relative to the package
    itself, not to its parent), and a star import brings what the module binds."""
    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/services/__init__.py": "from .mailer import send\nfrom .media import *\n",
        "app/services/mailer.py": "import smtplib\n\n\ndef send(to):\n    smtplib.SMTP('localhost').sendmail('a', [to], 'hi')\n",
        "app/services/media.py": "import subprocess\n\n\ndef convert(path):\n    subprocess.run(['ffmpeg', '-i', path])\n",
        "app/routes.py": ("from app.services import convert, send\n\n\n"
                          "async def welcome(to):\n    send(to)\n\n\nasync def upload(path):\n    convert(path)\n"),
    })
    found = {(f.line, f.chain[-1]["name"]) for f in check(root)}
    assert found == {(5, "smtplib.SMTP"), (9, "subprocess.run")}


def test_a_client_a_method_imports_for_itself_types_the_attribute(tmp_path):
    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/storage.py": ("class Storage:\n    def __init__(self):\n        import boto3\n"
                           "        self.s3 = boto3.client('s3')\n\n"
                           "    def upload(self, body, key):\n        self.s3.put_object(Bucket='b', Key=key, Body=body)\n"),
        "app/routes.py": "from app.storage import Storage\n\n\nasync def upload(body):\n    Storage().upload(body, 'k')\n",
    })
    chains = sorted([step["name"] for step in finding.chain] for finding in check(root))
    assert chains == [["app.storage.Storage.__init__", "boto3.client"],  # building the client reads its config
                      ["app.storage.Storage.upload", "boto3.Client.put_object"]]


def test_a_method_inherited_from_a_blocking_third_party_class(tmp_path):
    """`class ApiSession(requests.Session)`: its `get` is requests' own, unless the class overrides it."""
    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/clients.py": ("import requests\n\n\nclass ApiSession(requests.Session):\n"
                           "    def fetch(self, path):\n        return self.get('https://api.example' + path)\n\n\n"
                           "class CachedSession(requests.Session):\n    def get(self, url, **kwargs):\n"
                           "        return {'cached': url}\n"),
        "app/routes.py": ("from app.clients import ApiSession, CachedSession\n\n\n"
                          "async def fetch():\n    return ApiSession().fetch('/x')\n\n\n"
                          "async def cached():\n    return CachedSession().get('/x')\n"),
    })
    (finding,) = check(root)
    assert finding.line == 5 and finding.via == "AG102"
    assert [step["name"] for step in finding.chain] == ["app.clients.ApiSession.fetch", "app.clients.ApiSession.get",
                                                        "requests.Session.get"]
    assert finding.chain[1]["line"] == 4  # the class that inherits the blocking method


def test_a_declared_return_type_is_read_from_the_outline_without_parsing_the_module(tmp_path):
    from asyncguard.lint.engine.analysis import Value
    from asyncguard.lint.knowledge.base import build_knowledge
    from asyncguard.lint.engine.names import Project

    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/models/__init__.py": "from .client import Client\n",
        "app/models/client.py": "class Client:\n    pass\n",
        "app/db.py": ("from typing import Optional\nfrom sqlalchemy.orm import Session\nfrom app.models import Client\n\n\n"
                      "def get_session() -> Optional[Session]:\n    ...\n\n\n"
                      "def client() -> 'Client':\n    ...\n\n\ndef count() -> int:\n    return 1\n"),
    })
    modules = {"app.db": root / "app/db.py", "app.models": root / "app/models/__init__.py",
               "app.models.client": root / "app/models/client.py"}
    project = Project(modules, build_knowledge())
    assert project.function_result("app.db.get_session") == Value("sqlalchemy.orm.Session", instance=True)
    assert project.function_result("app.db.client") == Value("app.models.client.Client", instance=True)
    assert project.function_result("app.db.count") is None
    assert "app.db" not in project.indexes  # outlines only: no module was indexed for its bindings


def test_a_helper_blocks_through_what_it_calls_on_an_argument_of_a_known_type(tmp_path):
    """`def get_user(db, user_id)` has no annotation: the caller's `db: Session` decides, by position or keyword,
    for functions and for methods (whose `self` is not passed)."""
    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/crud.py": ("def get_user(db, user_id):\n    return db.query(User).filter(User.id == user_id).first()\n\n\n"
                        "def rename(user, name):\n    user.name = name.title()\n\n\n"
                        "class Repo:\n    def find(self, conn, key):\n"
                        "        return conn.execute('select 1 where k = ?', (key,)).fetchone()\n"),
        "app/routes.py": ("import sqlite3\nfrom sqlalchemy.orm import Session\nfrom app import crud\n\n\n"
                          "async def by_position(db: Session, user_id):\n    return crud.get_user(db, user_id)\n\n\n"
                          "async def by_keyword(db: Session):\n    return crud.get_user(user_id=1, db=db)\n\n\n"
                          "async def unknown(db, user_id):\n    return crud.get_user(db, user_id)\n\n\n"
                          "async def plain(db: Session):\n    crud.rename(db, 'x')\n\n\n"
                          "async def method(conn: sqlite3.Connection):\n    return crud.Repo().find(conn, 'a')\n"),
    })
    found = {(f.line, f.chain[-1]["name"], f.via) for f in check(root)}
    assert found == {(7, "sqlalchemy.orm.Query.first", "AG106"), (11, "sqlalchemy.orm.Query.first", "AG106"),
                     (23, "sqlite3.Connection.execute", "AG106")}


def test_a_route_path_with_parameters_names_the_context(tmp_path):
    """`add_api_route` with a `{param}` path once raised KeyError while naming the context, ending the run."""
    routes = ("import time\nfrom fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n"
              "async def progress(request_id: str):\n    time.sleep(1)\n\n\n"
              'router.add_api_route("/v1/requests/{request_id}/progress", progress, methods=["GET"])\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "routes.py").write_text(routes)
    (finding,) = check(tmp_path)
    assert finding.code == "AG101"
    assert finding.context == "path operation GET /v1/requests/{request_id}/progress"


def test_an_internal_error_in_the_pass_is_contained_to_its_module(tmp_path, monkeypatch, capsys):
    """A bug while summarising one module is AG002 there (exit 2); every other chain is still reported."""
    from asyncguard.cli import main
    from asyncguard.lint.engine import checker

    root = project(tmp_path, GATEWAY_BLOCKING)
    (root / "app" / "routes.py").write_text(HANDLER + "\n\nasync def refund(order):\n"
                                            "    from app.clients import gateway\n    return gateway.post(order)\n")
    summarize = checker.summarize_source

    def failing(text, module, *args, **kwargs):
        if module == "app.services.billing":
            raise RuntimeError("summary bug")
        return summarize(text, module, *args, **kwargs)

    monkeypatch.setattr(checker, "summarize_source", failing)
    monkeypatch.chdir(root)
    assert main(["check", "--no-cache", "-q", "app"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("app/services/billing.py:1:1: AG002") and "RuntimeError: summary bug" in line for line in lines)
    assert any(line.startswith("app/routes.py:") and "AG800 `post()`" in line for line in lines), lines


def test_the_chain_shown_reaches_real_io_before_a_weak_leaf_then_the_shortest(tmp_path):
    """`sync_all` reaches a cheap stat in one call and an HTTP post in two: the post is what a reader must see. In
    one function, its real I/O is the leaf, not the stat written before it."""
    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/sync.py": ("import os\nimport requests\n\n\ndef exists(path):\n    return os.path.exists(path)\n\n\n"
                        "def _post(path):\n    return requests.post('https://backup.example', data=path, timeout=5)\n\n\n"
                        "def upload(path):\n    return _post(path)\n\n\n"
                        "def sync_all(path):\n    if exists(path):\n        return upload(path)\n\n\n"
                        "def save(path, body):\n    os.path.isfile(path)\n    with open(path, 'w') as f:\n"
                        "        f.write(body)\n"),
        "app/routes.py": ("from app.sync import save, sync_all\n\n\nasync def backup(path):\n    return sync_all(path)\n\n\n"
                          "async def store(path, body):\n    save(path, body)\n"),
    })
    chains = {f.line: [(step["name"], step["line"]) for step in f.chain] for f in check(root)}
    assert chains == {
        5: [("app.sync.sync_all", 19), ("app.sync.upload", 14), ("app.sync._post", 10), ("requests.post", 10)],
        9: [("app.sync.save", 24), ("open", 24)],
    }


def test_every_step_of_a_chain_carries_the_line_of_its_call(tmp_path):
    root = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/services/__init__.py": "",
        "app/services/payments.py": ("from . import gateway\n\n\ndef charge(order_id, cents):\n"
                                     "    payload = {'order': order_id, 'amount': cents}\n    return _submit(payload)\n\n\n"
                                     "def _submit(payload):\n    return gateway.Gateway().post_charge(payload)\n"),
        "app/services/gateway.py": ("import requests\n\n\nclass Gateway:\n    def post_charge(self, payload):\n"
                                    "        body = dict(payload)\n        return self._send(body)\n\n"
                                    "    def _send(self, body):\n"
                                    "        return requests.post('https://gateway.example', json=body, timeout=5)\n"),
        "app/routes.py": "from app.services import payments\n\n\nasync def pay(order_id, cents):\n"
                         "    return payments.charge(order_id, cents)\n",
    })
    (finding,) = check(root)
    assert [(step["name"], step["path"].rsplit("/", 1)[-1], step["line"]) for step in finding.chain] == [
        ("app.services.payments.charge", "payments.py", 6), ("app.services.payments._submit", "payments.py", 10),
        ("app.services.gateway.Gateway.post_charge", "gateway.py", 7),
        ("app.services.gateway.Gateway._send", "gateway.py", 10), ("requests.post", "gateway.py", 10)]


def test_a_module_imported_under_two_names_keeps_its_chains_warm_and_cold(tmp_path):
    """`from database import load` (the service puts `app/` on sys.path) in one module and `from app.database import
    load` in another name one file twice: each name's chain is found, in a cold run and from the cache."""
    files = {
        "app/__init__.py": "",
        "app/database.py": "import sqlite3\n\n\ndef load(key):\n    return sqlite3.connect('app.db').execute(key)\n",
        "app/routes.py": "from database import load\n\n\nasync def by_short_name(key):\n    return load(key)\n",
        "app/api.py": "from app.database import load\n\n\nasync def by_package(key):\n    return load(key)\n\n\n"
                      "async def uses_the_db_too():\n    import sqlite3\n    return sqlite3.connect('x')\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    indirect = lambda: sorted((f.path.rsplit("/", 1)[-1], f.line) for f in check(tmp_path) if f.code == "AG800")  # noqa: E731
    assert indirect() == [("api.py", 5), ("routes.py", 5)]
    assert indirect() == [("api.py", 5), ("routes.py", 5)]  # warm


def test_a_run_over_unchanged_files_reuses_the_whole_program_findings(tmp_path, monkeypatch):
    """Nothing changed: the chains the last run found are the answer, with no pass over the call graph; one file
    changed (a helper that no longer blocks): the pass runs again and says so."""
    from asyncguard.lint.interface import runner

    root = project(tmp_path, GATEWAY_BLOCKING)
    (cold,) = check(root)
    passes = []
    whole_program = runner.whole_program
    monkeypatch.setattr(runner, "whole_program", lambda *args: passes.append(1) or whole_program(*args))
    assert check(root) == [cold] and passes == []
    gateway = root / "app" / "clients" / "gateway.py"
    gateway.write_text(GATEWAY)
    os.utime(gateway, (time.time() + 5, time.time() + 5))
    assert check(root) == [] and passes == [1]


def test_the_outline_of_an_unchanged_module_comes_from_the_cache(tmp_path, monkeypatch):
    """After one file changes, the modules the pass outlines again are read from the cache, not parsed: a large
    project's run after an edit parsed hundreds of them."""
    from asyncguard.lint.engine import names

    root = project(tmp_path, GATEWAY_BLOCKING)
    (cold,) = check(root)
    outlined = []
    outline = names.outline
    monkeypatch.setattr(names, "outline", lambda tree, package: outlined.append(package) or outline(tree, package))
    monkeypatch.setattr("asyncguard.lint.interface.runner._worker_state", {})  # a new process
    routes = root / "app" / "routes.py"
    routes.write_text(HANDLER + "\n")
    os.utime(routes, (time.time() + 5, time.time() + 5))
    assert check(root) == [cold]
    assert outlined == []

"""`--fix`, `--diff` and baselines: every fix on its rule's own examples, round trips, and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from asyncguard.lint.engine.checker import check_source
from asyncguard.lint.interface.fixes import fix_source, fixable
from asyncguard.lint.knowledge.base import build_knowledge
from asyncguard.lint.rule import all_rules
from conftest import ROOT

KNOWLEDGE = build_knowledge()
EXAMPLES = [(rule, i, code) for rule in all_rules() for i, code in enumerate(rule.flagged)
            if not rule.example_config and rule.code not in {"AG001", "AG002"}]


def fixed(text: str, unsafe: bool) -> tuple[str, int]:
    findings = check_source(text, module="example", knowledge=KNOWLEDGE)
    return fix_source(text, "example", findings, KNOWLEDGE, None, unsafe)


@pytest.mark.parametrize("rule,index,code", EXAMPLES, ids=[f"{r.code}-flagged-{i}" for r, i, _ in EXAMPLES])
def test_each_fix_on_its_rule_examples_rechecks_clean_and_is_idempotent(rule, index, code):
    unsafe = rule.code != "AG101"
    before = {(f.line, f.code) for f in check_source(code, module="example", knowledge=KNOWLEDGE)}
    after_text, count = fixed(code, unsafe)
    compile(after_text, f"{rule.code}-flagged-{index}", "exec")  # still Python, `await` only where it may stand
    if not any(fixable(f, unsafe) for f in check_source(code, module="example", knowledge=KNOWLEDGE)):
        assert count == 0 and after_text == code
        return
    remaining = check_source(after_text, module="example", knowledge=KNOWLEDGE)
    assert len([f for f in remaining if f.code == rule.code]) < len([c for _, c in before if c == rule.code])
    assert "await asyncio." in after_text and "import asyncio" in after_text
    again, more = fixed(after_text, unsafe)
    assert (again, more) == (after_text, 0) or more < count  # what is left cannot be fixed in place


def test_safe_fix_keeps_comments_and_formatting_and_adds_the_import_once():
    text = ('"""Doc."""\n\nfrom time import sleep as nap\nimport os  # keep\n\n\nasync def handler():\n'
            '    nap( 0.5 )  # wait a bit\n    nap(1)\n')
    after, count = fixed(text, unsafe=False)
    assert count == 2
    assert after == ('"""Doc."""\n\nimport asyncio\nfrom time import sleep as nap\nimport os  # keep\n\n\n'
                     'async def handler():\n    await asyncio.sleep( 0.5 )  # wait a bit\n'
                     '    await asyncio.sleep(1)\n')
    assert check_source(after, module="example", knowledge=KNOWLEDGE) == []


def test_no_fix_where_await_cannot_stand():
    text = ("import asyncio\nimport time\n\nasync def handler(items):\n    def inner():\n        time.sleep(1)\n"
            "    inner()\n    return (time.sleep(0) for _ in items)\n")
    findings = check_source(text, module="example", knowledge=KNOWLEDGE)
    assert {f.line for f in findings} == {6, 8}
    assert fixed(text, unsafe=True) == (text, 0)


def test_unsafe_fix_parenthesises_where_the_await_is_an_operand():
    text = "import sqlite3\n\nasync def report(conn: sqlite3.Connection):\n    return conn.execute('q').fetchone()\n"
    after, count = fixed(text, unsafe=True)
    assert count == 1 and "(await asyncio.to_thread(conn.execute, 'q')).fetchone()" in after


@pytest.mark.parametrize("text", [
    "import time\n\nasync def handler():\n    def inner(x: time.sleep(1)): ...\n    return inner\n",
    "import requests\n\nasync def handler(url):\n    x: requests.get(url) = 1\n    return x\n",
    "from __future__ import annotations\nimport requests\n\nasync def handler(url):\n    x: requests.get(url) = 1\n",
    "import time\n\nasync def handler():\n    class Settings:\n        pause = time.sleep(1)\n    return Settings\n",
], ids=["parameter-annotation", "variable-annotation", "postponed-annotation", "class-body"])
def test_no_fix_in_an_annotation_or_a_class_body(text):
    assert fixed(text, unsafe=True) == (text, 0)


def test_a_default_of_a_nested_function_is_fixed_in_the_coroutine_that_evaluates_it():
    text = "import time\n\nasync def handler():\n    async def inner(pause=time.sleep(0)): ...\n    return inner\n"
    after, count = fixed(text, unsafe=False)
    assert count == 1 and "async def inner(pause=await asyncio.sleep(0))" in after
    compile(after, "example", "exec")


def run_handler(text: str, *args):
    """Execute the fixed module and run its `handler` coroutine: proves the fix calls the real `asyncio.sleep`."""
    namespace: dict = {}
    exec(compile(text, "example", "exec"), namespace)
    return asyncio.run(namespace["handler"](*args))


@pytest.mark.parametrize("text,args", [
    ("import time\n\nasync def handler():\n    asyncio = 5\n    time.sleep(0)\n    return asyncio\n", ()),
    ("import time\n\nasync def handler():\n    def asyncio(): return 5\n    time.sleep(0)\n    return asyncio()\n",
     ()),
    ("import time\n\nasync def handler(asyncio):\n    time.sleep(0)\n    return asyncio\n", (5,)),
    ("import time\nasyncio = 5\n\nasync def handler():\n    time.sleep(0)\n    return asyncio\n", ()),
    ("import asyncio\nimport time\n\nasync def handler(asyncio):\n    time.sleep(0)\n    return asyncio\n", (5,)),
], ids=["assigned", "function", "parameter", "module-level", "import-shadowed"])
def test_fix_reaches_asyncio_under_another_name_where_the_name_is_rebound(text, args):
    after, count = fixed(text, unsafe=False)
    assert count == 1 and "import asyncio as _asyncio\n" in after and "await _asyncio.sleep(0)" in after
    assert run_handler(after, *args) == 5


def test_fix_keeps_the_plain_name_where_it_is_not_rebound():
    text = ("import time\n\nasync def handler():\n    time.sleep(0)\n    return 5\n\n"
            "async def other(asyncio):\n    time.sleep(0)\n")
    after, count = fixed(text, unsafe=False)
    assert count == 2 and "    await asyncio.sleep(0)\n    return 5" in after and "await _asyncio.sleep(0)" in after
    assert after.startswith("import asyncio\nimport asyncio as _asyncio\nimport time\n")
    assert run_handler(after) == 5


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asyncguard", "check", *args, "--no-cache"], capture_output=True,
                          text=True, cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def billing(tmp_path):
    tree = tmp_path / "billing_api"
    shutil.copytree(ROOT / "tests" / "fixtures" / "billing_api", tree)
    return tree


def test_diff_writes_nothing_and_fix_round_trips(billing):
    invoices = billing / "billing" / "routers" / "invoices.py"
    original = invoices.read_text()
    diff = cli("billing", "--diff", "--unsafe-fixes", cwd=billing)
    assert diff.returncode == 1 and "+    receipt = await asyncio.to_thread(payments.charge, order_id, cents)" in diff.stdout
    assert invoices.read_text() == original
    fixed_run = cli("billing", "--fix", "--unsafe-fixes", "--format", "json", cwd=billing)
    remaining = json.loads(fixed_run.stdout)["findings"]
    assert [(f["code"], f["line"]) for f in remaining] == [("AG800", 45)]  # `with db.session_scope():` stays
    assert "Fixed 10 findings in 3 files." in fixed_run.stderr
    for path in billing.rglob("*.py"):
        compile(path.read_bytes(), str(path), "exec")
    assert cli("billing", "--diff", "--unsafe-fixes", cwd=billing).returncode == 0  # nothing left to fix


def test_baseline_reports_only_new_findings_and_survives_line_shifts(billing, tmp_path):
    baseline = tmp_path / "baseline.json"
    written = cli("billing", "--write-baseline", str(baseline), cwd=billing)
    assert written.returncode == 0 and "Recorded 11 findings" in written.stderr
    assert cli("billing", "--baseline", str(baseline), cwd=billing).returncode == 0
    invoices = billing / "billing" / "routers" / "invoices.py"
    text = invoices.read_text()
    text = text.replace('router = APIRouter(prefix="/invoices")', '# a new comment\n\nrouter = APIRouter(prefix="/invoices")')
    text += "\n\n@router.get('/slow')\nasync def slow():\n    db.invoice_total(1)\n"
    invoices.write_text(text)
    after = cli("billing", "--baseline", str(baseline), "--format", "json", cwd=billing)
    new = json.loads(after.stdout)["findings"]
    assert after.returncode == 1 and [(f["code"], f["context"]) for f in new] == [
        ("AG800", "path operation GET /invoices/slow")]
    assert "11 findings recorded in" in after.stderr


@pytest.mark.parametrize("content,message", [
    (None, "cannot read baseline"), ("{", "is not JSON"), ('{"version": 7, "findings": []}', "not an asyncguard"),
])
def test_bad_baseline_is_a_usage_error(billing, tmp_path, content, message):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    process = cli("billing", "--baseline", str(path), cwd=billing)
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr

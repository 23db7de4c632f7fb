"""Precision on real code: what looks blocking but does not run, or does no I/O, on the event loop.

Each case pairs the look-alike (not reported) with the form that does block (reported), marked inline.
"""

from __future__ import annotations

import pytest

from asyncguard.lint.engine.checker import check_source
from conftest import expected_findings, reported

STREAMED_GENERATORS = """\
import time
from fastapi.responses import StreamingResponse
from sse_starlette.sse import EventSourceResponse


def iter_file(path):
    with open(path, "rb") as f:
        yield from f


def read_all(path):
    with open(path, "rb") as f:
        return iter([f.read()])


async def nested(path):
    def chunks():
        time.sleep(0.1)
        yield b"tick"
    return StreamingResponse(chunks())


async def module_level(path):
    return StreamingResponse(iter_file(path), media_type="application/octet-stream")


async def events(path):
    return EventSourceResponse(content=iter_file(path))


async def not_a_generator(path):
    return StreamingResponse(read_all(path))  # AG800


async def iterated_here(path):
    for chunk in iter_file(path):  # AG800
        print(chunk)
"""


def test_sync_generators_given_to_streaming_responses_run_in_the_threadpool():
    """Starlette iterates a sync iterator with `iterate_in_threadpool`: calling the generator function runs none of
    its body; a plain function that builds the iterator, or a loop over the generator, still runs on the loop."""
    assert reported(STREAMED_GENERATORS) == expected_findings(STREAMED_GENERATORS)


LAZY_CONSTRUCTORS = """\
import cohere
import redis
from xmlrpc.client import ServerProxy

cache = redis.Redis(host="cache", port=6379)
pool = redis.ConnectionPool(host="cache")


async def build():
    client = redis.StrictRedis(connection_pool=pool)
    llm = cohere.Client("key")
    legacy = ServerProxy("https://legacy.example/rpc")
    client.get("k")  # AG106
    llm.chat(message="hi")  # AG102
    return legacy.status()  # AG102
"""


def test_constructors_that_only_build_are_not_io_what_they_later_call_is():
    assert reported(LAZY_CONSTRUCTORS) == expected_findings(LAZY_CONSTRUCTORS)


def test_a_project_class_that_only_builds_a_client_does_not_block_when_constructed():
    source = """\
import redis


class Cache:
    def __init__(self, url):
        self.client = redis.Redis.from_url(url)
        self.backup = redis.Redis(host="backup")

    def get(self, key):
        return self.client.get(key)


async def handler(key):
    cache = Cache("redis://cache")
    return cache.get(key)  # AG800
"""
    assert reported(source) == expected_findings(source)


IN_MEMORY = """\
import io
import tarfile
import zipfile

import fitz
import pandas as pd
from fastapi import UploadFile
from PIL import Image
from pypdf import PdfReader, PdfWriter


async def thumbnails(upload: UploadFile):
    data = await upload.read()
    image = Image.open(io.BytesIO(data))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    image.save("/tmp/thumb.png")  # AG104
    return buffer.getvalue()


async def archives(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        archive.extractall("/tmp/out")  # AG104
    tarfile.open(fileobj=io.BytesIO(data))
    zipfile.ZipFile("/tmp/upload.zip")  # AG104
    return names


async def documents(upload: UploadFile, data: bytes):
    reader = PdfReader(io.BytesIO(await upload.read()))
    writer = PdfWriter()
    out = io.BytesIO()
    writer.write(out)
    fitz.open(stream=data, filetype="pdf")
    frame = pd.read_csv(io.StringIO(data.decode()))
    frame.to_excel(out)
    PdfReader("/srv/report.pdf")  # AG104
    return reader.pages
"""


def test_file_format_libraries_on_in_memory_buffers_do_no_file_io():
    assert reported(IN_MEMORY) == expected_findings(IN_MEMORY)


LOCKS = """\
import threading
import time

import requests

counts = {}
counts_lock = threading.Lock()
token_lock = threading.Lock()
token = {}


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.hits = 0

    async def hit(self):
        with self._lock:
            self.hits += 1


def refresh_token():
    with token_lock:
        token["value"] = requests.post("https://auth.example/token", timeout=5).json()


async def count(name):
    with counts_lock:
        counts[name] = counts.get(name, 0) + 1


async def current_token():
    with token_lock:  # AG109
        return token["value"]


async def sleepy():
    slow_lock = threading.Lock()
    with slow_lock:  # AG109
        time.sleep(0.1)  # AG101
"""


def test_a_lock_is_reported_only_where_some_critical_section_under_it_blocks():
    assert reported(LOCKS) == expected_findings(LOCKS)


def test_the_lock_finding_says_which_critical_section_blocks():
    (finding,) = [f for f in check_source(LOCKS, module="app.state") if f.line == 33]
    assert finding.code == "AG109"
    assert "refresh_token" in finding.message and "requests.post" in finding.message
    assert "<string>:24" in finding.message


def test_a_lock_whose_critical_section_calls_a_blocking_helper_is_reported():
    source = """\
import threading

import requests

lock = threading.RLock()


def _fetch():
    return requests.get("https://prices.example", timeout=5).json()


def reload_prices(prices):
    lock.acquire()
    try:
        prices.update(_fetch())
    finally:
        lock.release()


async def price(prices, sku):
    lock.acquire()  # AG109
    try:
        return prices[sku]
    finally:
        lock.release()
"""
    assert reported(source) == expected_findings(source)


@pytest.mark.parametrize("statement", [
    "x: time.sleep(1) = 1",
    "x: requests.get('https://example') = None",
    "x: 'time.sleep(1)'",
])
def test_local_variable_annotations_are_never_evaluated(statement):
    source = f"import time\nimport requests\n\n\nasync def f():\n    {statement}\n    return 1\n"
    assert reported(source) == set()


def check_tree(root, files: dict[str, str]):
    from asyncguard.lint.interface.config import Settings
    from asyncguard.lint.interface.files import discover
    from asyncguard.lint.interface.runner import run

    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return run(list(discover([str(root / "app")], root, [])), Settings(project_root=root), use_cache=False).findings


def test_a_lock_held_across_io_by_a_worker_module_without_coroutines_is_found(tmp_path):
    """The critical section that blocks is in a module with no `async` in it (a background thread's), and the
    generator a handler streams is another module's."""
    findings = check_tree(tmp_path, {
        "app/__init__.py": "",
        "app/state.py": "import threading\n\ntoken_lock = threading.Lock()\nstats_lock = threading.Lock()\n"
                        "token = {}\nstats = {}\n",
        "app/worker.py": ("import requests\nfrom app.state import stats, stats_lock, token, token_lock\n\n\n"
                          "def refresh():\n    with stats_lock:\n        stats['refreshes'] = stats.get('refreshes', 0) + 1\n"
                          "    with token_lock:\n        token['value'] = requests.post('https://auth.example').json()\n"),
        "app/files.py": "def iter_file(path):\n    with open(path, 'rb') as f:\n        yield from f\n",
        "app/routes.py": ("from fastapi.responses import StreamingResponse\nfrom app.files import iter_file\n"
                          "from app.state import stats, stats_lock, token, token_lock\n\n\n"
                          "async def current():\n    with token_lock:\n        return token['value']\n\n\n"
                          "async def counted():\n    with stats_lock:\n        return dict(stats)\n\n\n"
                          "async def download(path):\n    return StreamingResponse(iter_file(path))\n"),
    })
    (finding,) = findings
    assert (finding.path.endswith("app/routes.py"), finding.line, finding.code) == (True, 7, "AG109")
    assert "`refresh` holds it around `requests.post`" in finding.message and "app/worker.py:9" in finding.message
    assert [step["name"] for step in finding.chain] == ["app.worker.refresh", "requests.post"]


BATCH_SCRIPT = """\
import asyncio
import time

import requests


def load_failed(db_path):
    with open(db_path) as f:
        return f.read().splitlines()


async def reprocess_failed():
    time.sleep(1)
    return load_failed("failed.txt")


async def main():
    requests.get("https://api.example/jobs")
    await reprocess_failed()


if __name__ == "__main__":
{runner}
"""


@pytest.mark.parametrize("runner", [
    "    asyncio.run(main())",
    "    import anyio\n    anyio.run(main)",
    "    loop = asyncio.new_event_loop()\n    loop.run_until_complete(main())",
    "    try:\n        asyncio.run(main())\n    except KeyboardInterrupt:\n        pass",
])
def test_the_coroutines_of_a_script_that_runs_its_own_event_loop_are_not_on_a_server(runner):
    """A batch script (`asyncio.run(main())` under its main guard) that registers no route or handler blocks only
    its own loop: none of its coroutines, reached from that call or not, is reported."""
    assert reported(BATCH_SCRIPT.format(runner=runner)) == set()


def test_a_telethon_script_run_at_module_level_is_not_on_a_server():
    text = """\
import json

from telethon import TelegramClient

client = TelegramClient("session", 1, "hash")


async def main():
    with open("messages.json", "w") as f:
        json.dump([], f)


with client:
    client.loop.run_until_complete(main())
"""
    assert reported(text) == set()


SCRIPT_WITH_A_SERVER = """\
import asyncio
import time

import uvicorn
from fastapi import APIRouter, Depends, FastAPI
{definition}

async def poll():
    time.sleep(1)  # AG101


async def main():
{body}


if __name__ == "__main__":
    asyncio.run(main())
"""


@pytest.mark.parametrize("definition, body", [
    ("app = FastAPI()\n", "    await poll()"),
    ("router = APIRouter()\n\n\n@router.get('/jobs')\nasync def jobs():\n    return []\n", "    await poll()"),
    ("\n\nasync def current_user(db=Depends(poll)):\n    return db\n", "    await poll()"),
    ("", "    server = uvicorn.Server(uvicorn.Config('app.main:app'))\n    await asyncio.gather(server.serve(), poll())"),
])
def test_a_module_that_builds_an_app_registers_a_route_or_serves_is_still_checked(definition, body):
    """Its coroutines may share the loop of the server it defines or starts."""
    text = SCRIPT_WITH_A_SERVER.format(definition=definition, body=body)
    assert reported(text) == expected_findings(text)


CACHED_FILE_READS = """\
import functools
from functools import cache, lru_cache
from pathlib import Path

import requests

SQL_DIR = Path("sql")


@lru_cache(maxsize=None)
def _sql_file(name):
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def sql(name):
    return _sql_file(name)


def _read(path):
    with open(path) as f:
        return f.read()


@cache
def template(name):
    return _read(f"templates/{name}.html")


@functools.lru_cache
def exchange_rate(currency):
    return requests.get(f"https://rates.example/{currency}").json()


@lru_cache(maxsize=32)
def manifest(name):
    data = (SQL_DIR / name).read_text()
    requests.post("https://audit.example", json={"read": name})
    return data


_global_data = None
_locale_cache = {}


def get_global(key):
    global _global_data
    if _global_data is None:
        with open("global.dat", "rb") as fileobj:
            _global_data = fileobj.read()
    return _global_data


def load_locale(name):
    try:
        data = _locale_cache.get(name)
        if not data:
            with open(f"{name}.dat", "rb") as fileobj:
                data = fileobj.read()
            _locale_cache[name] = data
        return data
    except OSError:
        return None


async def users():
    query = sql("users")
    page = template("users")
    number_format = get_global("decimal"), load_locale("en_US")
    rate = exchange_rate("EUR")  # AG800
    listing = manifest("MANIFEST")  # AG800
    raw = _read("users.sql")  # AG800
    return query, page, rate, listing, raw
"""


def test_a_cached_helper_that_only_reads_files_blocks_only_on_its_first_call():
    """`lru_cache`/`cache` on a helper that reads a SQL or template file: the read happens once per process, so a
    chain through it is not reported, nor through a lazy global (babel's `get_global`) or a module-level cache
    (`_cache[name] = data`); one behind a cache that does HTTP (or any other I/O) still is, and so is the uncached
    reader called directly."""
    assert reported(CACHED_FILE_READS) == expected_findings(CACHED_FILE_READS)


IN_MEMORY_EXPORTS = """\
import io
import pandas as pd
from PIL import Image, ImageDraw, ImageFont


async def export(df: pd.DataFrame, image: Image.Image, path: str):
    buffer = io.StringIO()
    df.to_csv(buffer)
    text = df.to_csv()
    df.to_csv(path)  # AG104
    ImageDraw.Draw(image).text((0, 0), "total", font=ImageFont.load_default())
    image.paste(image.convert("RGB"), (0, 0))
    return text
"""


def test_exports_kept_in_memory_and_learned_chains_through_safe_calls_are_not_file_io():
    """`df.to_csv()` with no path returns the text; a learned chain through a call the curated base declares safe
    (`Image.convert`'s colour profiles, Pillow's built-in default font) is not reported."""
    assert reported(IN_MEMORY_EXPORTS) == expected_findings(IN_MEMORY_EXPORTS)


SYNC_STARTUP_HANDLER = """\
import sqlite3
from fastapi import FastAPI

app = FastAPI()


@app.on_event("startup")
def create_tables():
    sqlite3.connect("app.db").execute("create table if not exists t (x)")  # AG106


@app.get("/rows")
def rows():
    return sqlite3.connect("app.db").execute("select x from t").fetchall()
"""


def test_a_sync_event_handler_runs_on_the_loop_and_a_sync_route_does_not():
    """Starlette calls a plain `def` startup handler itself, on the loop; a plain `def` route runs in the threadpool.
    The file has no `async` in it: it is still read."""
    assert reported(SYNC_STARTUP_HANDLER) == expected_findings(SYNC_STARTUP_HANDLER)


NEXT_OF_A_DEPENDENCY = """\
import sqlite3
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker()


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def rows():
    yield from sqlite3.connect("app.db").execute("select 1")


async def handler():
    db = next(get_db())
    for row in rows():  # AG800
        print(row)
    return db
"""


def test_next_of_a_generator_dependency_runs_its_setup_not_its_teardown():
    """`next(get_db())` runs the dependency to its `yield` (a lazy session): its `finally` runs only when the
    generator is closed, not here; a generator looped over runs whole."""
    assert reported(NEXT_OF_A_DEPENDENCY) == expected_findings(NEXT_OF_A_DEPENDENCY)


APP_WITH_MODULES_OFF_ITS_LOOP = {
    "app/__init__.py": "",
    "app/main.py": ("from fastapi import FastAPI\nfrom app.routers import orders\n\napp = FastAPI()\n"
                    "app.include_router(orders.router)\n"),
    "app/routers/__init__.py": "",
    "app/routers/orders.py": ("import time\nfrom fastapi import APIRouter\nrouter = APIRouter()\n\n\n"
                              "@router.get('/orders')\nasync def orders():\n    from ..services import billing\n"
                              "    time.sleep(1)\n    await billing.settle()\n    return billing.total()\n"),
    "app/services/__init__.py": "",
    "app/services/billing.py": "import time\n\n\nasync def settle():\n    time.sleep(1)\n\n\ndef total():\n    return 0\n",
    "app/routers/orders_old.py": ("import time\nfrom fastapi import APIRouter\nrouter = APIRouter()\n\n\n"
                                  "@router.get('/orders')\nasync def orders():\n    time.sleep(1)\n"),
    "app/worker_main.py": ("import asyncio\nimport time\nfrom app.services import billing\n\n\n"
                           "async def poll():\n    time.sleep(1)\n\n\ndef main():\n    asyncio.run(poll())\n\n\n"
                           "if __name__ == '__main__':\n    main()\n"),
    "app/scripts/__init__.py": "",
    "app/scripts/audit.py": "import time\n\n\nasync def audit():\n    time.sleep(1)\n",
    "app/tests/test_audit.py": "from app.scripts.audit import audit\n",
}


def test_a_module_that_mounts_routers_on_an_app_built_elsewhere_is_the_apps_own(tmp_path):
    """`app = create_app()` then `app.include_router(...)`: the factory names FastAPI, the module that mounts does
    not, and what it mounts runs; a worker whose comment speaks of FastAPI is still not the app."""
    factory = {**APP_WITH_MODULES_OFF_ITS_LOOP,
               "app/factory.py": "from fastapi import FastAPI\n\n\ndef create_app():\n    return FastAPI()\n",
               "app/main.py": ("from app.factory import create_app\nfrom app.routers import orders\n\n"
                               "app = create_app()\napp.include_router(orders.router)\n"),
               "app/worker_main.py": "# runs beside the FastAPI app\n" + APP_WITH_MODULES_OFF_ITS_LOOP["app/worker_main.py"]}
    assert sorted(f.path.rpartition("app/")[2] for f in check_tree(tmp_path, factory)) == [
        "routers/orders.py", "services/billing.py"]


def test_modules_the_app_never_imports_run_nothing_on_its_loop(tmp_path):
    """A superseded router module, a worker started on its own and a script imported only by its tests hold no
    loop of the app; a module the app imports inside a route (relatively) runs on it."""
    findings = check_tree(tmp_path, APP_WITH_MODULES_OFF_ITS_LOOP)
    assert sorted((f.path.rpartition("app/")[2], f.line) for f in findings) == [
        ("routers/orders.py", 9), ("services/billing.py", 5)]


@pytest.mark.parametrize("loading, reported_modules", [
    ("for name in ('orders', 'orders_old'):\n    app.include_router(import_module(f'app.routers.{name}').router)\n",
     ["routers/orders.py", "routers/orders_old.py", "services/billing.py"]),
    ("for name in ('app.routers.orders', 'app.scripts.audit'):\n    import_module(name)\n",
     ["routers/orders.py", "scripts/audit.py", "services/billing.py"]),
    ("for module in pkgutil.walk_packages(['app']):\n    import_module(module.name)\n",
     ["routers/orders.py", "routers/orders_old.py", "services/billing.py", "worker_main.py"]),
])
def test_modules_the_app_loads_by_name_or_discovers_at_run_time_are_on_its_loop(tmp_path, loading,
                                                                                  reported_modules):
    """A module named in a string the app imports by, or in a package it formats a name in, may run; where the app
    walks packages, any module of its tree may, and what it calls runs (not a coroutine only its test names)."""
    loaded = {**APP_WITH_MODULES_OFF_ITS_LOOP, "app/main.py": (
        f"import pkgutil\nfrom importlib import import_module\nfrom fastapi import FastAPI\n\napp = FastAPI()\n{loading}")}
    assert sorted({f.path.rpartition("app/")[2] for f in check_tree(tmp_path, loaded)}) == reported_modules


@pytest.mark.parametrize("importing", [
    "from app.routers \\\n    .orders import router\n",
    "from app.routers.orders \\\n    import router\n",
    "import importlib\nrouter = importlib.import_module('app.routers' + '.orders').router\n",
])
def test_a_module_imported_however_it_is_spelled_is_on_the_apps_loop(tmp_path, importing):
    """An import split by a backslash is read whole; a module whose name the app's code writes in any other way
    (built up for a loader) is kept: only a module no reached code names is judged off the app."""
    spelled = {**APP_WITH_MODULES_OFF_ITS_LOOP, "app/main.py": (
        f"from fastapi import FastAPI\n{importing}\napp = FastAPI()\napp.include_router(router)\n")}
    assert "routers/orders.py" in {f.path.rpartition("app/")[2] for f in check_tree(tmp_path, spelled)}


APP_WITH_FUNCTIONS_NOTHING_CALLS = {
    "app/__init__.py": "",
    "app/main.py": ("from fastapi import FastAPI\nfrom app import services\nfrom app.services import by_worker\n\n"
                    "app = FastAPI()\n\n\n@app.get('/')\nasync def root():\n    return await services.used()\n"),
    "app/services.py": """\
import time

from starlette.middleware.base import BaseHTTPMiddleware
from temporalio import activity
from app.events import hooks
from app.tasks import celery


async def used():
    time.sleep(1)  # AG101
    return await helper()


async def helper():
    time.sleep(1)  # AG101


async def named_in_a_comment_only():
    time.sleep(1)


async def named_in_a_dead_function_only():
    time.sleep(1)


async def dead():
    await named_in_a_dead_function_only()


async def by_worker():
    time.sleep(1)


class Middleware(BaseHTTPMiddleware):
    pass


class Timing(Middleware):
    async def dispatch(self, request, call_next):
        time.sleep(1)  # AG101
        return await call_next(request)


@hooks.on("order.created")
async def registered():
    time.sleep(1)  # AG101


@celery.task
async def queued():
    time.sleep(1)


@activity.defn
async def in_a_temporal_worker():
    time.sleep(1)

# await named_in_a_comment_only()
__all__ = ["used", "queued", "in_a_temporal_worker"]
""",
    "app/tasks.py": "from celery import Celery\n\ncelery = Celery()\n",
    "app/events.py": "class Hooks:\n    def on(self, name):\n        return lambda function: function\n\n\nhooks = Hooks()\n",
    "app/worker.py": ("import asyncio\nfrom app.services import by_worker\nfrom app.tasks import celery\n\n\n"
                      "@celery.task\ndef main():\n    asyncio.run(by_worker())\n"),
}


def test_functions_nothing_the_app_runs_calls_hold_no_loop(tmp_path):
    """A coroutine whose one caller is in a comment, in a function nothing calls, or in a worker the app never
    imports (an import alone calls nothing, a decorator there registers nothing with the app), a Celery task or a
    Temporal activity (a worker runs them; `__all__` exports, it calls nothing) runs on no loop of the app; one a
    route awaits runs, as do a framework's hooks (a method of a class with a base from outside the project, also
    through a base of its own) and what a decorator in the app's modules registers."""
    findings = check_tree(tmp_path, APP_WITH_FUNCTIONS_NOTHING_CALLS)
    marked = sorted(expected_findings(APP_WITH_FUNCTIONS_NOTHING_CALLS["app/services.py"]))
    assert sorted((f.path.rpartition("app/")[2], f.line) for f in findings) == [
        ("services.py", line) for line, _ in marked]


def test_without_an_app_every_function_may_be_called(tmp_path):
    """A library's public coroutines are its users' to call: nothing is judged where no checked file builds an app."""
    library = {path: text for path, text in APP_WITH_FUNCTIONS_NOTHING_CALLS.items() if path != "app/main.py"}
    assert len(check_tree(tmp_path, library)) == 9


def test_a_module_named_only_as_a_word_elsewhere_is_off_the_app(tmp_path):
    """`voice` of `app.routers.voice` is also a package's name (`app.services.voice`), a key and a permission's
    (`"voice.read"`): the router module nothing imports stays off the app; one whose name ends a dotted string the
    app loads modules by is kept."""
    files = {**APP_WITH_MODULES_OFF_ITS_LOOP,
             "app/routers/voice.py": ("import time\nfrom fastapi import APIRouter\nrouter = APIRouter()\n\n\n"
                                      "@router.post('/voice')\nasync def hook():\n    time.sleep(1)\n"),
             "app/services/voice/__init__.py": "",
             "app/services/voice/tools.py": "def speak():\n    return 'voice'\n",
             "app/main.py": APP_WITH_MODULES_OFF_ITS_LOOP["app/main.py"]
             + "from app.services.voice.tools import speak\nsettings = {'voice': speak(), 'scopes': ['voice.read']}\n"}
    assert "routers/voice.py" not in {f.path.rpartition("app/")[2] for f in check_tree(tmp_path, files)}
    files["app/main.py"] += "import importlib\nvoice = importlib.import_module('app.routers' + '.voice')\n"
    assert "routers/voice.py" in {f.path.rpartition("app/")[2] for f in check_tree(tmp_path, files)}


WORKBOOKS_IN_MEMORY = """\
import io

import pandas as pd


async def export(rows, old):
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer) as writer:
        pd.DataFrame(rows).to_excel(writer, index=False)
        pd.merge(pd.DataFrame(rows), old, on="code").to_excel(writer, sheet_name="joined")
    with pd.ExcelWriter("report.xlsx") as on_disk:  # AG104
        pd.DataFrame(rows).to_excel(on_disk)
    return buffer.getvalue()
"""


def test_a_workbook_written_in_memory_does_no_file_io():
    """An `ExcelWriter` over a buffer builds the workbook in memory (a file's is opened by its constructor), for a
    frame `pd.merge` made too (pandas' own name for its class is the public one)."""
    assert reported(WORKBOOKS_IN_MEMORY) == expected_findings(WORKBOOKS_IN_MEMORY)


def test_a_service_that_discovers_modules_reaches_only_its_own_tree(tmp_path):
    """In a monorepo, one service walking its packages imports its own modules, not another service's stdio
    server that no app imports."""
    files = {
        "app/services/api/app/__init__.py": "",
        "app/services/api/app/main.py": ("import pkgutil\nfrom importlib import import_module\n"
                                         "from fastapi import FastAPI\n\napp = FastAPI()\n"
                                         "for found in pkgutil.walk_packages(['app']):\n"
                                         "    import_module(found.name)\n"),
        "app/services/api/app/plugins.py": ("import time\nfrom fastapi import APIRouter\nrouter = APIRouter()\n\n\n"
                                        "@router.get('/p')\nasync def plugin():\n    time.sleep(1)\n"),
        "app/services/capture/server.py": ("import asyncio\nimport time\n\n\nasync def serve():\n"
                                           "    time.sleep(1)\n\n\nif __name__ == '__main__':\n"
                                           "    asyncio.run(serve())\n"),
    }
    assert [f.path.rpartition("services/")[2] for f in check_tree(tmp_path, files)] == ["api/app/plugins.py"]


def test_an_app_kept_in_an_archive_beside_the_served_one_is_not_served(tmp_path):
    """`archive/platform-api/` holds an old copy of the whole app, `FastAPI()` and all: where another app is built
    outside it, its routes serve nothing, and an import both copies could answer is the served one's; what the
    served app imports from the archive alone still runs."""
    route = "import time\nfrom fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get('/')\nasync def root():\n"
    files = {"app/api/main.py": route + "    from app.archive.platform_api.helpers import pause\n    pause()\n"
                                "    from db import query\n    return await query()\n",
             "app/api/db.py": "async def query():\n    return 1\n",
             "app/archive/platform_api/db.py": "import time\n\n\nasync def query():\n    time.sleep(1)\n",
             "app/archive/platform_api/main.py": route + "    time.sleep(1)\n",
             "app/archive/platform_api/helpers.py": "import time\n\n\ndef pause():\n    time.sleep(1)\n"}
    assert sorted(f.path.rpartition("app/")[2] for f in check_tree(tmp_path, files)) == ["api/main.py"]


SLEEPS = "import time\n\n\nasync def {name}():\n    time.sleep(1)\n\n\nhandlers = [{name}]\n"
MONOREPO_WITH_LOOK_ALIKE_IMPORTS = {
    "services/api/main.py": ("import importlib\nimport logging\nimport server\nfrom fastapi import FastAPI\n"
                             "from mcp.types import Tool\nfrom starlette.middleware.base import BaseHTTPMiddleware\n"
                             "from tools.loader import load\n\napp = FastAPI()\n"
                             "log = logging.getLogger(f'pipelines.{__name__}')\n\n\n@app.get('/')\nasync def root():\n"
                             "    await importlib.util.spec_from_file_location('redactor', 'redactor.py').loader.go()\n"),
    "services/api/tools/__init__.py": "",
    "services/api/tools/loader.py": "import importlib\n\n\ndef load(name):\n    return importlib.import_module(f'plugins.{name}')\n",
    "services/api/plugins/__init__.py": "",
    "services/api/plugins/slack.py": ("import time\nfrom fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n"
                                      "@router.post('/slack')\nasync def post():\n    time.sleep(1)\n"),
    "services/api/redactor.py": SLEEPS.format(name="go"),
    "services/worker/server.py": SLEEPS.format(name="serve"),
    "services/capture/server.py": SLEEPS.format(name="serve"),
    "src/tool/__init__.py": "",
    "src/tool/logging/__init__.py": SLEEPS.format(name="configure"),
    "src/tool/pipelines/__init__.py": "",
    "src/tool/pipelines/base.py": SLEEPS.format(name="index"),
    "src/tool/core/__init__.py": "",
    "src/tool/core/types.py": SLEEPS.format(name="convert"),
    "src/tool/tests/test_app.py": ("from fastapi import FastAPI\nfrom tool.core.types import convert\n\n"
                                   "app = FastAPI()\n"),
}


def test_an_import_reaches_the_module_python_would_import(tmp_path):
    """In a monorepo, `import logging` and `from starlette.middleware.base import ...` are the libraries, not a
    CLI's `tool/logging/` or `pipelines/base.py`; `mcp.types` no far `core/types.py`; `import server` none of two
    other services' `server.py`; a logger's `f"pipelines.{name}"` loads no package and a test's app is not served.
    What the app does load stays: a formatted name handed to `import_module`, a file loaded by its path."""
    files = {f"app/{path}": text for path, text in MONOREPO_WITH_LOOK_ALIKE_IMPORTS.items()}
    found = {(f.path.partition("/app/")[2], f.line) for f in check_tree(tmp_path, files)}
    assert found == {("services/api/plugins/slack.py", 9), ("services/api/redactor.py", 5)}


CLASSES_BUILT_AND_NOT = {
    "app/__init__.py": "",
    "app/main.py": ("from fastapi import FastAPI\nfrom app.metrics import adapters, monitor\n\napp = FastAPI()\n\n\n"
                    "@app.get('/')\nasync def root():\n    await monitor.aggregate()\n"
                    "    await adapters['salla']().fetch()\n    return monitor.latest\n"),
    "app/metrics.py": """\
import time
from functools import cached_property


class Aggregator:
    \"\"\"Only a script builds one.\"\"\"

    async def aggregate(self):
        time.sleep(1)

    @cached_property
    async def latest(self):
        time.sleep(1)


class Monitor:
    async def aggregate(self):
        time.sleep(1)  # AG101

    @property
    async def latest(self):
        time.sleep(1)  # AG101

    async def __aenter__(self):
        time.sleep(1)  # AG101


monitor = Monitor()
adapters = {}


def register(name):
    def decorator(cls):
        adapters[name] = cls
        return cls
    return decorator


@register("salla")
class Salla:
    async def fetch(self):
        time.sleep(1)  # AG101
""",
    "app/scripts/hourly.py": ("import asyncio\nfrom app.metrics import Aggregator\n\n"
                              "asyncio.run(Aggregator().aggregate())\n"),
}


def test_a_method_runs_only_where_its_class_is_named(tmp_path):
    """`aggregate` is written by the route, but only `Monitor` is built by what the app runs: `Aggregator`'s
    methods (one a `@cached_property`, a decorator that registers nothing) run in a script; a special method runs
    where its class is used, and a class a decorator registers (`@register("salla")`) is used where its registry
    is."""
    findings = check_tree(tmp_path, CLASSES_BUILT_AND_NOT)
    assert sorted(f.line for f in findings) == sorted(line for line, _ in expected_findings(CLASSES_BUILT_AND_NOT["app/metrics.py"]))


def route_module(path: str, extra: str = "") -> str:
    return (f"import time\nfrom fastapi import APIRouter\n\nrouter = APIRouter()\n{extra}\n\n"
            f"@router.get('/{path}')\nasync def {path}():\n    time.sleep(1)\n")


ROUTERS_MOUNTED_AND_NOT = {
    "app/__init__.py": "",
    "app/routes/__init__.py": "",
    "app/routes/users.py": route_module("users"),
    "app/routes/billing.py": route_module("billing"),
    "app/routes/nylas.py": route_module("nylas", "client = object()\n"),
    "app/routes/reports.py": route_module("reports"),
    "app/main.py": ("from fastapi import FastAPI\nfrom app.routes import users\n"
                    "from app.routes.billing import router as billing_router\nfrom app.routes.nylas import client\n"
                    "from app.routes import reports\n\napp = FastAPI()\napp.include_router(users.router)\n"
                    "app.include_router(billing_router)\n# app.include_router(nylas.router)\n"
                    "# app.include_router(reports.router)\nsend = client\n"),
}


def test_a_router_named_router_serves_where_something_mounts_it(tmp_path):
    """Every router module names its router `router`: one is mounted where its module (`users.router`) or its router
    (`router as billing_router`) is bound and used; a module whose other names alone are imported (`client`), or
    which is imported but whose mount is commented out, serves nothing."""
    found = {f.path.rpartition("app/")[2] for f in check_tree(tmp_path, ROUTERS_MOUNTED_AND_NOT)}
    assert found == {"routes/users.py", "routes/billing.py"}


TASK_RUNNING_ITS_OWN_LOOP = """\
import asyncio
import ftplib

from fastapi import FastAPI

from app.worker import celery

app = FastAPI()


@celery.task
def run_import_task(path):
    async def run_import():
        ftplib.FTP("files.example.com").retrbinary(f"RETR {path}", print)

    asyncio.run(run_import())


def make_handler():
    async def handler():
        ftplib.FTP("files.example.com")  # AG103
    return handler


app.add_api_route("/fetch", make_handler())
"""


def test_a_coroutine_a_sync_function_runs_to_completion_holds_no_loop_of_the_app():
    """`asyncio.run(run_import())` in a Celery task runs the coroutine on the worker's own loop (on the app's it
    would raise); a nested coroutine the sync function returns runs wherever it is registered."""
    assert reported(TASK_RUNNING_ITS_OWN_LOOP) == expected_findings(TASK_RUNNING_ITS_OWN_LOOP)


LAZY_SINGLETONS = """\
import os

import boto3
from jinja2 import Template

_storage = None


class StorageService:
    def __init__(self):
        os.makedirs("uploads", exist_ok=True)
        self.client = boto3.client("s3")

    def save(self, key, data):
        self.client.put_object(Bucket="files", Key=key, Body=data)


def get_storage():
    global _storage
    if _storage is None:
        _storage = StorageService()
    return _storage


async def upload(key, data):
    storage = get_storage()
    storage.save(key, data)  # AG800
    return Template("saved {{ key }}").render(key=key)
"""


def test_a_lazy_singleton_is_made_on_the_first_call_only():
    """`get_storage()` builds its service once per process (a directory made, a client built): no chain runs
    through it; what the service then does on each call still blocks. A template renders in memory."""
    assert reported(LAZY_SINGLETONS) == expected_findings(LAZY_SINGLETONS)


LAZY_MODEL = """\
from ultralytics import YOLO

_model = None


def get_model():
    global _model
    if _model is None:
        _model = YOLO("yolov8n.pt")
    return _model


async def detect(image):
    model = get_model()  # AG800
    return model(image)  # AG112
"""


def test_a_model_a_lazy_singleton_loads_holds_the_loop_on_the_first_request():
    """Unlike a client built or a directory made, a model loaded by the first request's call holds its loop for
    seconds (and so does a server asked, a vault's login)."""
    assert reported(LAZY_MODEL) == expected_findings(LAZY_MODEL)


def test_services_whose_packages_share_a_name_import_their_own(tmp_path):
    """`apps/booking-api/app/auth.py` and `apps/marketplace-api/app/auth.py` are both `app.auth` to Python: the
    booking service's `from app.auth import hash_password` is its own (bcrypt), not the other's."""
    files = {
        "app/apps/booking-api/app/__init__.py": "",
        "app/apps/booking-api/app/auth.py": ("import bcrypt\n\n\ndef hash_password(password):\n"
                                            "    return bcrypt.hashpw(password, bcrypt.gensalt())\n"),
        "app/apps/booking-api/app/main.py": ("from fastapi import FastAPI\n\nfrom app.auth import hash_password\n\n"
                                            "app = FastAPI()\n\n\n@app.post('/register')\nasync def register(p: str):\n"
                                            "    return hash_password(p)  # AG800\n"),
        "app/apps/marketplace-api/app/__init__.py": "",
        "app/apps/marketplace-api/app/auth.py": "def create_token(user):\n    return str(user)\n",
        "app/apps/marketplace-api/app/main.py": ("from fastapi import FastAPI\n\nfrom app.auth import create_token\n\n"
                                                "app = FastAPI()\n\n\n@app.post('/token')\nasync def token(u: str):\n"
                                                "    return create_token(u)\n"),
    }
    found = {(f.path.partition("/app/")[2], f.line) for f in check_tree(tmp_path, files)}
    assert found == {("apps/booking-api/app/main.py", 10)}

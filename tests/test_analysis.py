"""What runs on the event loop, and how names resolve: one behaviour per test, on small sources."""

from __future__ import annotations

import textwrap

import pytest

from asyncguard.lint.engine.checker import check_source
from conftest import expected_findings, reported


def found(source: str) -> list[tuple[int, str, str]]:
    return [(f.line, f.call, f.context) for f in check_source(textwrap.dedent(source), module="app.main")]


def calls(source: str) -> list[str]:
    return [call for _, call, _ in found(source)]


@pytest.mark.parametrize("imports,call", [
    ("from time import sleep as nap", "nap(1)"),
    ("import time as t", "t.sleep(1)"),
    ("from time import *\nimport time", "time.sleep(1)"),
])
def test_names_resolve_through_imports_and_aliases(imports, call):
    assert calls(f"{imports}\n\nasync def f():\n    {call}\n") == ["time.sleep"]


def test_from_import_of_a_function():
    assert calls("from requests import get\n\nasync def f():\n    get('u')\n") == ["requests.get"]


@pytest.mark.parametrize("shadow", [
    "def sleep(x):\n    pass\n",
    "sleep = print\n",
])
def test_a_local_definition_shadows_the_import(shadow):
    assert calls(f"from time import sleep\n{shadow}\nasync def f():\n    sleep(1)\n") == []


def test_a_parameter_or_local_variable_shadows_a_module():
    source = """
        import requests

        async def f(requests):
            requests.get("u")

        async def g():
            requests = FakeClient()
            requests.get("u")
    """
    assert calls(source) == []


def test_nested_def_does_not_switch_checking_off_for_the_rest_of_the_function():
    source = """
        import time

        async def f():
            def key(item):
                return item
            sorted([], key=key)
            time.sleep(1)
    """
    assert found(source) == [(8, "time.sleep", "async function f")]


def test_nested_sync_function_runs_on_the_loop_only_when_called_there():
    source = """
        import asyncio, time

        async def called():
            def helper():
                time.sleep(1)
            helper()

        async def offloaded():
            def helper():
                time.sleep(1)
            await asyncio.to_thread(helper)
    """
    assert found(source) == [(6, "time.sleep", "nested function helper (in async function called)")]


@pytest.mark.parametrize("offload", [
    "await asyncio.to_thread(lambda: time.sleep(1))",
    "await asyncio.get_running_loop().run_in_executor(None, lambda: time.sleep(1))",
    "await run_in_threadpool(lambda: time.sleep(1))",
    "await anyio.to_thread.run_sync(lambda: time.sleep(1))",
    "background_tasks.add_task(lambda: time.sleep(1))",
    "await asyncio.to_thread(time.sleep, 1)",
])
def test_offloaded_callables_are_not_reported(offload):
    source = f"""
        import asyncio, time, anyio
        from fastapi.concurrency import run_in_threadpool

        async def f(background_tasks):
            {offload}
    """
    assert calls(source) == []


def test_a_lambda_run_on_the_loop_is_reported():
    assert calls("import time\n\nasync def f():\n    run = lambda: time.sleep(1)\n    run()\n") == ["time.sleep"]


def test_module_level_code_and_main_guard_and_sync_functions_are_not_reported():
    source = """
        import asyncio, time
        time.sleep(1)

        def sync_handler():
            time.sleep(1)

        if __name__ == "__main__":
            asyncio.run(main())
    """
    assert calls(source) == []


def test_awaited_calls_are_async_apis():
    source = """
        from sqlalchemy.orm import Session

        async def f(db: Session):
            await db.execute("select 1")
    """
    assert calls(source) == []


@pytest.mark.parametrize("annotation,expected", [
    ("from sqlalchemy.orm import Session\n", ["sqlalchemy.orm.Session.execute"]),
    ("from sqlalchemy.orm import Session as S\nSession = S\n", ["sqlalchemy.orm.Session.execute"]),
    ("from sqlalchemy.ext.asyncio import AsyncSession as Session\n", []),
    ("from typing import Optional\nfrom sqlalchemy.orm import Session\nSession = Optional[Session]\n",
     ["sqlalchemy.orm.Session.execute"]),
])
def test_parameter_annotations_type_method_calls(annotation, expected):
    assert calls(f"{annotation}\nasync def f(db: Session):\n    db.execute('q')\n") == expected


@pytest.mark.parametrize("client,expected", [
    ("import redis\ncache = redis.Redis()", ["redis.Redis.get"]),
    ("import redis.asyncio as redis\ncache = redis.Redis()", []),
    ("from redis.asyncio import Redis\ncache = Redis()", []),
])
def test_sync_and_async_redis(client, expected):
    assert calls(f"{client}\n\nasync def f():\n    cache.get('k')\n") == expected


def test_objects_on_self_are_typed():
    source = """
        import requests

        class Gateway:
            def __init__(self):
                self.session = requests.Session()

            async def charge(self):
                self.session.post("u")
    """
    assert found(source) == [(9, "requests.Session.post", "method Gateway.charge")]


def test_non_blocking_forms_of_thread_primitives():
    source = """
        import queue, threading, time
        q = queue.Queue()
        lock = threading.Lock()

        def refill():
            with lock:  # a critical section that blocks: taking the lock on the loop waits for it
                time.sleep(1)

        async def f():
            q.get(block=False)
            q.get(False)
            q.get_nowait()
            lock.acquire(blocking=False)
            lock.acquire(timeout=0)
            lock.acquire()
    """
    assert calls(source) == ["threading.Lock.acquire"]


@pytest.mark.parametrize("decorator,context", [
    ('@app.get("/users/{user_id}")', "path operation GET /users/{user_id}"),
    ('@router.post("/")', "path operation POST /items/"),
    ('@app.api_route("/x", methods=["GET", "POST"])', "path operation GET,POST /x"),
    ('@app.websocket("/ws")', "websocket handler /ws"),
    ('@app.middleware("http")', "middleware"),
    ('@app.exception_handler(ValueError)', "exception handler"),
    ('@app.on_event("startup")', "startup handler"),
])
def test_context_names_where_fastapi_runs_the_function(decorator, context):
    source = f"""
        import time
        from fastapi import APIRouter, FastAPI
        app = FastAPI()
        router = APIRouter(prefix="/items")

        {decorator}
        async def handler():
            time.sleep(1)
    """
    assert [c for _, _, c in found(source)] == [context]


def test_contexts_declared_by_reference():
    source = """
        import time
        from contextlib import asynccontextmanager
        from fastapi import Depends, FastAPI, BackgroundTasks
        from fastapi.responses import StreamingResponse
        from starlette.middleware.base import BaseHTTPMiddleware

        async def get_db():
            time.sleep(1)

        async def notify():
            time.sleep(1)

        async def stream():
            time.sleep(1)
            yield b""

        @asynccontextmanager
        async def startup_and_shutdown(app):
            time.sleep(1)
            yield

        class Timing(BaseHTTPMiddleware):
            async def dispatch(self, request, call_next):
                time.sleep(1)
                return await call_next(request)

        app = FastAPI(lifespan=startup_and_shutdown)

        @app.get("/")
        async def index(tasks: BackgroundTasks, db=Depends(get_db)):
            tasks.add_task(notify)
            return StreamingResponse(stream())
    """
    assert [c for _, _, c in found(source)] == [
        "dependency get_db", "background task notify", "streaming response generator stream", "lifespan",
        "middleware Timing",
    ]


def test_with_lock_blocks_but_async_with_does_not():
    source = """
        import asyncio, subprocess, threading
        lock = threading.RLock()
        alock = asyncio.Lock()

        def rebuild():
            with lock:
                subprocess.run(["make"])

        async def f():
            async with alock:
                pass
            with lock:
                pass
    """
    assert found(source) == [(13, "threading.Lock.acquire", "async function f")]


def test_one_finding_per_chained_statement():
    source = """
        import sqlite3

        async def f(conn: sqlite3.Connection):
            conn.execute("select 1").fetchall()
    """
    assert calls(source) == ["sqlite3.Connection.execute"]


SDK_CASES = {
    "supabase table query": ("""\
from supabase import create_client, Client
supabase: Client = create_client("url", "key")

async def f(user_id):
    return supabase.table("posts").select("*").eq("user_id", user_id).order("at").execute()  # AG106
""", True),
    "supabase storage and auth": ("""\
from supabase import create_client
client = create_client("url", "key")

async def f(token, data):
    client.auth.get_user(token)  # AG107
    client.storage.from_("photos").upload(path="a.jpg", file=data)  # AG107
    return client.storage.from_("photos").get_public_url("a.jpg")
""", True),
    "supabase's async client": ("""\
from supabase import acreate_client

async def f():
    client = await acreate_client("url", "key")
    return await client.table("posts").select("*").execute()
""", False),
    "firestore document": ("""\
from firebase_admin import firestore
db = firestore.client()

async def f(uid):
    return db.collection("users").document(uid).get()  # AG106
""", True),
    "a LangChain chain built with |": ("""\
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

prompt = ChatPromptTemplate.from_template("Summarise {text}")
chain = prompt | ChatOpenAI(model="gpt-4o-mini")

async def f(text):
    return chain.invoke({"text": text})  # AG102
""", True),
    "LangChain's async methods": ("""\
from langchain_openai import ChatOpenAI
llm = ChatOpenAI()

async def f(text):
    return await llm.ainvoke(text)
""", False),
    "Google API discovery client": ("""\
from googleapiclient.discovery import build

async def f(creds, service=None):
    drive = build("drive", "v3", credentials=creds)  # AG107
    return drive.files().list(pageSize=10).execute()  # AG107
""", True),
    "Playwright's sync API": ("""\
from playwright.sync_api import sync_playwright

async def f(url):
    with sync_playwright() as p:  # AG105
        browser = p.chromium.launch()  # AG105
        page = browser.new_page()  # AG105
        page.goto(url)  # AG105
""", True),
    "ffmpeg-python and Pillow": ("""\
import ffmpeg
from PIL import Image

async def f(src):
    ffmpeg.input(src).output("out.mp4").run()  # AG105
    Image.open(src).convert("RGB").save("out.png")  # AG104
""", True),
}


@pytest.mark.parametrize("name", SDK_CASES)
def test_blocking_sdk_clients_and_their_async_twins(name):
    text, blocks = SDK_CASES[name]
    assert reported(text) == expected_findings(text)
    assert bool(expected_findings(text)) == blocks


def test_a_session_from_a_context_manager_method_with_a_bare_generator_annotation():
    text = """\
from contextlib import contextmanager
from typing import Generator
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


class DatabaseManager:
    def __init__(self, url):
        self.SessionLocal = None
        self._setup(url)

    def _setup(self, url):
        self.SessionLocal = sessionmaker(bind=create_engine(url))

    @contextmanager
    def get_session(self) -> Generator:
        session = self.SessionLocal()
        yield session


db = DatabaseManager("sqlite://")


async def count(model):
    with db.get_session() as session:
        return session.query(model).count()  # AG106
"""
    assert reported(text) == expected_findings(text)


def test_loop_and_comprehension_targets_take_the_item_type():
    text = """\
from pathlib import Path
root = Path("storage")


async def sizes():
    for path in root.rglob("*"):  # AG104
        if path.is_file():  # AG104
            yield path.name
    return [
        p.name
        for p in root.iterdir()  # AG104
        if p.is_dir()  # AG104
    ]
"""
    assert reported(text) == expected_findings(text)


def test_a_property_is_typed_by_what_it_returns():
    text = """\
import httpx
from functools import cached_property


class Gateway:
    @property
    def http(self) -> httpx.Client:
        return httpx.Client(base_url="https://gateway.example")

    @cached_property
    def session(self):
        return httpx.Client()

    async def charge(self, amount):
        self.http.post("/charge", json={"amount": amount})  # AG102
        return self.session.get("/status")  # AG102
"""
    assert reported(text) == expected_findings(text)


def test_a_subscripted_client_reads_as_written():
    (finding,) = check_source("from pymongo import MongoClient\ndb = MongoClient()['app']\n\n\n"
                              "async def user(email):\n    return db.users.find_one({'email': email})\n")
    assert finding.code == "AG106" and "`pymongo.MongoClient[...].users.find_one()`" in finding.message


@pytest.mark.parametrize("imports, specifier", [
    ("from pydantic import Field", "Field(default_factory=lambda: Path('data'), alias='DATA_DIR')"),
    ("from pydantic.fields import Field", "Field(default=Path('data'))"),
    ("from sqlmodel import Field", "Field(default=None, nullable=True)"),
    ("import dataclasses", "dataclasses.field(default_factory=lambda: Path('data'))"),
    ("import attrs", "attrs.field(factory=lambda: Path('data'))"),
    ("import attr", "attr.ib(default=None)"),
])
def test_a_class_attribute_declared_with_a_field_specifier_has_its_annotation_type(imports, specifier):
    """`data_dir: Path = Field(...)` is a Path on the instance: the specifier only describes the field."""
    text = f"""\
from pathlib import Path
{imports}


class Settings:
    data_dir: Path = {specifier}


settings = Settings()


async def namespaces():
    base = settings.data_dir / "namespaces"
    base.mkdir(exist_ok=True)  # AG104
"""
    assert reported(text) == expected_findings(text)


def test_loops_through_pass_through_builtins_take_the_item_type():
    """`sorted`, `list`, `reversed`, `tuple` hand on the items of what they are given; `enumerate` pairs them with
    an index (its second target)."""
    text = """\
from pathlib import Path
root = Path("storage")


async def accounts():
    for p in sorted(root.glob("*.json")):  # AG104
        print(p.read_text(encoding="utf-8"))  # AG104


async def purge():
    for p in reversed(list(root.iterdir())):  # AG104
        p.unlink()  # AG104


async def numbered():
    for index, p in enumerate(tuple(root.rglob("*.md")), start=1):  # AG104
        print(index, p.read_bytes())  # AG104


async def names():
    return [
        p.read_text()  # AG104
        for p in sorted(root.iterdir())  # AG104
    ]


async def shadowed(items):
    def sorted(values):
        return items
    for p in sorted(root.glob("*")):  # AG104
        p.unlink()  # a local `sorted`: not the builtin, nothing known of what it returns
"""
    assert reported(text) == expected_findings(text)

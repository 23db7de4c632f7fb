"""Resolution on real code: what a name, attribute or awaited call refers to, across the project's modules.

Each case is a small service laid out as real ones are (models, repositories, services, routers); the marked lines
(`# AG...`) are exactly what must be reported.
"""

from __future__ import annotations

from pathlib import Path

from asyncguard.lint.interface.config import Settings
from asyncguard.lint.interface.files import DEFAULT_EXCLUDES, discover
from asyncguard.lint.interface.runner import run
from conftest import expected_findings


def check(root: Path, files: dict[str, str]):
    """The findings on a tree, and the ones its files mark inline, both as (file, line, code)."""
    for name, text in {"app/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    findings = run(list(discover([str(root / "app")], root, [])), Settings(project_root=root),
                   use_cache=False).findings
    reported = {(Path(f.path).resolve().relative_to(root.resolve()).as_posix(), f.line, f.code) for f in findings}
    expected = {(name, line, code) for name, text in files.items() for line, code in expected_findings(text)}
    return reported, expected, findings


def test_a_concrete_assignment_wins_over_a_protocol_annotation(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/ports.py": ("from typing import Protocol\n\n\nclass Mailer(Protocol):\n"
                         "    def send(self, to: str, body: str) -> None: ...\n"),
        "app/smtp.py": ("import smtplib\n\n\nclass SmtpMailer:\n    def send(self, to, body):\n"
                        "        with smtplib.SMTP('mail') as smtp:\n            smtp.sendmail('a', [to], body)\n"),
        "app/service.py": ("from app.ports import Mailer\nfrom app.smtp import SmtpMailer\n\n\n"
                           "class Notifier:\n    mailer: Mailer\n\n    def __init__(self):\n"
                           "        self.mailer = SmtpMailer()\n\n"
                           "    async def welcome(self, to):\n        self.mailer.send(to, 'hi')  # AG800\n"),
    })
    assert reported == expected


def test_a_protocol_method_resolves_through_its_implementations(tmp_path):
    """One implementation: its method runs. Several: the call blocks if every one of them does (whichever runs)."""
    reported, expected, findings = check(tmp_path, {
        "app/ports.py": ("from typing import Protocol\n\n\nclass UserRepository(Protocol):\n"
                         "    def get(self, user_id: int) -> dict: ...\n\n\n"
                         "class Clock(Protocol):\n    def now(self) -> float: ...\n\n\n"
                         "class Store(Protocol):\n    def load(self) -> bytes: ...\n"),
        "app/sql.py": ("import sqlite3\nfrom app.ports import UserRepository\n\n\n"
                       "class SqliteUserRepository(UserRepository):\n    def get(self, user_id):\n"
                       "        return sqlite3.connect('app.db').execute('select 1').fetchone()\n"),
        "app/clocks.py": ("import time\n\n\nclass SleepyClock:\n    def now(self):\n        time.sleep(1)\n"
                          "        return time.time()\n\n\nclass WallClock:\n    def now(self):\n"
                          "        return time.time()\n"),
        "app/stores.py": ("from pathlib import Path\n\n\nclass DiskStore:\n    def load(self):\n"
                          "        return Path('blob').read_bytes()\n\n\nclass CopyStore:\n    def load(self):\n"
                          "        return Path('copy').read_bytes()\n"),
        "app/routes.py": ("from app.ports import Clock, Store, UserRepository\n\n\n"
                          "async def profile(repo: UserRepository, user_id: int):\n"
                          "    return repo.get(user_id)  # AG800\n\n\n"
                          "async def now(clock: Clock):\n    return clock.now()  # one of two blocks: unknown\n\n\n"
                          "async def blob(store: Store):\n    return store.load()  # AG800\n"),
    })
    assert reported == expected
    by_line = {finding.line: finding for finding in findings}
    assert [step["name"] for step in by_line[5].chain] == ["app.sql.SqliteUserRepository.get", "sqlite3.connect"]
    assert [step["name"] for step in by_line[13].chain][0] == "app.ports.Store.load"


def test_a_subscripted_generic_base_keeps_its_methods(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/base.py": ("from typing import Generic, TypeVar\n\nT = TypeVar('T')\n\n\n"
                        "class Repository(Generic[T]):\n    def __init__(self, session):\n"
                        "        self.session = session\n\n    def all(self):\n"
                        "        import requests\n        return requests.get('https://store.example/items').json()\n"),
        "app/users.py": ("from app.base import Repository\n\n\nclass User:\n    pass\n\n\n"
                         "class UserRepository(Repository[User]):\n    pass\n\n\n"
                         "async def list_users(session):\n    return UserRepository(session).all()  # AG800\n"),
    })
    assert reported == expected


def test_attributes_properties_and_class_attributes_come_from_project_base_classes(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/clients.py": ("import httpx\nimport redis\nimport requests\n\n\nclass BaseClient:\n"
                           "    cache = redis.Redis(host='cache')\n\n    def __init__(self):\n"
                           "        self.session = requests.Session()\n\n    @property\n"
                           "    def http(self) -> httpx.Client:\n        return httpx.Client()\n"),
        "app/billing.py": ("from app.clients import BaseClient\n\n\nclass BillingClient(BaseClient):\n"
                           "    async def charge(self, cents):\n"
                           "        self.session.post('https://pay.example', json={'cents': cents})  # AG102\n"
                           "        self.http.get('https://pay.example/status')  # AG102\n"
                           "        return self.cache.get('last')  # AG106\n"),
    })
    assert reported == expected


def test_request_state_attributes_assigned_in_a_middleware(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ("from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\n"
                      "SessionLocal = sessionmaker(bind=create_engine('sqlite://'))\n"),
        "app/main.py": ("from fastapi import FastAPI, Request\nfrom app.db import SessionLocal\nfrom app.routes import router\n\n"
                        "app = FastAPI()\napp.include_router(router)\n\n\n"
                        "@app.middleware('http')\nasync def db_session(request: Request, call_next):\n"
                        "    request.state.db = SessionLocal()\n    response = await call_next(request)\n"
                        "    request.state.db.close()  # AG106\n    return response\n"),
        "app/routes.py": ("from fastapi import APIRouter, Request\n\nrouter = APIRouter()\n\n\n"
                          "@router.post('/orders')\nasync def create(request: Request):\n"
                          "    request.state.db.commit()  # AG106\n    return {'ok': True}\n\n\n"
                          "@router.get('/version')\nasync def version(request: Request):\n"
                          "    return request.app.state.version\n"),
    })
    assert reported == expected


def test_an_awaited_project_coroutine_returns_its_type(tmp_path):
    reported, expected, findings = check(tmp_path, {
        "app/models.py": ("import bcrypt\n\n\nclass User:\n    def __init__(self, digest):\n"
                          "        self.digest = digest\n\n    def verify(self, password):\n"
                          "        return bcrypt.checkpw(password.encode(), self.digest)\n"),
        "app/repo.py": ("from app.models import User\n\n\nclass UserRepo:\n    async def get(self, email) -> User:\n"
                        "        return User(b'')\n\n    async def find(self, email):\n        return User(b'')\n"),
        "app/routes.py": ("from app.repo import UserRepo\n\nrepo = UserRepo()\n\n\n"
                          "async def login(email, password):\n    user = await repo.get(email)\n"
                          "    return user.verify(password)  # AG800\n\n\n"
                          "async def login_inferred(email, password):\n    user = await repo.find(email)\n"
                          "    return user.verify(password)  # AG800\n"),
    })
    assert reported == expected
    assert {finding.chain[-1]["name"] for finding in findings} == {"bcrypt.checkpw"}


def test_a_call_on_self_runs_the_override_of_the_class_it_is_made_on(tmp_path):
    """Template method: the base's `run` calls `self.fetch()`; which `fetch` runs depends on the instance."""
    reported, expected, findings = check(tmp_path, {
        "app/jobs/base.py": ("class Job:\n    def run(self):\n        data = self.fetch()\n"
                             "        return self.store(data)\n\n    def fetch(self):\n        raise NotImplementedError\n\n"
                             "    def store(self, data):\n        return data\n"),
        "app/jobs/prices.py": ("import requests\nfrom app.jobs.base import Job\n\n\nclass PriceJob(Job):\n"
                               "    def fetch(self):\n        return requests.get('https://prices.example').json()\n\n\n"
                               "class StaticJob(Job):\n    def fetch(self):\n        return {}\n"),
        "app/routes.py": ("from app.jobs.prices import PriceJob, StaticJob\n\n\n"
                          "async def refresh():\n    return PriceJob().run()  # AG800\n\n\n"
                          "async def static():\n    return StaticJob().run()\n"),
    })
    assert reported == expected
    (finding,) = findings
    assert [step["name"] for step in finding.chain] == [
        "app.jobs.base.Job.run", "app.jobs.prices.PriceJob.fetch", "requests.get"]


def test_an_inherited_constructor_runs_the_override_of_the_class_being_built(tmp_path):
    """A base `__init__` calls `self.create_client()`, which the subclass overrides: building the subclass runs
    the override, directly from a route or from a sync helper the route calls."""
    reported, expected, findings = check(tmp_path, {
        "app/clients/base.py": ("class BaseClient:\n    def __init__(self, url):\n"
                                "        self.client = self.create_client(url)\n\n"
                                "    def create_client(self, url):\n        return None\n"),
        "app/clients/vault.py": ("import requests\nfrom app.clients.base import BaseClient\n\n\n"
                                 "class VaultClient(BaseClient):\n    def create_client(self, url):\n"
                                 "        session = requests.Session()\n"
                                 "        session.post(url + '/v1/auth/approle/login')\n        return session\n\n\n"
                                 "class NullClient(BaseClient):\n    pass\n\n\n"
                                 "def vault_client():\n    return VaultClient('https://vault')\n"),
        "app/routes.py": ("import time\nfrom app.clients.vault import NullClient, VaultClient, vault_client\n\n\n"
                          "class SlowClient(NullClient):\n    def create_client(self, url):\n"
                          "        time.sleep(1)\n\n\n"
                          "async def secrets():\n    return VaultClient('https://vault')  # AG800\n\n\n"
                          "async def from_helper():\n    return vault_client()  # AG800\n\n\n"
                          "async def slow():\n    return SlowClient('x')  # AG800\n\n\n"
                          "async def null():\n    return NullClient('x')\n"),
    })
    assert reported == expected
    assert {tuple(step["name"] for step in finding.chain[:2]) for finding in findings} == {
        ("app.clients.base.BaseClient.__init__", "app.clients.vault.VaultClient.create_client"),
        ("app.clients.vault.vault_client", "app.clients.base.BaseClient.__init__"),
        ("app.clients.base.BaseClient.__init__", "app.routes.SlowClient.create_client")}


def test_star_imports_more_than_one_level_deep(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/services/__init__.py": "from .all import *\n",
        "app/services/all.py": "from .media import *\nfrom .mail import *\n",
        "app/services/media.py": "import subprocess\n\n\ndef convert(path):\n    subprocess.run(['ffmpeg', '-i', path])\n",
        "app/services/mail.py": "import time\n\n\ndef send(to):\n    time.sleep(1)\n",
        "app/routes.py": ("from app.services import *\n\n\nasync def upload(path):\n    convert(path)  # AG800\n\n\n"
                          "async def notify(to):\n    send(to)  # AG800\n"),
    })
    assert reported == expected


def test_a_settings_field_declared_with_field_keeps_its_annotation_type(tmp_path):
    """pydantic-settings: `data_dir: Path = Field(default_factory=..., alias=...)`, used from another module."""
    reported, expected, _ = check(tmp_path, {
        "app/config.py": ("from pathlib import Path\n\nfrom pydantic import Field\n"
                          "from pydantic_settings import BaseSettings\n\n\nclass Settings(BaseSettings):\n"
                          "    data_dir: Path = Field(default_factory=lambda: Path('data'), alias='DATA_DIR')\n\n\n"
                          "settings = Settings()\n"),
        "app/namespaces.py": ("from app.config import settings\n\n\ndef list_namespaces():\n"
                              "    base_dir = settings.data_dir / 'namespaces'\n"
                              "    return [p.name for p in base_dir.iterdir()]\n"),
        "app/routes.py": ("from app.config import settings\nfrom app.namespaces import list_namespaces\n\n\n"
                          "async def namespaces():\n    return list_namespaces()  # AG800\n\n\n"
                          "async def upload_dir():\n"
                          "    (settings.data_dir / 'uploads').mkdir(exist_ok=True)  # AG104\n"),
    })
    assert reported == expected


BASE_SERVICE = (
    "from typing import Generic, TypeVar\n\nfrom sqlalchemy.orm import Session\n\nModelType = TypeVar('ModelType')\n\n\n"
    "class BaseService(Generic[ModelType]):\n    def __init__(self, model):\n        self.model = model\n\n"
    "    def get(self, db: Session, id: int):\n        return db.query(self.model).filter(self.model.id == id).first()\n\n"
    "    def create(self, db: Session, obj_in: dict):\n        obj = self.model(**obj_in)\n        db.add(obj)\n"
    "        db.commit()\n        return obj\n")


def test_super_calls_resolve_to_the_method_of_a_project_base_class(tmp_path):
    """`super().get(db, id)` runs the base's `get` exactly as `self.get(db, id)` would where it is not overridden."""
    reported, expected, findings = check(tmp_path, {
        "app/services/__init__.py": "",
        "app/services/base.py": BASE_SERVICE,
        "app/services/users.py": (
            "from app.models import User\nfrom app.services.base import BaseService\n\n\n"
            "class UserService(BaseService[User]):\n    def __init__(self):\n        super().__init__(User)\n\n"
            "    def get_by_id(self, db, id):\n        return super().get(db, id)\n\n"
            "    def register(self, db, data):\n        return super(UserService, self).create(db, data)\n\n\n"
            "user_service = UserService()\n"),
        "app/models.py": "class User:\n    id = 0\n",
        "app/routes.py": (
            "from fastapi import APIRouter\n\nfrom app.services.users import user_service\n\nrouter = APIRouter()\n\n\n"
            "@router.get('/users/{id}')\nasync def read_user(id: int, db):\n"
            "    return user_service.get_by_id(db, id)  # AG800\n\n\n"
            "@router.post('/users')\nasync def create_user(data: dict, db):\n"
            "    return user_service.register(db, data)  # AG800\n"),
    })
    assert reported == expected
    chains = sorted([step["name"] for step in finding.chain] for finding in findings)
    assert chains == [
        ["app.services.users.UserService.get_by_id", "app.services.base.BaseService.get", "sqlalchemy.orm.Query.first"],
        ["app.services.users.UserService.register", "app.services.base.BaseService.create",
         "sqlalchemy.orm.Session.commit"],
    ]


def test_super_follows_the_method_resolution_order_to_the_class_that_defines_the_method(tmp_path):
    """`class Child(AuditMixin, SqliteStore)`: `super().__init__` skips the mixin that defines none, and reaches
    the base of a base that does; a third-party base's method is the knowledge base's."""
    reported, expected, findings = check(tmp_path, {
        "app/stores.py": (
            "import sqlite3\n\n\nclass SqliteStore:\n    def __init__(self, path):\n"
            "        self.conn = sqlite3.connect(path)\n\n\nclass NamedStore(SqliteStore):\n    name = 'store'\n\n\n"
            "class AuditMixin:\n    def audit(self, event):\n        return event\n"),
        "app/orders.py": (
            "import requests\n\nfrom app.stores import AuditMixin, NamedStore\n\n\n"
            "class OrderStore(AuditMixin, NamedStore):\n    def __init__(self):\n"
            "        super().__init__('orders.db')\n\n\n"
            "class TimeoutSession(requests.Session):\n    def get(self, url, **kwargs):\n"
            "        return super().get(url, timeout=5, **kwargs)\n\n"
            "    async def status(self, url):\n        return super().get(url)  # AG102\n"),
        "app/routes.py": (
            "from app.orders import OrderStore, TimeoutSession\n\n\nasync def list_orders():\n"
            "    return OrderStore()  # AG800\n\n\nasync def ping():\n"
            "    return TimeoutSession().get('https://status.example')  # AG800\n"),
    })
    assert reported == expected
    chains = sorted([step["name"] for step in finding.chain] for finding in findings if finding.code == "AG800")
    assert chains == [["app.orders.OrderStore.__init__", "app.stores.SqliteStore.__init__", "sqlite3.connect"],
                      ["app.orders.TimeoutSession.get", "requests.Session.get"]]


def test_a_super_call_of_a_method_no_known_base_defines_resolves_to_nothing(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/views.py": (
            "import time\n\nfrom pydantic import BaseModel\n\n\nclass Throttle:\n    def wait(self):\n"
            "        time.sleep(1)\n\n\nclass Item(BaseModel):\n    def wait(self):\n"
            "        return super().wait()\n\n\n"
            "async def show(item: Item):\n    return item.wait()\n"),
    })
    assert reported == expected == set()


ASYNC_DB = ("from typing import AsyncIterator\n\n"
            "from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine\n\n"
            "engine = create_async_engine('postgresql+asyncpg://app@db/app')\n\n\n"
            "async def get_db() -> AsyncIterator[AsyncSession]:\n    async with AsyncSession(engine) as session:\n"
            "        yield session\n\n\nasync def get_session():\n    async with AsyncSession(engine) as session:\n"
            "        yield session\n")


def test_what_a_dependency_yields_wins_over_the_parameter_annotation(tmp_path):
    """`db: Session = Depends(get_db)` where `get_db` yields an AsyncSession: the session is an AsyncSession (code
    that uses it as a Session fails rather than blocks)."""
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ASYNC_DB,
        "app/crud.py": "def get_user(db, user_id):\n    return db.query(dict).filter_by(id=user_id).first()\n",
        "app/routes.py": (
            "from typing import Annotated\n\nfrom fastapi import APIRouter, Depends\n"
            "from sqlalchemy.orm import Session\n\nfrom app import crud\nfrom app.db import get_db, get_session\n\n"
            "router = APIRouter()\n\n\n"
            "@router.get('/users/{user_id}')\nasync def read_user(user_id: int, db: Session = Depends(get_db)):\n"
            "    db.close()\n    return crud.get_user(db, user_id)\n\n\n"
            "@router.delete('/users/{user_id}')\n"
            "async def delete_user(user_id: int, db: Annotated[Session, Depends(get_session)]):\n"
            "    db.commit()\n    return crud.get_user(db, user_id)\n"),
    })
    assert reported == expected == set()


def test_a_dependency_of_unknown_type_keeps_the_parameter_annotation(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ("from app.vendor import make_session\n\n\ndef get_db():\n    db = make_session()\n    try:\n"
                      "        yield db\n    finally:\n        db.close()\n"),
        "app/routes.py": (
            "from fastapi import APIRouter, Depends\nfrom sqlalchemy.orm import Session\n\n"
            "from app.db import get_db\n\nrouter = APIRouter()\n\n\n"
            "@router.post('/orders')\nasync def create_order(db: Session = Depends(get_db)):\n"
            "    db.commit()  # AG106\n"),
    })
    assert reported == expected



def test_a_dependency_yielding_from_an_async_sessionmaker_is_an_async_session(tmp_path):
    """The common form: `async with AsyncSessionLocal() as session: yield session`, annotated `db: Session`."""
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ("from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine\n\n"
                      "AsyncSessionLocal = async_sessionmaker(create_async_engine('sqlite+aiosqlite://'))\n\n\n"
                      "async def get_db():\n    async with AsyncSessionLocal() as session:\n        yield session\n"),
        "app/routes.py": (
            "from fastapi import APIRouter, Depends\nfrom sqlalchemy.orm import Session\n\n"
            "from app.db import get_db\n\nrouter = APIRouter()\n\n\n"
            "@router.get('/orders')\nasync def list_orders(db: Session = Depends(get_db)):\n"
            "    return db.query(dict).all()\n"),
    })
    assert reported == expected == set()


def test_a_context_manager_made_by_calling_contextmanager_yields_what_the_generator_does(tmp_path):
    """`get_db_manager = contextmanager(get_db)` (not `@contextmanager`), `get_db` wrapped by a retry decorator:
    `with get_db_manager() as db` gives the Session `get_db` yields."""
    from asyncguard.lint.interface.config import Settings
    from asyncguard.lint.interface.files import discover
    from asyncguard.lint.interface.runner import run

    files = {
        "app/__init__.py": "",
        "app/database.py": (
            "import functools\nfrom contextlib import contextmanager\n\nfrom sqlalchemy.orm import sessionmaker\n\n"
            "SessionLocal = sessionmaker()\n\n\ndef retry(attempts=3):\n    def decorator(func):\n"
            "        @functools.wraps(func)\n        def wrapper(*args, **kwargs):\n"
            "            yield next(func(*args, **kwargs))\n        return wrapper\n    return decorator\n\n\n"
            "@retry()\ndef get_db():\n    yield SessionLocal()\n\n\nget_db_manager = contextmanager(get_db)\n"),
        "app/handlers.py": ("from app.database import get_db_manager\n\n\nasync def on_event(sid):\n"
                            "    with get_db_manager() as db:\n        return db.query(int).first()\n"),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    findings = run(list(discover([str(tmp_path / "app")], tmp_path, [])), Settings(project_root=tmp_path)).findings
    assert [(f.path.rsplit("/", 1)[-1], f.line, f.code, f.call) for f in findings] == [
        ("handlers.py", 6, "AG106", "sqlalchemy.orm.Query.first")]


def test_a_conditional_or_defaulted_value_has_the_type_of_its_branches(tmp_path):
    """`Path(path) if path else DEFAULT_PATH` and `store or VectorStore()`: either branch's type, so what is later
    called on the attribute is resolved."""
    reported, expected, _ = check(tmp_path, {
        "app/config.py": ("from pathlib import Path\n\nDEFAULT = Path('/etc/app.yaml')\n\n\n"
                          "class ConfigManager:\n    def __init__(self, path=None):\n"
                          "        self.path = Path(path) if path else DEFAULT\n\n"
                          "    def mtime(self):\n        return self.path.stat().st_mtime\n"),
        "app/store.py": ("import sqlite3\n\n\nclass VectorStore:\n    def index(self, rows):\n"
                         "        sqlite3.connect('v.db').executemany('insert', rows)\n\n\n"
                         "class Indexer:\n    def __init__(self, store=None):\n"
                         "        self.store = store or VectorStore()\n"),
        "app/routes.py": ("from app.config import ConfigManager\nfrom app.store import Indexer\n\n\n"
                          "async def reload(manager: ConfigManager):\n    return manager.mtime()  # AG800\n\n\n"
                          "async def index(indexer: Indexer, rows):\n    indexer.store.index(rows)  # AG800\n"),
    })
    assert reported == expected


def test_what_is_done_with_an_open_file_is_file_io_and_an_in_memory_one_is_not(tmp_path):
    """Each read and write of a file `open()` gave blocks, as does `json.dump` into it; a `StringIO` does not."""
    reported, expected, _ = check(tmp_path, {
        "app/routes.py": ("import io\nimport json\n\n\nasync def save(path: str, data: dict):\n"
                          "    with open(path, 'w') as out:  # AG104\n        json.dump(data, out)  # AG104\n"
                          "        out.write('\\n')  # AG104\n    buffer = io.StringIO()\n"
                          "    json.dump(data, buffer)\n    buffer.write('\\n')\n    return buffer.getvalue()\n"),
    })
    assert reported == expected


def test_reading_a_property_runs_its_getter(tmp_path):
    """`settings.config` where `config` is a property that reads a file: the read is a call, on the loop and in a
    helper, and inherited properties too; an attribute that is not a property is no call."""
    reported, expected, findings = check(tmp_path, {
        "app/config.py": ("import json\nfrom functools import cached_property\n\n\nclass Settings:\n"
                          "    name = 'app'\n\n    @property\n    def config(self):\n"
                          "        with open('app.json') as f:\n            return json.loads(f.read())\n\n"
                          "    @cached_property\n    def model_name(self):\n        return self.config['model']\n\n\n"
                          "class ServiceSettings(Settings):\n    pass\n"),
        "app/routes.py": ("from app.config import ServiceSettings, Settings\n\n\n"
                          "async def show(settings: Settings):\n    return settings.config  # AG800\n\n\n"
                          "async def model(settings: ServiceSettings):\n"
                          "    return settings.model_name, settings.name  # AG800\n"),
    })
    assert reported == expected
    assert [f.suggestion.split(",")[0] for f in findings] == ["`await asyncio.to_thread(lambda: settings.config)`",
                                                             "`await asyncio.to_thread(lambda: settings.model_name)`"]


def test_a_helper_nested_in_an_app_factory_is_followed_from_the_routes_beside_it(tmp_path):
    """`def create_app(): def _top(): ...; @app.get(...) async def top(): return _top()`: the helper is summarised
    under its own name, defined before or after the route; a nested generator's body runs where it is iterated."""
    reported, expected, _ = check(tmp_path, {
        "app/main.py": ("import sqlite3\nimport time\nfrom fastapi import FastAPI\nfrom fastapi.responses import "
                        "StreamingResponse\n\n\ndef create_app():\n    app = FastAPI()\n\n"
                        "    @app.get('/top')\n    async def top(gid: int):\n        return _top(gid)  # AG800\n\n"
                        "    def _top(gid):\n        with sqlite3.connect('x.db') as c:\n"
                        "            return c.execute('select 1').fetchall()\n\n"
                        "    def _ticks():\n        time.sleep(1)\n        yield b'tick'\n\n"
                        "    @app.get('/ticks')\n    async def ticks():\n        return StreamingResponse(_ticks())\n\n"
                        "    return app\n"),
    })
    assert reported == expected


def test_a_celery_task_sent_from_the_loop_publishes_to_the_broker(tmp_path):
    """`@celery.task`, `@celery.task(bind=True)` and `@shared_task` make the function a Task: `.delay()` and
    `.apply_async()` on it block on the broker; calling another decorated function does not."""
    reported, expected, _ = check(tmp_path, {
        "app/tasks.py": ("import functools\nfrom celery import Celery, shared_task\n\n"
                         "celery = Celery('app', broker='redis://')\n\n\n@celery.task\ndef send(x):\n    return x\n\n\n"
                         "@celery.task(bind=True)\ndef bound(self, x):\n    return x\n\n\n"
                         "@shared_task\ndef shared(x):\n    return x\n\n\n@functools.cache\ndef cached(x):\n    return x\n"),
        "app/routes.py": ("from app.tasks import bound, cached, send, shared\n\n\nasync def go():\n"
                          "    send.delay(1)  # AG103\n    bound.apply_async((1,))  # AG103\n"
                          "    shared.delay(2)  # AG103\n    return cached(3)\n"),
    })
    assert reported == expected


def test_a_private_coroutine_nothing_names_holds_no_loop(tmp_path):
    """A private `async def` written nowhere but in its own definition is dead code; one that is called, passed or
    merely written elsewhere is reported, and so is every public coroutine, named or not."""
    reported, expected, _ = check(tmp_path, {
        "app/service.py": ("import shutil\n\n\nclass Files:\n    async def _unused(self, path):\n"
                           "        shutil.rmtree(path)\n\n    async def _used(self, path):\n"
                           "        shutil.rmtree(path)  # AG104\n\n    async def wipe(self, path):\n"
                           "        await self._used(path)\n\n\nasync def _left_behind(path):\n"
                           "    shutil.rmtree(path)\n\n\nasync def public(path):\n    shutil.rmtree(path)  # AG104\n"),
    })
    assert reported == expected


def test_tests_are_left_out_of_a_walk_unless_named(tmp_path):
    """A module named like a test is one only if it holds a test: `routers/test_batteries.py` is a router."""
    (tmp_path / "app").mkdir()
    (tmp_path / "tests").mkdir()
    blocking = "import time\n\n\nasync def f():\n    time.sleep(1)\n"
    for name in ("app/routes.py", "app/test_batteries.py", "app/conftest.py", "tests/test_api.py"):
        (tmp_path / name).write_text(blocking)
    for name, test in (("app/test_routes.py", "\n\nasync def test_f():\n    await f()\n"),
                       ("app/routes_test.py", "\n\nclass TestRoutes:\n    pass\n"),
                       ("app/test_client.py", "import pytest\n")):
        (tmp_path / name).write_text(blocking + test)
    walked = {Path(f.path).name for f in run(list(discover([str(tmp_path)], tmp_path, DEFAULT_EXCLUDES)),
                                             Settings(project_root=tmp_path), use_cache=False).findings}
    named = run(list(discover([str(tmp_path / "tests" / "test_api.py")], tmp_path, DEFAULT_EXCLUDES)),
                Settings(project_root=tmp_path), use_cache=False).findings
    assert walked == {"routes.py", "test_batteries.py"} and [Path(f.path).name for f in named] == ["test_api.py"]


def test_getattr_on_a_session_by_a_verb_known_only_at_run_time_is_its_request(tmp_path):
    """An SDK's `getattr(self.session, method)(url)` is the session's `request`; `getattr(obj, "name")` is
    `obj.name`."""
    reported, expected, _ = check(tmp_path, {
        "app/api.py": ("import requests\n\n\nclass Api:\n    def __init__(self):\n        self.session = requests.Session()\n\n"
                       "    def _call(self, method, url):\n        return getattr(self.session, method)(url)\n\n"
                       "    def account(self):\n        return self._call('get', '/account')\n\n"
                       "    def headers(self):\n        return getattr(self.session, 'headers').copy()\n"),
        "app/routes.py": ("from app.api import Api\n\napi = Api()\n\n\nasync def account():\n"
                          "    return api.account(), api.headers()  # AG800\n"),
    })
    assert reported == expected


def test_a_peewee_model_of_the_project_runs_sql_through_the_methods_it_inherits(tmp_path):
    """`Event.get(...)` and `event.save()` on a project model: peewee's own methods, inherited; `select()` only
    builds a query, its `count()` runs it."""
    reported, expected, _ = check(tmp_path, {
        "app/models.py": ("from peewee import CharField, Model, SqliteDatabase\n\ndb = SqliteDatabase('app.db')\n\n\n"
                          "class Event(Model):\n    name = CharField()\n\n    class Meta:\n        database = db\n"),
        "app/routes.py": ("from app.models import Event\n\n\nasync def rename(event_id, name):\n"
                          "    event = Event.get(Event.id == event_id)  # AG800\n    event.name = name\n"
                          "    event.save()  # AG800\n    query = Event.select().where(Event.name == name)\n"
                          "    return query.count()  # AG106\n"),
    })
    assert reported == expected


def test_an_orm_query_result_is_an_instance_of_the_mapped_class_it_names(tmp_path):
    """`db.query(Admin)...first()`, `session.get(Admin, key)`, `scalars(select(Admin)).one()` and a loop over
    `.all()` give Admins: a model method that hashes is followed (with `Base = declarative_base()`, a base the
    checker cannot type)."""
    reported, expected, _ = check(tmp_path, {
        "app/models.py": ("from passlib.context import CryptContext\nfrom sqlalchemy.orm import declarative_base\n\n"
                          "Base = declarative_base()\npwd = CryptContext(schemes=['bcrypt'])\n\n\n"
                          "class Admin(Base):\n    def verify_password(self, password):\n"
                          "        return pwd.verify(password, self.hashed)\n"),
        "app/routes.py": ("from sqlalchemy import select\nfrom sqlalchemy.orm import Session\n"
                          "from app.models import Admin\n\n\n"
                          "async def login(db: Session, name: str, password: str):\n"
                          "    admin = db.query(Admin).filter(Admin.name == name).first()  # AG106\n"
                          "    admin.verify_password(password)  # AG800\n"
                          "    db.get(Admin, 1).verify_password(password)  # AG106  # AG800\n"
                          "    db.scalars(select(Admin).where(Admin.name == name)).one().verify_password(password)"
                          "  # AG106  # AG800\n"
                          "    for each in db.query(Admin).all():  # AG106\n"
                          "        each.verify_password(password)  # AG800\n"
                          "    ids = db.query(Admin.id).first()  # AG106\n"
                          "    return ids.verify_password(password)  # a column, not an entity: unknown\n"),
    })
    assert reported == expected


def test_a_module_name_a_start_up_hook_rebinds_through_global_is_what_it_loads(tmp_path):
    """`model = None`, then `global model; model = SentenceTransformer(...)` in a hook: the routes, in this module
    and in others that import it, use the loaded model."""
    reported, expected, _ = check(tmp_path, {
        "app/state.py": ("import requests\nfrom sentence_transformers import SentenceTransformer\n\n"
                         "model = None\nsession = None\nLIMIT = 3\n\n\n"
                         "def load():\n    global model, session, LIMIT\n"
                         "    model = SentenceTransformer('all-MiniLM-L6-v2')\n    session = requests.Session()\n"
                         "    LIMIT = 4\n\n\n"
                         "async def embed(text: str):\n    return model.encode(text)  # AG112\n"),
        "app/routes.py": ("from app import state\nfrom app.state import session\n\n\n"
                          "async def search(text: str):\n    session.get('http://index/search')  # AG102\n"
                          "    return state.model.encode(text), state.LIMIT  # AG112\n"),
    })
    assert reported == expected


def test_a_namespace_directory_checked_by_name_resolves_imports_through_its_name(tmp_path):
    """`asyncguard check app/` where `app/` has no `__init__.py` and its modules import `app.models` (as they do
    when run as `uvicorn app.main:app`): its modules are `app.models` as well as `models`."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app/models.py").write_text("import time\n\n\nclass Clock:\n    def tick(self):\n"
                                            "        time.sleep(1)\n")
    (tmp_path / "app/main.py").write_text("from app.models import Clock\nfrom models import Clock as Same\n\n\n"
                                          "async def tick():\n    Clock().tick()\n    Same().tick()\n")
    findings = run(list(discover([str(tmp_path / "app")], tmp_path, [])), Settings(project_root=tmp_path),
                   use_cache=False).findings
    assert [(f.line, f.code) for f in findings] == [(6, "AG800"), (7, "AG800")]


def test_a_session_advanced_by_next_and_a_declarative_base_are_typed(tmp_path):
    """`db = next(get_db())` is the Session the generator yields; `Base = declarative_base()` has the metadata whose
    `create_all` runs DDL (an `init_db()` called from the lifespan)."""
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ("from sqlalchemy import create_engine\nfrom sqlalchemy.orm import declarative_base, sessionmaker\n\n"
                      "engine = create_engine('sqlite://')\nSessionLocal = sessionmaker(bind=engine)\n"
                      "Base = declarative_base()\n\n\ndef get_db():\n    db = SessionLocal()\n    try:\n"
                      "        yield db\n    finally:\n        db.close()\n\n\n"
                      "def init_db():\n    Base.metadata.create_all(bind=engine)\n\n\n"
                      "def verify(token):\n    db = next(get_db())\n    return db.query(Base).first()\n"),
        "app/main.py": ("from contextlib import asynccontextmanager\nfrom fastapi import FastAPI\n"
                        "from app.db import init_db, verify\n\n\n@asynccontextmanager\nasync def lifespan(app):\n"
                        "    init_db()  # AG800\n    yield\n\n\napp = FastAPI(lifespan=lifespan)\n\n\n"
                        "@app.get('/me')\nasync def me(token: str):\n    return verify(token)  # AG800\n"),
    })
    assert reported == expected


def test_each_service_of_a_monorepo_imports_its_own_module_of_a_shared_name(tmp_path):
    """Two services each run from their own directory import `from wrapper import Wrapper`: `wrapper` names
    neither for the project as a whole, but each importer's nearest one."""
    files = {}
    for service, leaf in (("auth", "self.session.query(User).all()"), ("calendar", "time.sleep(1)")):
        files[f"app/services/{service}/wrapper.py"] = (
            "import time\nfrom sqlalchemy.orm import Session\n\n\nclass Wrapper:\n"
            "    def __init__(self):\n        self.session = Session()\n\n"
            f"    def rows(self):\n        return {leaf}\n")
        files[f"app/services/{service}/routes.py"] = ("from wrapper import Wrapper\n\n\n"
                                                      "async def rows():\n    return Wrapper().rows()  # AG800\n")
    reported, expected, findings = check(tmp_path, files)
    assert reported == expected
    leaves = sorted(f.message.split(" → ")[1].split(" (")[0] for f in findings)
    assert leaves == ["sqlalchemy.orm.Query.all", "time.sleep"]


def test_a_script_module_imported_by_the_service_is_checked_but_for_the_coroutine_it_runs(tmp_path):
    """A service module with a `__main__` demo that runs its own loop is still the service's library: its other
    coroutines run on the service's loop; the demo's `main` runs only on its own."""
    reported, expected, _ = check(tmp_path, {
        "app/store.py": ("import asyncio\nimport os\n\n\nclass Store:\n    async def drop(self, path):\n"
                         "        os.unlink(path)  # AG104\n\n\nasync def main():\n    os.unlink('demo')\n\n\n"
                         "if __name__ == '__main__':\n    asyncio.run(main())\n"),
        "app/routes.py": ("from app.store import Store\n\n\nasync def drop(path):\n    await Store().drop(path)\n"),
        "app/demo.py": ("import asyncio\nimport os\n\n\nasync def main():\n    os.unlink('demo')  # its own loop\n\n\n"
                        "if __name__ == '__main__':\n    asyncio.run(main())\n"),
    })
    assert reported == expected


def test_a_project_package_named_like_a_library_does_not_shadow_it(tmp_path):
    """`app/services/celery/` is `celery` only as a suffix of its name: `from celery import Celery` elsewhere is the
    library, and what its tasks and results do is known."""
    reported, expected, _ = check(tmp_path, {
        "app/services/__init__.py": "",
        "app/services/celery/__init__.py": "from celery import Celery\n\ncelery_app = Celery('jobs')\n",
        "app/routes.py": ("from celery import Celery\nfrom celery.result import AsyncResult\n\n\n"
                          "async def status(app: Celery, task_id: str):\n"
                          "    return app.AsyncResult(task_id).status  # AG103\n\n\n"
                          "async def value(task_id: str):\n    return AsyncResult(task_id).result  # AG103\n"),
    })
    assert reported == expected


def test_two_project_packages_named_like_a_library_do_not_shadow_it(tmp_path):
    """Two modules' `infra/sqlalchemy/` packages: `from sqlalchemy.orm import Session` in either is the library, not
    the nearer package, and a repository's session calls block."""
    repository = ("from sqlalchemy import select\nfrom sqlalchemy.orm import Session\n\n\nclass {name}Repository:\n"
                  "    def __init__(self, session: Session) -> None:\n        self.session = session\n\n"
                  "    def get(self, key):\n        return self.session.scalar(select(key))\n")
    files = {"app/routes.py": ("from sqlalchemy.orm import Session\n"
                               "from app.users.infra.sqlalchemy.repository import UsersRepository\n\n\n"
                               "async def user(session: Session):\n"
                               "    return UsersRepository(session).get('x')  # AG800\n")}
    files["app/__init__.py"] = ""
    for module in ("users", "identity"):
        files[f"app/{module}/__init__.py"] = files[f"app/{module}/infra/__init__.py"] = ""
        files[f"app/{module}/infra/sqlalchemy/__init__.py"] = (
            f"from app.{module}.infra.sqlalchemy.repository import {module.title()}Repository\n")
        files[f"app/{module}/infra/sqlalchemy/repository.py"] = repository.format(name=module.title())
    reported, expected, _ = check(tmp_path, files)
    assert reported == expected


def test_a_factory_annotated_with_an_interface_returns_what_it_builds(tmp_path):
    """`-> Repository` (a Protocol two classes implement, one in memory) of `return SqlRepository(session)`: the
    repository the factory builds is the one whose calls run."""
    reported, expected, _ = check(tmp_path, {"app/service.py": """\
from typing import Protocol

from sqlalchemy.orm import Session


class Repository(Protocol):
    def get(self, key: str) -> str | None: ...


class SqlRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> str | None:
        return self.session.scalar(key)


class MemoryRepository:
    def get(self, key: str) -> str | None:
        return None


class Service:
    def _repository(self, session: Session) -> Repository:
        return SqlRepository(session)

    async def find(self, session: Session):
        return self._repository(session).get("x")  # AG800
"""})
    assert reported == expected


def test_routes_of_a_router_nothing_mounts_are_not_reported(tmp_path):
    """`activity_router` is imported by the app but never included: its routes serve nothing. A router included by
    name, one in a list of routers, and one included as `users.router` are all mounted."""
    route = "\n\n@{r}.get('/x')\nasync def {f}():\n    time.sleep(1){mark}\n"
    files = {"app/main.py": ("from fastapi import FastAPI\nfrom app.activity import activity_router\n"
                             "from app.orders import orders_router\nfrom app.items import items_router\n"
                             "from app import users\n\napp = FastAPI()\napp.include_router(orders_router)\n"
                             "for included in [items_router]:\n    app.include_router(included)\n"
                             "app.include_router(users.router)\n")}
    for module, router, mark in (("activity", "activity_router", "  # never mounted"),
                                 ("orders", "orders_router", "  # AG101"), ("items", "items_router", "  # AG101"),
                                 ("users", "router", "  # AG101")):
        files[f"app/{module}.py"] = ("import time\nfrom fastapi import APIRouter\n\n"
                                     f"{router} = APIRouter(\n    prefix='/{module}',\n)\n"
                                     + route.format(r=router, f=f"{module}_route", mark=mark))
    reported, expected, _ = check(tmp_path, files)
    assert reported == expected


def test_iterating_or_counting_a_lazy_peewee_query_runs_it(tmp_path):
    """A `for` loop, a comprehension, `list()`, `len()` and `enumerate()` over a `select()` run its SQL (peewee's
    `ModelSelect.__iter__`/`__len__`); so does a class method that returns `list(cls.select())`. What the loop and
    `.first()` give are the project's models, so their `save()` and `delete_instance()` are followed."""
    reported, expected, findings = check(tmp_path, {
        "app/models.py": ("from peewee import CharField, Model, SqliteDatabase\n\ndb = SqliteDatabase('app.db')\n\n\n"
                          "class Team(Model):\n    name = CharField()\n\n    class Meta:\n        database = db\n\n"
                          "    @classmethod\n    def named(cls, name):\n"
                          "        return list(cls.select().where(cls.name == name))\n"),
        "app/routes.py": ("from app.models import Team\n\n\nasync def teams():\n"
                          "    query = Team.select().where(Team.name != '')\n"
                          "    names = [team.name for team in query]  # AG106\n"
                          "    total = len(query)  # AG106\n"
                          "    for team in Team.select():  # AG106\n        team.save()  # AG800\n"
                          "    for index, team in enumerate(query):  # AG106\n        print(index, team)\n"
                          "    first = Team.select().where(Team.name == 'a').first()  # AG106\n"
                          "    first.delete_instance()  # AG800\n"
                          "    return names, total, list(query), Team.named('a')  # AG106  # AG800\n\n\n"
                          "async def built_only():\n    query = Team.select()\n    return query.sql()\n"),
    })
    assert reported == expected
    assert "`iter(peewee.ModelSelect)`" in next(f.message for f in findings if f.line == 6)
    assert "`len(peewee.ModelSelect)`" in next(f.message for f in findings if f.line == 7)


def test_a_connection_passed_to_untyped_helpers_is_followed_to_its_cursor(tmp_path):
    """A psycopg2 connection given to `def get_user(conn, ...)`: the cursor it opens (`with conn.cursor() as cur`,
    `cur = conn.cursor()`) runs the query; so do helpers it is passed on to, and an adapter class that keeps it
    (`self.conn = conn`), typed by what the project constructs it with."""
    reported, expected, findings = check(tmp_path, {
        "app/db.py": ("import psycopg2\n\n\ndef connect():\n    return psycopg2.connect('dbname=app')\n"),
        "app/queries.py": ("def get_user(conn, user_id):\n    with conn.cursor() as cur:\n"
                           "        cur.execute('select 1', (user_id,))\n        return cur.fetchone()\n\n\n"
                           "def log_event(conn, name):\n    return record(conn, name=name)\n\n\n"
                           "def record(conn, *, name):\n    cur = conn.cursor()\n    cur.execute('insert', (name,))\n\n\n"
                           "def describe(conn):\n    cur = conn.cursor()\n    cur = 'no longer a cursor'\n"
                           "    return cur.upper()\n\n\n"
                           "class UserAdapter:\n    def __init__(self, conn):\n        self.conn = conn\n\n"
                           "    def fetch(self, user_id):\n        with self.conn.cursor() as cur:\n"
                           "            cur.execute('select 1')\n            return cur.fetchall()\n"),
        "app/routes.py": ("from app.db import connect\nfrom app.queries import UserAdapter, describe, get_user, "
                          "log_event\n\n\nasync def user(user_id: int):\n"
                          "    conn = connect()  # AG800\n    get_user(conn, user_id)  # AG800\n"
                          "    log_event(conn, 'seen')  # AG800\n    describe(conn)\n"
                          "    return UserAdapter(conn).fetch(user_id)  # AG800\n"),
    })
    assert reported == expected
    logged = next(f for f in findings if f.line == 8)
    assert [step["name"] for step in logged.chain] == ["app.queries.log_event", "app.queries.record",
                                                        "psycopg2.cursor.execute"]


def test_router_modules_an_app_loads_by_name_are_mounted_and_the_others_are_not(tmp_path):
    """`import_module(name)` over a list of dotted module names: the routers named there serve requests; a router
    module named nowhere else (left behind) does not, and one the app imports is mounted as before."""
    route = "import time\nfrom fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n@router.get('/x')\nasync def x():\n"
    reported, expected, _ = check(tmp_path, {
        "app/main.py": ("import importlib\nimport time\nfrom fastapi import FastAPI\nfrom app.routers import imported\n\n"
                        "ROUTERS = ('app.routers.listed',)\napp = FastAPI()\nfor name in ROUTERS:\n"
                        "    app.include_router(importlib.import_module(name).router)\n"
                        "app.include_router(imported.router)\n\n\n@app.get('/health')\nasync def health():\n"
                        "    time.sleep(1)  # AG101\n"),
        "app/routers/__init__.py": "",
        "app/routers/listed.py": route + "    time.sleep(1)  # AG101\n",
        "app/routers/imported.py": route + "    time.sleep(1)  # AG101\n",
        "app/routers/left_behind.py": route + "    time.sleep(1)  # never loaded\n",
    })
    assert reported == expected


def test_a_client_kept_on_a_module_state_object_and_passed_down_coroutines_is_followed(tmp_path):
    """`state.s3 = boto3.client("s3")` in the lifespan, `state = AppState()` declaring it `Any`: the route passes it
    to coroutines whose parameters say `Any` or nothing, one passing it on to the next."""
    reported, expected, _ = check(tmp_path, {
        "app/backend.py": ("from typing import Any\n\n\nasync def load(key: str, *, s3: Any, bucket: str):\n"
                           "    return s3.get_object(Bucket=bucket, Key=key)  # AG107\n\n\n"
                           "async def lookup(key, *, s3):\n    return await load(key, s3=s3, bucket='b')\n"),
        "app/server.py": ("from contextlib import asynccontextmanager\nfrom typing import Any\n\nimport boto3\n"
                          "from fastapi import FastAPI\n\nfrom app.backend import lookup\n\n\nclass AppState:\n"
                          "    def __init__(self):\n        self.s3: Any = None\n\n\nstate = AppState()\n\n\n"
                          "@asynccontextmanager\nasync def lifespan(app):\n    state.s3 = boto3.client('s3')  # AG107\n"
                          "    yield\n\n\napp = FastAPI(lifespan=lifespan)\n\n\n@app.get('/x')\nasync def x(key: str):\n"
                          "    return await lookup(key, s3=state.s3)\n"),
    })
    assert reported == expected


def test_helpers_that_pass_a_connection_on_to_each_other_in_a_cycle_are_weighed_once(tmp_path):
    """Ten helpers each passing the connection to all ten (a cycle, and 10^9 paths eight deep): the one that runs
    the query is found, and the pass ends."""
    names = [f"step{index}" for index in range(10)]
    helpers = "".join(f"def {name}(conn):\n" + "".join(f"    {other}(conn)\n" for other in names) + "\n\n"
                      for name in names)
    reported, expected, _ = check(tmp_path, {
        "app/helpers.py": helpers + "def last(conn):\n    conn.cursor().execute('select 1')\n",
        "app/chain.py": "from app.helpers import last, step9\n\n\ndef begin(conn):\n    step9(conn)\n    last(conn)\n",
        "app/routes.py": ("import psycopg2\nfrom app.chain import begin\n\n\nasync def route():\n"
                          "    conn = psycopg2.connect('dbname=app')  # AG106\n    begin(conn)  # AG800\n"),
    })
    assert reported == expected


def test_a_function_given_as_a_parameters_default_runs_where_nothing_is_passed(tmp_path):
    """`resolver: Resolver = default_resolver`, a type alias of `Callable`: a call that passes no resolver runs the
    default's DNS lookup."""
    reported, expected, _ = check(tmp_path, {
        "app/ssrf.py": ("import socket\nfrom collections.abc import Callable\n\nResolver = Callable[[str], list[str]]\n\n\n"
                        "def default_resolver(host: str) -> list[str]:\n"
                        "    return [info[4][0] for info in socket.getaddrinfo(host, None)]\n\n\n"
                        "def assert_allowed(url: str, *, resolver: Resolver = default_resolver) -> None:\n"
                        "    if not resolver(url):\n        raise ValueError(url)\n"),
        "app/routes.py": "from app.ssrf import assert_allowed\n\n\nasync def create(url: str):\n    assert_allowed(url)  # AG800\n",
    })
    assert reported == expected


def test_constructing_a_dataclass_runs_its_post_init(tmp_path):
    reported, expected, _ = check(tmp_path, {
        "app/billing.py": ("from dataclasses import dataclass\n\nfrom sqlalchemy.orm import Session\n\n\n@dataclass\n"
                           "class TariffPlanProcessor:\n    session: Session\n    user_id: int\n\n"
                           "    def __post_init__(self):\n        self.plan = self.session.execute('select 1').first()\n"),
        "app/routes.py": ("from sqlalchemy.orm import Session\n\nfrom app.billing import TariffPlanProcessor\n\n\n"
                          "async def pay(session: Session, user_id: int):\n"
                          "    return TariffPlanProcessor(session, user_id).plan  # AG800\n"),
    })
    assert reported == expected


def test_a_generics_annotation_a_list_of_paths_and_a_returned_class(tmp_path):
    """`collection: Collection[Review]` is a collection; `for p in [a, b]` binds what both elements are; a function
    that returns a project class gives that class, whose call builds an instance."""
    reported, expected, _ = check(tmp_path, {
        "app/store.py": ("import sqlite3\n\n\nclass SqliteStore:\n    def __init__(self, dsn):\n"
                         "        self.conn = sqlite3.connect(dsn)\n\n\ndef _store_class():\n    return SqliteStore\n"),
        "app/routes.py": ("from pathlib import Path\n\nfrom pymongo.collection import Collection\n\n"
                          "from app.store import _store_class\n\n\n"
                          "async def review(collection: Collection[dict], review_id: str):\n"
                          "    return collection.find_one({'_id': review_id})  # AG106\n\n\n"
                          "async def cleanup(name: str):\n    for path in [Path(name), Path(f'{name}.tmp')]:\n"
                          "        path.unlink()  # AG104\n\n\n"
                          "async def store(dsn: str):\n    cls = _store_class()\n    return cls(dsn)  # AG800\n"),
    })
    assert reported == expected


def test_import_requests_in_each_services_own_requests_module_is_the_library(tmp_path):
    route = ("import requests\nfrom fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n@router.get('/now')\n"
             "async def now():\n    return requests.get('https://api.example/now').json()  # AG102\n")
    reported, expected, _ = check(tmp_path, {"app/current/requests/requests.py": route,
                                             "app/historical/requests/requests.py": route})
    assert reported == expected


def test_a_class_handed_to_a_service_locator_gives_an_instance_of_it(tmp_path):
    """`container.resolve(DocumentRepository)`: whatever the container is (`-> T` of a TypeVar), what it gives is
    the repository."""
    reported, expected, _ = check(tmp_path, {
        "app/container.py": ("from typing import TypeVar\n\nT = TypeVar('T')\n\n\nclass Container:\n"
                             "    def __init__(self):\n        self.factories = {}\n\n"
                             "    def resolve(self, kind: type[T]) -> T:\n        return self.factories[kind]()\n\n\n"
                             "container = Container()\n"),
        "app/documents.py": ("import sqlite3\n\n\nclass DocumentRepository:\n    def get(self, key):\n"
                             "        return sqlite3.connect('docs.db').execute('select 1').fetchone()\n"),
        "app/routes.py": ("from app.container import container\nfrom app.documents import DocumentRepository\n\n\n"
                          "async def document(key: str):\n    repository = container.resolve(DocumentRepository)\n"
                          "    return repository.get(key)  # AG800\n"),
    })
    assert reported == expected


def test_a_lazy_proxy_hands_its_attributes_to_the_client_it_wraps(tmp_path):
    """`supabase = _LazyClient()` whose `__getattr__` returns `getattr(get_client(), name)`: `supabase.table(...)`
    is the Supabase client's, whose `execute()` queries."""
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ("from supabase import Client, create_client\n\n\ndef get_client() -> Client:\n"
                      "    return create_client('url', 'key')\n\n\nclass _LazyClient:\n"
                      "    def __getattr__(self, name: str):\n        if name.startswith('_'):\n"
                      "            raise AttributeError(name)\n        return getattr(get_client(), name)\n\n\n"
                      "supabase = _LazyClient()\n"),
        "app/routes.py": ("from app.db import supabase\n\n\nasync def models():\n"
                          "    return supabase.table('models').select('*').execute()  # AG106\n"),
    })
    assert reported == expected


def test_a_library_function_as_a_parameters_default_is_what_the_call_runs(tmp_path):
    """`connect=psycopg.connect` kept as `self._connect` and called: the connection it opens is psycopg's."""
    reported, expected, _ = check(tmp_path, {"app/repository.py": """\
import psycopg


class Repository:
    def __init__(self, url: str, *, connect=psycopg.connect) -> None:
        self._url = url
        self._connect = connect

    def _connection(self):
        return self._connect(self._url, connect_timeout=3)

    def get(self):
        with self._connection() as connection:
            return connection.execute("select 1").fetchone()


repository = Repository("postgres://")


async def handler():
    return repository.get()  # AG800
"""})
    assert reported == expected


def test_a_middleware_is_built_with_the_keywords_add_middleware_gives(tmp_path):
    """`app.add_middleware(IdentityMiddleware, auth=identity)`: Starlette builds the middleware with those keywords,
    so `self.auth` in its `dispatch` is the project's `Auth`."""
    reported, expected, _ = check(tmp_path, {
        "app/auth.py": ("import sqlite3\n\n\nclass Auth:\n    def authenticate(self, token):\n"
                        "        return sqlite3.connect('auth.db').execute('select 1').fetchone()\n"),
        "app/middleware.py": ("from starlette.middleware.base import BaseHTTPMiddleware\n\n\n"
                              "class IdentityMiddleware(BaseHTTPMiddleware):\n"
                              "    def __init__(self, app, auth):\n        super().__init__(app)\n"
                              "        self.auth = auth\n\n"
                              "    async def dispatch(self, request, call_next):\n"
                              "        self.auth.authenticate(request.cookies.get('session'))  # AG800\n"
                              "        return await call_next(request)\n"),
        "app/main.py": ("from fastapi import FastAPI\nfrom app.auth import Auth\n"
                        "from app.middleware import IdentityMiddleware\n\napp = FastAPI()\n"
                        "app.add_middleware(IdentityMiddleware, auth=Auth())\n"),
    })
    assert reported == expected


def test_an_accessor_nested_in_an_app_factory_returns_what_it_declares(tmp_path):
    """`def auth_service() -> AuthService` inside `create_app`, reading the service off `app.state`: its routes'
    `auth_service().login(...)` runs the service's password check."""
    reported, expected, _ = check(tmp_path, {
        "app/services.py": ("from argon2 import PasswordHasher\n\nHASHER = PasswordHasher()\n\n\n"
                            "class AuthService:\n    def login(self, password, stored):\n"
                            "        return HASHER.verify(stored, password)\n"),
        "app/main.py": ("from fastapi import FastAPI\n\nfrom app.services import AuthService\n\n\n"
                        "def create_app() -> FastAPI:\n    app = FastAPI()\n\n"
                        "    def auth_service() -> AuthService:\n"
                        "        service = getattr(app.state, 'auth_service', None)\n"
                        "        if not isinstance(service, AuthService):\n"
                        "            raise RuntimeError('not started')\n        return service\n\n"
                        "    @app.post('/login')\n    async def login(password: str):\n"
                        "        return auth_service().login(password, '')  # AG800\n\n    return app\n\n\n"
                        "app = create_app()\n"),
    })
    assert reported == expected


def test_an_implementation_found_for_a_protocol_calls_its_own_methods(tmp_path):
    """`self.email_sender.send_reset(...)` with `email_sender: EmailSender`, a Protocol that `ResendEmailSender`
    implements without naming it: the implementation's `self._send()` is its own, not the Protocol's."""
    reported, expected, _ = check(tmp_path, {
        "app/email.py": ("from typing import Protocol\n\nimport resend\n\n\nclass EmailSender(Protocol):\n"
                         "    def send_reset(self, to: str) -> None: ...\n\n\nclass ResendEmailSender:\n"
                         "    def send_reset(self, to: str) -> None:\n        self._send(to)\n\n"
                         "    def _send(self, to: str) -> None:\n        resend.Emails.send({'to': [to]})\n"),
        "app/main.py": ("from fastapi import FastAPI\n\nfrom app.email import EmailSender, ResendEmailSender\n\n\n"
                        "class AuthService:\n    def __init__(self, email_sender: EmailSender):\n"
                        "        self.email_sender = email_sender\n\n    def reset(self, to):\n"
                        "        self.email_sender.send_reset(to)\n\n\napp = FastAPI()\n"
                        "service = AuthService(ResendEmailSender())\n\n\n@app.post('/reset')\n"
                        "async def reset(to: str):\n    service.reset(to)  # AG800\n"),
    })
    assert reported == expected


def test_a_project_cursor_passed_to_a_helper_runs_its_own_execute(tmp_path):
    """`_table_missing(cursor)` with `def _table_missing(cursor): cursor.execute(...)`: the route's cursor is the
    project's `TrackedCursor`, whose `execute` runs sqlite3's."""
    reported, expected, _ = check(tmp_path, {
        "app/db.py": ("import sqlite3\n\n\nclass TrackedCursor:\n    def __init__(self, cursor: sqlite3.Cursor):\n"
                      "        self.cursor = cursor\n\n    def execute(self, sql):\n"
                      "        return self.cursor.execute(sql)\n\n\ndef tracked() -> TrackedCursor:\n"
                      "    return TrackedCursor(sqlite3.connect('app.db').cursor())\n"),
        "app/main.py": ("from fastapi import FastAPI\n\nfrom app.db import TrackedCursor, tracked\n\n"
                        "app = FastAPI()\n\n\ndef _table_missing(cursor):\n"
                        "    cursor.execute(\"SELECT 1 FROM sqlite_master WHERE name = 'cards'\")\n\n\n"
                        "@app.get('/cards')\nasync def cards():\n    cursor: TrackedCursor = tracked()  # AG800\n"
                        "    return _table_missing(cursor)  # AG800\n"),
    })
    assert reported == expected


def test_a_name_a_try_binds_keeps_that_binding_over_its_except_fallback(tmp_path):
    """`try: publisher = KafkaPublisher(producer)` / `except Exception: publisher = DummyPublisher()`: the services
    call the publisher the set-up makes when it works."""
    reported, expected, _ = check(tmp_path, {
        "app/producer.py": ("from kafka import KafkaProducer\n\n\nclass KafkaPublisher:\n"
                            "    def __init__(self, producer: KafkaProducer):\n        self.producer = producer\n\n"
                            "    def publish(self, event):\n        self.producer.send('events', value=event)\n\n\n"
                            "class DummyPublisher:\n    def publish(self, event):\n        return None\n\n\n"
                            "try:\n    publisher = KafkaPublisher(KafkaProducer(bootstrap_servers='kafka:9092'))\n"
                            "except Exception:\n    publisher = DummyPublisher()\n"),
        "app/main.py": ("from fastapi import FastAPI\n\nfrom app.producer import publisher\n\napp = FastAPI()\n\n\n"
                        "@app.post('/items')\nasync def create(item: dict):\n    publisher.publish(item)  # AG800\n"),
    })
    assert reported == expected


def test_a_generated_grpc_stub_on_a_sync_channel_calls_the_server(tmp_path):
    """`self.stub = RolesServiceStub(self.channel)` with `self.channel = grpc.insecure_channel(...)`: the generated
    stub's `self.GetUserRole = channel.unary_unary(...)` is a sync multi-callable, so calling it waits for the
    server; on a `grpc.aio` channel it is awaited and holds nothing."""
    stub = ("class RolesServiceStub(object):\n    def __init__(self, channel):\n"
            "        self.GetUserRole = channel.unary_unary('/roles.RolesService/GetUserRole')\n")
    reported, expected, _ = check(tmp_path, {
        "app/roles_pb2_grpc.py": stub,
        "app/client.py": ("import grpc\n\nfrom app import roles_pb2_grpc as pb2_grpc\n\n\nclass RolesClient:\n"
                          "    def __init__(self, host: str):\n        self.channel = grpc.insecure_channel(host)\n"
                          "        self.stub = pb2_grpc.RolesServiceStub(self.channel)\n\n"
                          "    def get_user_role(self, token):\n        return self.stub.GetUserRole(token)\n\n\n"
                          "roles_client = RolesClient('roles:50051')\n"),
        "app/main.py": ("import grpc\nfrom fastapi import FastAPI\n\nfrom app.client import roles_client\n"
                        "from app.roles_pb2_grpc import RolesServiceStub\n\napp = FastAPI()\n\n\n"
                        "@app.get('/me')\nasync def me(token: str):\n"
                        "    return roles_client.get_user_role(token)  # AG800\n\n\n"
                        "@app.get('/aio')\nasync def aio(token: str):\n"
                        "    async with grpc.aio.insecure_channel('roles:50051') as channel:\n"
                        "        return await RolesServiceStub(channel).GetUserRole(token)\n"),
    })
    assert reported == expected


def test_an_untyped_parameter_of_a_static_coroutine_is_what_its_callers_pass(tmp_path):
    """`await UserRepo.find(supabase, user_id)` with `async def find(client, user_id)` a static method: its
    `client.table(...).execute()` is the caller's sync supabase client."""
    reported, expected, _ = check(tmp_path, {
        "app/repo.py": ("class UserRepo:\n    @staticmethod\n    async def find(client, user_id):\n"
                        "        return client.table('users').select('*').eq('id', user_id).execute()  # AG106\n"),
        "app/main.py": ("from fastapi import FastAPI\nfrom supabase import create_client\n\n"
                        "from app.repo import UserRepo\n\napp = FastAPI()\nsupabase = create_client('url', 'key')\n\n\n"
                        "@app.get('/users/{user_id}')\nasync def user(user_id: str):\n"
                        "    return await UserRepo.find(supabase, user_id)\n"),
    })
    assert reported == expected

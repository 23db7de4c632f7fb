"""Blocking APIs the checker once missed on public FastAPI services, each as a small source with its findings
marked inline (`# AG106`): the library families of `blocking_calls.toml`, their aliases and result types, and the
forms of the same calls that do not block."""

from __future__ import annotations

import pytest

from conftest import expected_findings, reported

CASES = {
    "mysql-connector-pool-chain": """\
import mysql.connector

def create_connection_pool():
    return mysql.connector.pooling.MySQLConnectionPool(pool_name="rds", pool_size=10)  # opens 10 connections

async def regist(email: str):
    pool = create_connection_pool()  # AG800
    connection = pool.get_connection()  # AG106
    cursor = connection.cursor()
    cursor.execute("select * from users where email=%s", (email,))  # AG106
    row = cursor.fetchone()  # AG106
    connection.commit()  # AG106
    connection.close()  # AG106
    return row
""",
    "mysql-connector-class-spellings": """\
from mysql.connector.pooling import PooledMySQLConnection
from mysql.connector.cursor import MySQLCursor

async def rows(connection: PooledMySQLConnection, cursor: MySQLCursor):
    cursor.executemany("insert into t values (%s)", [(1,), (2,)])  # AG106
    connection.rollback()  # AG106
""",
    "pymysql-close": """\
import pymysql

async def poll(db: pymysql.connections.Connection):
    db.close()  # AG106
""",
    "sqlalchemy-session-close": """\
from sqlalchemy.orm import Session

async def history(db: Session):
    try:
        return {"ok": True}
    finally:
        db.close()  # AG106
""",
    "werkzeug-password-hash": """\
from werkzeug.security import check_password_hash, generate_password_hash

async def login(password: str, stored: str):
    generate_password_hash(password=password)  # AG108
    return check_password_hash(stored, password)  # AG108
""",
    "yookassa-payment": """\
import yookassa

async def create_pay(total_price: int):
    yookassa.Configuration.account_id = "1"
    payment = yookassa.Payment.create({"amount": {"value": total_price, "currency": "RUB"}})  # AG102
    return payment.confirmation.confirmation_url
""",
    "deepgram-live-client": """\
from deepgram import DeepgramClient, LiveOptions

deepgram = DeepgramClient("key")

class ResponseAgent:
    def __init__(self):
        self.dg_connection = deepgram.listen.live.v("1")

    async def receive_audio(self, message: bytes):
        self.dg_connection.send(message)  # AG102
""",
    "deepgram-v5-client": """\
from deepgram import AsyncDeepgramClient, DeepgramClient

client = DeepgramClient()
async_client = AsyncDeepgramClient()

async def transcribe(audio: bytes):
    await async_client.listen.v1.media.transcribe_file(request=audio, model="nova-3")
    return client.listen.v1.media.transcribe_file(request=audio, model="nova-3")  # AG102
""",
    "azure-speech-result-future": """\
import asyncio
import azure.cognitiveservices.speech as speechsdk

async def recognize(config):
    recognizer = speechsdk.SpeechRecognizer(speech_config=config)
    recognizer.recognize_once()  # AG107
    future = recognizer.recognize_once_async()
    await asyncio.to_thread(future.get)
    return future.get()  # AG107
""",
    "azure-speech-audio-stream": """\
import azure.cognitiveservices.speech as azure_speechsdk

async def stream_audio(result, buffer: bytes):
    stream = azure_speechsdk.AudioDataStream(result)
    return stream.read_data(buffer)  # AG107
""",
    "youtube-dl-twin-of-yt-dlp": """\
import youtube_dl

async def download(urls):
    with youtube_dl.YoutubeDL({"format": "best"}) as ydl:
        ydl.download(urls)  # AG102
""",
    "psutil-interval-sleeps": """\
import psutil

async def system_health():
    busy = psutil.cpu_percent(interval=1)  # AG101
    psutil.cpu_percent(0.5)  # AG101
    psutil.Process().cpu_percent(interval=0.1)  # AG101
    psutil.cpu_percent()
    psutil.cpu_percent(interval=None)
    psutil.cpu_percent(interval=0)
    return busy
""",
    "boto3-client-constructor": """\
import boto3

class StorageService:
    @classmethod
    def from_settings(cls):
        return cls(boto3.client("s3", region_name="eu-west-1"))  # reads config and credentials

    def __init__(self, client):
        self.client = client

async def lifespan(app):
    app.state.storage = StorageService.from_settings()  # AG800
""",
    "multiprocessing-process-start": """\
import multiprocessing

def run_bot(room_url):
    ...

async def create_room_and_start(room_url: str):
    process = multiprocessing.Process(target=run_bot, kwargs=dict(room_url=room_url))
    process.start()  # AG105
    return process.pid
""",
    "os-path-realpath": """\
import os

async def preflight(file_path: str, base_dir: str):
    return os.path.realpath(file_path).startswith(os.path.realpath(base_dir))  # AG104
""",
    "path-parents-index-is-a-path": """\
from pathlib import Path

async def log_event(log_path: str):
    abs_path = Path(__file__).resolve().parents[2] / log_path
    session_folder = abs_path.parent
    if not session_folder.exists():  # AG104
        session_folder.mkdir(parents=True)  # AG104
""",
    "torch-hub-load": """\
import torch

class SileroVad:
    model = None

    def __call__(self, audio):
        if self.model is None:
            self.model, _ = torch.hub.load(repo_or_dir="snakers4/silero-vad", model="silero_vad")
        return self.model(audio)

vad = SileroVad()

async def on_audio(chunk):
    return vad(chunk)  # AG800
""",
    "celery-send-task-and-connection": """\
from celery import Celery

celery_app = Celery("jobs", broker="redis://localhost")

async def relay(event_type: str, payload: dict):
    celery_app.send_task(event_type, kwargs=payload)  # AG103
    connection = celery_app.connection()
    connection.ensure_connection(max_retries=1)  # AG103
    connection.release()
    return celery_app.control.inspect(timeout=1).ping()  # AG103
""",
    "celery-canvas-published": """\
from celery import Celery, chain, group

celery_app = Celery("jobs", broker="redis://localhost")

@celery_app.task
def resize(path):
    return path

async def process(paths: list[str]):
    chain(resize.s(paths[0]), resize.s()).apply_async()  # AG103
    group(resize.si(p) for p in paths).delay()  # AG103
    (resize.s(paths[0]) | resize.s()).apply_async()  # AG103
    return resize.s(paths[0])  # a signature only describes the work
""",
    "celery-results-ask-the-backend": """\
from celery import Celery
from celery.result import AsyncResult

celery_app = Celery("jobs", broker="redis://localhost", backend="redis://localhost")

@celery_app.task
def work(n):
    return n

async def task_status(task_id: str):
    result = AsyncResult(task_id, app=celery_app)
    state = celery_app.AsyncResult(task_id).state  # AG103
    job = work.delay(1)  # AG103
    if result.ready():  # AG103
        return {"id": job.id, "value": result.result}  # AG103
    return {"id": result.id, "status": result.status, "state": state}  # AG103
""",
    "selenium-commands-go-to-the-driver": """\
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

class Crawler:
    def __init__(self, driver: webdriver.Chrome | None = None):
        self.driver = driver
        self.wait = WebDriverWait(self.driver, 10)

    async def crawl(self, url: str, category: str):
        self.driver.get(url)  # AG105
        box = self.wait.until(lambda d: d.find_element(By.NAME, "category"))  # AG105
        Select(box).select_by_visible_text(category)  # AG105
        box.send_keys(category)  # AG105
        first = self.driver.find_elements(By.CLASS_NAME, "link")[0]  # AG105
        first.click()  # AG105
        for title in self.driver.find_elements(By.CLASS_NAME, "title"):  # AG105
            yield title.get_attribute("href")  # AG105
""",
    "document-sniffing-and-local-models": """\
import imghdr
import io
import magic
from fastapi import UploadFile
from fastembed import SparseTextEmbedding
from langchain_community.document_loaders import PyPDFLoader
from markitdown import MarkItDown
from transformers import AutoTokenizer

SPARSE = SparseTextEmbedding("Qdrant/bm25")  # at import: once
CONVERTER = MarkItDown()

async def ingest(upload: UploadFile, path: str, data: bytes, text: str):
    mime = magic.Magic(mime=True).from_buffer(data)  # AG104
    kind = imghdr.what(upload.file)  # AG104
    same = imghdr.what(io.BytesIO(data))  # in memory
    loader = PyPDFLoader(path)  # AG104
    document = CONVERTER.convert(path)  # AG104
    tokenizer = AutoTokenizer.from_pretrained("./models/reranker", local_files_only=True)  # AG112
    vectors = list(SPARSE.embed([text]))  # AG112
    return mime, kind, same, loader, document, tokenizer, vectors
""",
    "tls-context-loads-the-ca-bundle": """\
import ssl

CONTEXT = ssl.create_default_context()  # at import: once

async def fetch_with_tls(host: str):
    context = ssl.create_default_context()  # AG104
    context.load_cert_chain("client.pem")  # AG104
    return CONTEXT
""",
    "audio-files-and-in-memory-buffers": """\
import io
import wave
import librosa
import soundfile
from scipy.io import wavfile

async def save(path: str, rate: int, samples, content: bytes):
    wavfile.write(path, rate, samples)  # AG104
    wavfile.write(io.BytesIO(), rate, samples)
    librosa.load(path, sr=24000)  # AG104
    librosa.load(io.BytesIO(content), sr=24000)
    soundfile.read(io.BytesIO(content))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.writeframes(content)
    with wave.open(path, "wb") as wav:  # AG104
        wav.writeframes(content)
""",
    "whisper-model-and-audio": """\
import whisper

async def transcribe(path: str):
    model = whisper.load_model("base.en")  # AG104
    return whisper.load_audio(path)  # AG105
""",
    "dotenv-file-or-stream": """\
import io
from dotenv import dotenv_values, load_dotenv

async def settings(text: str):
    load_dotenv()  # AG104
    dotenv_values(".env")  # AG104
    return dotenv_values(stream=io.StringIO(text))
""",
    "minio-client-and-streamed-object": """\
from minio import Minio

minio_client = Minio("minio:9000", access_key="key", secret_key="secret", secure=False)  # builds no connection

async def get_file_from_source(bucket: str, name: str):
    if not minio_client.bucket_exists(bucket):  # AG107
        minio_client.make_bucket(bucket)  # AG107
    minio_client.stat_object(bucket, name)  # AG107
    response = minio_client.get_object(bucket, name)  # AG107
    try:
        return response.read()  # AG102
    finally:
        response.close()
        response.release_conn()
""",
    "minio-uploads-listings-and-presigned-urls": """\
from minio import Minio

def get_minio_client() -> Minio:
    return Minio("minio:9000", access_key="key", secret_key="secret")  # no region: presigning asks for it

async def sync_folder(bucket: str, prefix: str, local: str):
    client = get_minio_client()
    client.fput_object(bucket, f"{prefix}/a.csv", local)  # AG107
    client.fget_object(bucket, f"{prefix}/a.csv", local)  # AG107
    names = [item.object_name for item in client.list_objects(bucket, prefix=prefix)]  # AG107
    client.remove_object(bucket, names[0])  # AG107
    for chunk in client.get_object(bucket, names[1]).stream(32 * 1024):  # AG107
        pass
    return client.presigned_get_object(bucket, names[1])  # AG107
""",
    "dbutils-pooled-db-connection": """\
import pymysql
from dbutils.pooled_db import PooledDB

pool = PooledDB(creator=pymysql, maxconnections=10, host="db")  # opens no connection: mincached is 0

async def sign_in(user_id: int):
    conn = pool.connection()  # AG106
    cursor = conn.cursor()
    cursor.execute("select * from users where id=%s", (user_id,))  # AG106
    row = cursor.fetchone()  # AG106
    conn.commit()  # AG106
    conn.close()  # AG106
    return row
""",
    "dbutils-pool-behind-a-project-wrapper": """\
import pymysql
from dbutils.pooled_db import PooledDB

class DBPool:
    def __init__(self):
        self.pool = PooledDB(creator=pymysql, maxconnections=5, host="db")

    def get_connection(self):
        return self.pool.connection()

db_pool = DBPool()

async def sign_in(user_id: int):
    conn = db_pool.get_connection()  # AG800
    cursor = conn.cursor()
    cursor.execute("select * from users where id=%s", (user_id,))  # AG106
    conn.commit()  # AG106
""",
    "dbutils-legacy-spellings-and-eager-pool": """\
import pymysql
from DBUtils.PooledDB import PooledDB
from DBUtils.PersistentDB import PersistentDB

async def build(settings):
    PooledDB(pymysql, 5, host="db")  # AG106
    PooledDB(creator=pymysql, mincached=2, host="db")  # AG106
    PooledDB(creator=pymysql, mincached=0, host="db")
    persistent = PersistentDB(creator=pymysql, host="db")
    conn = persistent.connection()  # AG106
    conn.cursor().executemany("insert into t values (%s)", [(1,)])  # AG106
    conn.rollback()  # AG106
""",
    "pyarrow-flight-client": """\
import pyarrow.flight as flight

def _get_client() -> flight.FlightClient:
    return flight.FlightClient("grpc://flight:8815")  # connects lazily

async def download_dataframe(path: str):
    client = _get_client()
    descriptor = flight.FlightDescriptor.for_path(path)
    info = client.get_flight_info(descriptor)  # AG103
    reader = client.do_get(info.endpoints[0].ticket)  # AG103
    frame = reader.read_pandas()  # AG103
    client.do_action(flight.Action("clear", b""))  # AG103
    client.list_flights()  # AG103
    return frame
""",
    "firestore-streamed-snapshots": """\
from google.cloud import firestore

db = firestore.Client()

async def archive(user_id: str):
    query = db.collection("orders").where("user", "==", user_id)
    for doc in query.stream():  # AG106
        doc.reference.update({"archived": True})  # AG106
    for doc in db.collection("carts").stream():  # AG106
        doc.reference.delete()  # AG106
        doc.to_dict()
""",
    "langchain-chroma-persist-directory": """\
from langchain_community.vectorstores import Chroma
from langchain_chroma import Chroma as ChromaStore

async def get_organization_vector_store(org_id: str, embeddings):
    ChromaStore(collection_name=org_id, embedding_function=embeddings)
    Chroma(org_id, embeddings, None)
    Chroma(org_id, embeddings, f"/data/chroma/{org_id}")  # AG106
    return Chroma(collection_name=org_id, embedding_function=embeddings, persist_directory="/data/chroma")  # AG106
""",
}


@pytest.mark.parametrize("source", CASES.values(), ids=CASES.keys())
def test_family_reports_its_marked_lines(source):
    assert reported(source) == expected_findings(source)


def test_a_torch_module_of_the_project_called_on_the_loop_is_a_forward_pass(knowledge):
    """`model(batch)` runs `nn.Module.__call__`, which the project's subclass inherits: reported through it."""
    from asyncguard.lint.engine.checker import check_source

    text = ("import torch\nfrom torch import nn\n\n\nclass Classifier(nn.Module):\n    def forward(self, x):\n"
            "        return x\n\n\nmodel = Classifier()\n\n\nasync def classify(batch):\n"
            "    with torch.no_grad():\n        return model(batch)\n")
    [finding] = check_source(text, "app.py", "app", knowledge)
    assert (finding.line, finding.code, finding.via) == (15, "AG800", "AG112")
    assert finding.chain[-1]["name"] == "torch.nn.Module"  # the call shown as written: `model(...)`


def test_a_class_whose_name_starts_with_an_underscore_is_still_a_class(knowledge):
    """`GLOBALS = _Globals()`: calling a private class builds an instance of it, whose methods are followed."""
    from asyncguard.lint.engine.checker import check_source

    text = ("import sqlite3\n\n\nclass _Globals:\n    def rows(self):\n        return sqlite3.connect('x').execute('q')\n\n\n"
            "GLOBALS = _Globals()\n\n\nasync def handler():\n    return GLOBALS.rows()\n")
    [finding] = check_source(text, "app.py", "app", knowledge)
    assert (finding.line, finding.code, finding.chain[0]["name"]) == (13, "AG800", "app._Globals.rows")


def test_learned_paths_that_real_uses_do_not_take_are_declared_safe(knowledge):
    from asyncguard.lint.engine.checker import check_source

    text = ("import pytz\nfrom PIL import Image\n\n\nasync def f(image: Image.Image):\n    image.convert('RGB')\n"
            "    return pytz.timezone('Europe/Paris')\n")
    assert check_source(text, "app.py", "app", knowledge) == []

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
}


@pytest.mark.parametrize("source", CASES.values(), ids=CASES.keys())
def test_family_reports_its_marked_lines(source):
    assert reported(source) == expected_findings(source)

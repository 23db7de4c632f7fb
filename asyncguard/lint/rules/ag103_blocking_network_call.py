from asyncguard.lint.rule import Rule


class BlockingNetworkCall(Rule):
    """Finds blocking socket, DNS and mail/FTP protocol calls on the event loop: `socket.create_connection`,
    `socket.gethostbyname`, `sock.recv`, `smtplib.SMTP`, `ftplib`, `imaplib`, `paramiko`, and sync message-queue
    clients: RabbitMQ's `pika.BlockingConnection`, kafka-python, confluent-kafka's `flush`/`poll`, `rq`, Celery
    (`delay` and `apply_async` of tasks, chains and groups, `send_task`, `AsyncResult.get`, `control` and `inspect()`)
    and kombu connections, `ldap3`, Arrow Flight.
    """

    code = "AG103"
    name = "blocking-network-call-in-async-function"
    category = "socket"
    message = "blocking network call `{call}()` {context}"
    why = (
        "A blocking socket or DNS call waits for the network with the event loop held; a slow resolver or mail "
        "server freezes every connection of the worker."
    )
    flagged = [
        """\
import socket

async def resolve(host):
    return socket.gethostbyname(host)  # AG103
""",
        """\
import smtplib
from fastapi import BackgroundTasks, FastAPI

app = FastAPI()

@app.post("/signup")
async def signup(email: str):
    with smtplib.SMTP("localhost") as smtp:  # AG103
        smtp.sendmail("noreply@example.com", [email], "welcome")  # AG103
""",
        """\
from celery import Celery

celery_app = Celery("jobs", broker="redis://localhost")

async def enqueue_report(user_id: int):
    return celery_app.send_task("reports.build", kwargs={"user_id": user_id})  # AG103
""",
    ]
    accepted = [
        """\
import asyncio

async def resolve(host):
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, 443)
""",
        """\
import smtplib
from fastapi import BackgroundTasks, FastAPI

app = FastAPI()

def send_welcome(email):
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail("noreply@example.com", [email], "welcome")

@app.post("/signup")
async def signup(email: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(send_welcome, email)
""",
    ]

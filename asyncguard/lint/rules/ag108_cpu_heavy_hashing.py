from asyncguard.lint.rule import Rule


class CpuHeavyHashing(Rule):
    """Finds deliberately slow password hashing and key derivation on the event loop: bcrypt, passlib's
    `CryptContext.hash/verify`, pwdlib, argon2, werkzeug's `generate_password_hash`/`check_password_hash`,
    `hashlib.pbkdf2_hmac`, `hashlib.scrypt`.
    """

    code = "AG108"
    name = "cpu-heavy-hashing-in-async-function"
    category = "cpu"
    message = "CPU-heavy hashing `{call}()` {context}"
    why = (
        "Password hashes are designed to cost 50-500 ms of CPU each. On the event loop that time is taken from every "
        "other request: a login endpoint under load freezes the whole service."
    )
    flagged = [
        """\
from fastapi import FastAPI
from passlib.context import CryptContext

app = FastAPI()
pwd_context = CryptContext(schemes=["bcrypt"])

@app.post("/login")
async def login(password: str, stored_hash: str):
    return pwd_context.verify(password, stored_hash)  # AG108
""",
        """\
import hashlib

async def derive(password: bytes, salt: bytes):
    return hashlib.pbkdf2_hmac("sha256", password, salt, 600_000)  # AG108
""",
        """\
from werkzeug.security import check_password_hash

async def login(password: str, stored_hash: str):
    return check_password_hash(stored_hash, password)  # AG108
""",
    ]
    accepted = [
        """\
import asyncio
import hashlib

async def derive(password: bytes, salt: bytes):
    return await asyncio.to_thread(hashlib.pbkdf2_hmac, "sha256", password, salt, 600_000)
""",
        """\
import hashlib

async def etag(body: bytes):
    return hashlib.sha256(body).hexdigest()  # a fast digest, not a password hash
""",
    ]

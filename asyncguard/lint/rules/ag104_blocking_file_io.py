from asyncguard.lint.rule import Rule


class BlockingFileIo(Rule):
    """Finds blocking file-system calls on the event loop: `open`, `io.open`, `pathlib.Path` reads, writes and
    listings, `os` and `os.path` calls that touch the disk, `shutil`, `tempfile`, `glob`, archives (`zipfile`,
    `tarfile`), and libraries that read or write files: Pillow, OpenCV, pandas, NumPy, joblib, `torch.load`/`save`,
    `torch.hub`, Whisper's `load_model`, openpyxl, python-docx, pypdf, PyMuPDF, pdfplumber, audio files (`wave`,
    `scipy.io.wavfile`, librosa, soundfile), python-dotenv, file-type sniffing (python-magic, `imghdr`), MarkItDown
    and LangChain's PDF loader, and new TLS contexts (`ssl.create_default_context` reads the CA bundle).

    Pure path arithmetic (`os.path.join`, `os.path.relpath`, `Path.name`) does no I/O and is not reported, nor is a
    file-format library handed an in-memory buffer (`Image.open(io.BytesIO(data))`, `zipfile.ZipFile(buffer)`).
    """

    code = "AG104"
    name = "blocking-file-io-in-async-function"
    category = "file"
    message = "blocking file I/O `{call}()` {context}"
    why = (
        "Disk access is blocking in Python: a large export, a slow network file system or a cold cache holds the "
        "event loop for milliseconds to seconds."
    )
    flagged = [
        """\
from pathlib import Path
from fastapi import FastAPI

app = FastAPI()
EXPORTS = Path("/var/exports")

@app.post("/export")
async def export(name: str, body: str):
    (EXPORTS / name).write_text(body)  # AG104
    with open(EXPORTS / "index.log", "a") as log:  # AG104
        log.write(name)  # AG104
""",
        """\
from scipy.io import wavfile

async def record(path: str, rate: int, samples):
    wavfile.write(path, rate, samples)  # AG104
""",
    ]
    accepted = [
        """\
import asyncio
import os.path
from pathlib import Path

async def export(name: str, body: str):
    target = os.path.join("/var/exports", name)
    await asyncio.to_thread(Path(target).write_text, body)
""",
        """\
import asyncio

async def read(path):
    return await asyncio.to_thread(lambda: open(path).read())
""",
        """\
import io
from fastapi import UploadFile
from PIL import Image

async def thumbnail(upload: UploadFile):
    image = Image.open(io.BytesIO(await upload.read()))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
""",
        """\
import io
import wave

async def to_wav(pcm: bytes, rate: int):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()
""",
    ]

from asyncguard.lint.rule import Rule


class BlockingSubprocess(Rule):
    """Finds processes started or waited for synchronously on the event loop: `subprocess.run`, `check_output`,
    `Popen` and its `wait`/`communicate`, `os.system`, `os.popen`, `multiprocessing.Process.start`, and libraries
    that drive another program: ffmpeg-python, pydub, pytesseract, pdf2image, pdfkit, Whisper's `load_audio`,
    Playwright's sync API, Selenium.
    """

    code = "AG105"
    name = "blocking-subprocess-in-async-function"
    category = "subprocess"
    message = "blocking subprocess call `{call}()` {context}"
    why = "Waiting for a child process holds the event loop for the child's whole run time."
    flagged = [
        """\
import subprocess

async def thumbnail(path):
    subprocess.run(["convert", path, "thumb.png"], check=True)  # AG105
""",
        """\
import multiprocessing

def run_call(room_url: str):
    ...

async def start_call(room_url: str):
    process = multiprocessing.Process(target=run_call, args=(room_url,))
    process.start()  # AG105
    return process.pid
""",
    ]
    accepted = [
        """\
import asyncio

async def thumbnail(path):
    process = await asyncio.create_subprocess_exec("convert", path, "thumb.png")
    await process.wait()
""",
    ]

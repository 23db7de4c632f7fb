from asyncguard.lint.rule import Rule


class BlockingHttpCall(Rule):
    """Finds synchronous HTTP clients used on the event loop: `requests` (functions and `Session` methods),
    `httpx`'s sync API and `httpx.Client`, `urllib.request`, `http.client`, `urllib3`, and the sync clients of
    HTTP SDKs: OpenAI, Anthropic, Google GenAI and Vertex AI, Groq, Mistral, Cohere, Ollama, LiteLLM, Replicate,
    Hugging Face inference, LangChain, LangGraph and LlamaIndex runnables (`chain.invoke`, `prompt | llm`), fal.ai,
    Deepgram, Stripe, Razorpay, YooKassa, Twilio, SendGrid, Resend, Slack, Google Maps, yt-dlp and youtube-dl.
    """

    code = "AG102"
    name = "blocking-http-call-in-async-function"
    category = "http"
    message = "blocking HTTP call `{call}()` {context}"
    why = (
        "A synchronous HTTP request holds the event loop for the whole round trip to the other service: every "
        "other request on this worker waits, and one slow upstream stalls the service."
    )
    flagged = [
        """\
from google import genai
from openai import OpenAI

class Imagery:
    def __init__(self):
        self.gemini = genai.Client(api_key="key")
        self.openai = OpenAI()

    async def picture(self, prompt: str):
        self.openai.images.generate(model="dall-e-3", prompt=prompt)  # AG102
        return self.gemini.models.generate_images(model="imagen", prompt=prompt)  # AG102

    async def picture_async(self, prompt: str):
        return await self.gemini.aio.models.generate_images(model="imagen", prompt=prompt)
""",
        """\
from deepgram import DeepgramClient

deepgram = DeepgramClient("key")

async def transcribe(payload: dict, options: dict):
    await deepgram.listen.asyncrest.v("1").transcribe_file(payload, options)
    return deepgram.listen.rest.v("1").transcribe_file(payload, options)  # AG102
""",
        """\
import yookassa

async def create_payment(total: int):
    payment = yookassa.Payment.create({"amount": {"value": total, "currency": "RUB"}})  # AG102
    return payment.confirmation.confirmation_url
""",
        """\
import fal_client

async def flux(prompt: str):
    handler = fal_client.submit("fal-ai/flux/dev", arguments={"prompt": prompt})  # AG102
    return handler.get()  # AG102
""",
        """\
import requests
from fastapi import FastAPI

app = FastAPI()

@app.get("/users/{user_id}")
async def get_user(user_id: int):
    return requests.get(f"http://users.local/{user_id}").json()  # AG102
""",
        """\
import requests as r

class Gateway:
    def __init__(self):
        self.session = r.Session()

    async def charge(self, amount):
        return self.session.post("http://pay.local", json={"amount": amount})  # AG102
""",
        """\
import httpx

async def fetch(url):
    with httpx.Client() as client:
        return client.get(url)  # AG102
""",
    ]
    accepted = [
        """\
import httpx
from fastapi import FastAPI, Request

app = FastAPI()

@app.get("/users/{user_id}")
async def get_user(user_id: int, request: Request):
    client: httpx.AsyncClient = request.app.state.http
    response = await client.get(f"http://users.local/{user_id}")
    return response.json()
""",
        """\
import asyncio
import requests

async def fetch(url):
    return await asyncio.to_thread(requests.get, url)
""",
    ]

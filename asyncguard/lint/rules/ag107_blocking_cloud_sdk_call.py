from asyncguard.lint.rule import Rule


class BlockingCloudSdkCall(Rule):
    """Finds synchronous cloud SDK calls on the event loop: boto3 clients and resources (and building them), Google
    Cloud Storage, MinIO, Azure Blob Storage, Cosmos DB and Speech, Supabase storage and auth, Firebase Admin (auth,
    messaging), BigQuery, Pub/Sub, Google Cloud API clients and discovery-based Google APIs, ID-token verification
    that fetches keys (Google's, PyJWT's `PyJWKClient`), Cloudinary, the Hugging Face Hub.
    """

    code = "AG107"
    name = "blocking-cloud-sdk-call-in-async-function"
    category = "cloud"
    message = "blocking cloud SDK call `{call}()` {context}"
    why = "Cloud SDK calls are HTTP requests made with a blocking client: each one holds the event loop for a round trip."
    flagged = [
        """\
import boto3
from fastapi import FastAPI

app = FastAPI()
s3 = boto3.client("s3")

@app.get("/files/{key}")
async def download(key: str):
    return s3.get_object(Bucket="files", Key=key)["Body"].read()  # AG107
""",
        """\
from google.cloud import storage

class Uploads:
    def __init__(self):
        self.bucket = storage.Client().bucket("uploads")  # a local object: no request yet

    async def save(self, name: str, data: bytes):
        blob = self.bucket.blob(f"image/{name}")
        blob.upload_from_string(data)  # AG107
""",
        """\
import azure.cognitiveservices.speech as speechsdk

async def speak(config: speechsdk.SpeechConfig, text: str):
    synthesizer = speechsdk.SpeechSynthesizer(speech_config=config, audio_config=None)
    return synthesizer.speak_text_async(text).get()  # AG107
""",
    ]
    accepted = [
        """\
import asyncio
import boto3
from fastapi import FastAPI

app = FastAPI()
s3 = boto3.client("s3")

@app.get("/files/{key}")
async def download(key: str):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "files", "Key": key})
    obj = await asyncio.to_thread(s3.get_object, Bucket="files", Key=key)
    return {"url": url, "size": obj["ContentLength"]}
""",
        """\
import asyncio
import azure.cognitiveservices.speech as speechsdk

async def speak(config: speechsdk.SpeechConfig, text: str):
    synthesizer = speechsdk.SpeechSynthesizer(speech_config=config, audio_config=None)
    return await asyncio.to_thread(synthesizer.speak_text_async(text).get)
""",
    ]

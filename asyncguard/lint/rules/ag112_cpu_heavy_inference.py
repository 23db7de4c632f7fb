from asyncguard.lint.rule import Rule


class CpuHeavyInference(Rule):
    """Finds model inference and heavy text or image processing on the event loop: PyTorch modules called (a
    forward pass), Hugging Face `pipeline(...)` and `model.generate`, `sentence_transformers` `encode`, fastembed
    embeddings, scikit-learn `fit`/`predict`/`transform`, spaCy `nlp(...)`, langdetect, pyvi, `tiktoken` encoding,
    `llama_cpp` completions, ONNX Runtime `run`, Ultralytics YOLO, FlagEmbedding and `rerankers` models,
    `unstructured` partitioning, Pillow transforms, and models and tokenizers loaded from disk.

    These are C extensions, so nothing in Python source shows that they block: this knowledge is curated.
    """

    code = "AG112"
    name = "cpu-heavy-inference-in-async-function"
    category = "compute"
    message = "CPU-heavy `{call}()` {context}"
    why = (
        "A forward pass, an embedding or a completion holds the CPU for tens of milliseconds to seconds, and the "
        "event loop with it: every other request, health checks included, waits until it ends. This is the "
        "ML-serving case, where FastAPI is used most: run inference in a worker thread (PyTorch and most "
        "native libraries release the GIL), a process pool, or a model server."
    )
    flagged = [
        """\
from fastapi import FastAPI
from sentence_transformers import SentenceTransformer

app = FastAPI()
model = SentenceTransformer("all-MiniLM-L6-v2")

@app.post("/embed")
async def embed(text: str):
    return model.encode([text]).tolist()  # AG112
""",
        """\
from llama_cpp import Llama

llm = Llama(model_path="model.gguf")


async def complete(prompt: str):
    return llm.create_completion(prompt, max_tokens=64)  # AG112
""",
        """\
from transformers import pipeline

sentiment = pipeline("sentiment-analysis")


async def score(text: str):
    return sentiment(text)  # AG112
""",
        """\
from sklearn.linear_model import LogisticRegression

classifier = LogisticRegression()


async def predict(features):
    return classifier.predict([features])  # AG112
""",
        """\
import io

from fastapi import FastAPI, UploadFile
from PIL import Image
from ultralytics import YOLO

app = FastAPI()
detector = YOLO("yolov8n.pt")

@app.post("/detect")
async def detect(image: UploadFile):
    picture = Image.open(io.BytesIO(await image.read()))
    return detector.predict(picture)[0].tojson()  # AG112
""",
    ]
    accepted = [
        """\
import asyncio
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("all-MiniLM-L6-v2")


async def embed(text: str):
    return await asyncio.to_thread(model.encode, [text])
""",
        """\
from sklearn.linear_model import LogisticRegression


def train(features, labels):
    return LogisticRegression().fit(features, labels)  # a plain function: not on the loop
""",
    ]

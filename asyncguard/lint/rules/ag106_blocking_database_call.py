from asyncguard.lint.rule import Rule


class BlockingDatabaseCall(Rule):
    """Finds synchronous database and data-store drivers used on the event loop: `sqlite3`, `psycopg2`, psycopg's
    sync `Connection`, `pymysql`, mysql-connector (its pool too), DBUtils pools, `pymongo`, a sync SQLAlchemy
    `Session`/`Engine`/`Connection` (also through a `db: Session` parameter), sync `redis`, Elasticsearch and
    OpenSearch, Supabase (PostgREST) queries, Firestore and the Firebase Realtime Database, Neo4j, pyodbc, Oracle,
    Snowflake, DuckDB, ClickHouse, InfluxDB, and vector and search stores: Qdrant, Pinecone, Chroma (also LangChain's
    store on disk), Weaviate, Milvus, Meilisearch, Typesense.
    """

    code = "AG106"
    name = "blocking-database-call-in-async-function"
    category = "database"
    message = "blocking database call `{call}()` {context}"
    why = (
        "A synchronous driver waits for the database with the event loop held: every query's latency is added to "
        "every concurrent request, and a slow query stops the service."
    )
    flagged = [
        """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

app = FastAPI()

def get_db():
    ...

@app.get("/items/{item_id}")
async def read_item(item_id: int, db: Session = Depends(get_db)):
    return db.get(Item, item_id)  # AG106
""",
        """\
import sqlite3

async def count_notes():
    conn = sqlite3.connect("notes.db")  # AG106
    return conn.execute("select count(*) from notes").fetchone()  # AG106
""",
        """\
import redis

cache = redis.Redis()

async def hits():
    return cache.incr("hits")  # AG106
""",
        """\
from supabase import Client, create_client

supabase: Client = create_client("https://project.supabase.co", "service-key")

async def posts_of(user_id: str):
    result = supabase.table("posts").select("*").eq("user_id", user_id).execute()  # AG106
    return result.data
""",
        """\
from mysql.connector import pooling

pool = pooling.MySQLConnectionPool(pool_name="app", pool_size=5)

async def user_by_email(email: str):
    connection = pool.get_connection()  # AG106
    cursor = connection.cursor()
    cursor.execute("select id, name from users where email = %s", (email,))  # AG106
    row = cursor.fetchone()  # AG106
    connection.close()  # AG106
    return row
""",
    ]
    accepted = [
        """\
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

app = FastAPI()

async def get_db():
    ...

@app.get("/items/{item_id}")
async def read_item(item_id: int, db: AsyncSession = Depends(get_db)):
    return await db.get(Item, item_id)
""",
        """\
import redis.asyncio as redis

cache = redis.Redis()

async def hits():
    return await cache.incr("hits")
""",
        """\
import sqlite3
from fastapi import FastAPI

app = FastAPI()

@app.get("/notes/count")
def count_notes():  # a plain def runs in FastAPI's threadpool
    with sqlite3.connect("notes.db") as conn:
        return conn.execute("select count(*) from notes").fetchone()
""",
        """\
from supabase import acreate_client

async def posts_of(user_id: str):
    supabase = await acreate_client("https://project.supabase.co", "service-key")
    result = await supabase.table("posts").select("*").eq("user_id", user_id).execute()
    return result.data
""",
        """\
import mysql.connector.aio

async def user_by_email(email: str):
    async with await mysql.connector.aio.connect(host="db", user="app") as connection:
        async with await connection.cursor() as cursor:
            await cursor.execute("select id, name from users where email = %s", (email,))
            return await cursor.fetchone()
""",
    ]

"""`asyncguard server` as an editor meets it: JSON-RPC over stdio, diagnostics with the chain, the fix as an action."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT
from test_cli_formats import HELPER, ROUTE

TIMEOUT = 60


class Client:
    """A language client that reads the server's messages in a thread, so that no read can hang the test."""

    def __init__(self, cwd: Path, python: str = sys.executable, source: Path | None = ROOT):
        """`source`: where asyncguard is imported from (None: as `python` has it installed)."""
        env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        self.process = subprocess.Popen([python, "-m", "asyncguard", "server"], cwd=cwd,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        env={**env, "PYTHONPATH": str(source)} if source else env)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                return
            self.messages.put(json.loads(stream.read(length)))

    def send(self, method: str, params: dict, request: bool = False) -> int | None:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        return message.get("id")

    def wait_for(self, matches) -> dict:
        while True:
            message = self.messages.get(timeout=TIMEOUT)
            if matches(message):
                return message

    def request(self, method: str, params: dict) -> dict:
        sent = self.send(method, params, request=True)
        return self.wait_for(lambda message: message.get("id") == sent and "method" not in message)

    def close(self) -> None:
        self.request("shutdown", {})
        self.send("exit", {})
        try:
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def client(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "main.py").write_text(ROUTE)
    (tmp_path / "app" / "helpers.py").write_text(HELPER)
    started = Client(tmp_path)
    yield started, tmp_path
    started.close()


def published_for(client: Client, uri: str) -> list[dict]:
    return client.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                           and m["params"]["uri"] == uri)["params"]["diagnostics"]


def test_the_server_publishes_the_findings_with_their_chain_and_offers_the_fix(client):
    client, project = client
    answer = client.request("initialize", {"processId": None, "rootUri": project.as_uri(), "capabilities": {}})
    assert answer["result"]["capabilities"]["codeActionProvider"] and answer["result"]["serverInfo"]["name"] == \
        "asyncguard"
    client.send("initialized", {})
    uri = (project / "app" / "main.py").resolve().as_uri()
    diagnostics = published_for(client, uri)
    assert [(d["code"], d["range"]["start"]["line"]) for d in diagnostics] == [("AG101", 9), ("AG800", 10)]
    chained = diagnostics[1]
    assert chained["source"] == "asyncguard" and chained["codeDescription"]["href"].endswith("#ag800")
    assert [(info["location"]["uri"].rsplit("/", 1)[1], info["message"]) for info in chained["relatedInformation"]] \
        == [("helpers.py", "→ app.helpers.load"), ("helpers.py", "→ requests.get")]
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": ROUTE}})
    assert len(published_for(client, uri)) == 2
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "context": {"diagnostics": diagnostics[:1]},
        "range": {"start": {"line": 9, "character": 0}, "end": {"line": 9, "character": 20}}})["result"]
    assert [action["title"] for action in actions] == ["asyncguard: fix AG101 here"]
    edit, = actions[0]["edit"]["changes"][uri]
    assert "    await asyncio.sleep(1)\n" in edit["newText"] and "import asyncio" in edit["newText"]


def test_a_fixed_file_is_cleared_on_save(client):
    client, project = client
    client.request("initialize", {"processId": None, "rootUri": project.as_uri(), "capabilities": {}})
    client.send("initialized", {})
    uri = (project / "app" / "main.py").resolve().as_uri()
    assert published_for(client, uri)
    (project / "app" / "main.py").write_text("async def get_user(user_id: int):\n    return user_id\n")
    client.send("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert published_for(client, uri) == []

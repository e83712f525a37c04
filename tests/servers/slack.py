"""A Slack Web API stand-in on 127.0.0.1: a real HTTP server speaking enough of the API for slack-sdk.

It checks the bot token, resolves channel names to ids like Slack (chat.update and
conversations.history accept ids only), validates Block Kit limits (invalid_blocks), keeps every
message with its edits and metadata, records every call, and can be told to fail the next N calls
(429 + Retry-After, 500, ratelimited, invalid_auth, channel_not_found, missing_scope) or to answer late.
File uploads follow the three steps slack-sdk's files_upload_v2 takes: files.getUploadURLExternal hands out
an upload URL on this server, the bytes are POSTed there, files.completeUploadExternal shares the file in a
channel (as a message carrying it; ``files`` holds every upload).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

TOKEN = "xoxb-test-token-0000"
WEBHOOK_PATH = "/services/T000TEST/B000TEST/webhooksecret0000"
WEBHOOK_CHANNEL = "#webhook-channel"
FAILURES = ("429", "500", "ratelimited", "invalid_auth", "channel_not_found", "missing_scope")
UPLOAD_PREFIX = "/upload/v1/"


@dataclass
class Call:
    """One request as the stand-in saw it; ``at`` is time.monotonic() on arrival."""

    method: str
    params: dict[str, Any]
    at: float
    outcome: str = "ok"

    @property
    def channel(self) -> str | None:
        return self.params.get("channel")


@dataclass
class Message:
    """A message in its current state; ``edits`` holds every previous (text, blocks)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    edits: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class File:
    """An uploaded file: announced (getUploadURLExternal), its bytes (the upload URL), shared (complete)."""

    id: str
    filename: str
    length: int
    alt_txt: str | None
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None


class SlackStandIn:
    """State and behaviour of the fake workspace; the HTTP handler calls ``handle``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.store: dict[tuple[str, str], Message] = {}
        self.channel_ids: dict[str, str] = {}
        self.files: dict[str, File] = {}
        self.refused: dict[str, str] = {}  # method -> error it always answers (e.g. a token without a scope)
        self._failures: list[tuple[str, float]] = []
        self._delays: list[float] = []
        self._ts = 0
        self.base_url = ""
        self.webhook_url = ""

    # -- test controls -----------------------------------------------------------------------
    def fail_next(self, count: int, kind: str, retry_after: float = 1.0, after: int = 0) -> None:
        """Answer the next ``count`` calls with ``kind`` (one of FAILURES) instead of doing them; with ``after``,
        the calls after the next ``after`` ones (those are done as usual)."""
        assert kind in FAILURES, kind
        with self.lock:
            self._failures += [("", 0.0)] * after + [(kind, retry_after)] * count

    def refuse(self, method: str, error: str = "missing_scope") -> None:
        """Answer every call of ``method`` with ``error`` from now on (a bot token lacking that scope)."""
        with self.lock:
            self.refused[method] = error

    def delay_next(self, count: int, seconds: float) -> None:
        """Do the next ``count`` calls, but answer only after ``seconds`` (a client timeout after success)."""
        with self.lock:
            self._delays += [seconds] * count

    def channel_id(self, name: str) -> str:
        """The id Slack would give this channel name (created on first use)."""
        key = name.lstrip("#")
        if re.fullmatch(r"C[A-Z0-9]{8,}", key):  # already an id
            if key not in self.channel_ids.values():
                self.channel_ids[key] = key
            return key
        if key not in self.channel_ids:
            self.channel_ids[key] = "C" + hashlib.sha256(key.encode()).hexdigest()[:9].upper()
        return self.channel_ids[key]

    def messages(self, channel: str) -> list[Message]:
        """Current state (after edits) of every message in a channel (name or id), oldest first."""
        with self.lock:
            cid = self.channel_id(channel)
            return [m for (c, _), m in sorted(self.store.items(), key=lambda kv: float(kv[0][1])) if c == cid]

    @property
    def posts(self) -> list[Call]:
        """Successful chat.postMessage and webhook calls."""
        return [c for c in self.calls if c.method in ("chat.postMessage", "webhook") and c.outcome == "ok"]

    @property
    def uploads(self) -> list[File]:
        """Files uploaded and shared in a channel."""
        return [f for f in self.files.values() if f.channel is not None and f.data is not None]

    @property
    def updates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "chat.update" and c.outcome == "ok"]

    # -- request handling --------------------------------------------------------------------
    def handle(self, method: str, params: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any], float]:
        """(status, JSON body, delay) for one API call; records it."""
        with self.lock:
            call = Call(method, params, time.monotonic())
            self.calls.append(call)
            delay = self._delays.pop(0) if self._delays else 0.0
            kind, retry_after = self._failures.pop(0) if self._failures else ("", 0.0)
            if kind:
                call.outcome = kind
                return (*_failure(kind, retry_after), delay)
            if method != "webhook" and token != TOKEN:
                call.outcome = "invalid_auth"
                return 200, {"ok": False, "error": "invalid_auth"}, delay
            if method in self.refused:
                call.outcome = self.refused[method]
                return 200, {"ok": False, "error": self.refused[method]}, delay
            handler = getattr(self, "_api_" + method.replace(".", "_"), None)
            if handler is None:
                call.outcome = "unknown_method"
                return 404, {"ok": False, "error": "unknown_method"}, delay
            body = handler(params)
            if not body.get("ok", True):
                call.outcome = body["error"]
            return 200, body, delay

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{int(time.time())}.{self._ts:06d}"

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "team": "test", "user": "newsradar", "team_id": "T000TEST", "user_id": "U000BOT"}

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = _check_message(params)
        if problem:
            return {"ok": False, "error": problem}
        cid = self.channel_id(str(params.get("channel", "")))
        ts = self._next_ts()
        self.store[(cid, ts)] = Message(cid, ts, params.get("text", ""), params.get("blocks") or [],
                                        _metadata(params.get("metadata")))
        return {"ok": True, "channel": cid, "ts": ts, "message": {"text": params.get("text", ""), "ts": ts}}

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = _check_message(params)
        if problem:
            return {"ok": False, "error": problem}
        cid, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        if cid not in self.channel_ids.values():
            return {"ok": False, "error": "channel_not_found"}  # like Slack: ids only here
        message = self.store.get((cid, ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.edits.append((message.text, message.blocks))
        message.text, message.blocks = params.get("text", ""), params.get("blocks") or []
        if params.get("metadata"):
            message.metadata = _metadata(params["metadata"])
        return {"ok": True, "channel": cid, "ts": ts, "text": message.text}

    def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = str(params.get("channel", ""))
        if cid not in self.channel_ids.values():
            return {"ok": False, "error": "channel_not_found"}
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(params.get("limit") or 100)
        found = sorted((m for (c, _), m in self.store.items() if c == cid), key=lambda m: float(m.ts), reverse=True)
        out = []
        for m in found[:limit]:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text, "blocks": m.blocks}
            if with_meta and m.metadata:
                item["metadata"] = m.metadata
            out.append(item)
        return {"ok": True, "messages": out, "has_more": len(found) > limit}

    def _api_conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": cid, "name": name} for name, cid in self.channel_ids.items()]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            length = 0
        if not params.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + hashlib.sha256(f"{len(self.files)}{params['filename']}".encode()).hexdigest()[:10].upper()
        self.files[file_id] = File(file_id, str(params["filename"]), length, params.get("alt_txt"))
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url.removesuffix('/api/')}{UPLOAD_PREFIX}{file_id}"}

    def upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The upload URL: takes the bytes of an announced file, of exactly the announced length."""
        with self.lock:
            self.calls.append(Call("upload", {"file_id": file_id, "bytes": len(data)}, time.monotonic()))
            found = self.files.get(file_id)
            if found is None:
                return 404, "not found"
            if len(data) != found.length:
                return 400, f"expected {found.length} bytes, got {len(data)}"
            found.data = data
            return 200, f"OK - {len(data)}"

    def _api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            listed = json.loads(params.get("files") or "[]")
        except json.JSONDecodeError:
            return {"ok": False, "error": "invalid_arguments"}
        done = []
        for item in listed:
            found = self.files.get(str(item.get("id")))
            if found is None or found.data is None:
                return {"ok": False, "error": "file_not_found"}
            found.title = item.get("title")
            done.append(found)
        channel = params.get("channel_id")
        if channel:
            if channel not in self.channel_ids.values():
                return {"ok": False, "error": "channel_not_found"}  # like Slack: channel_id takes an id
            ts = self._next_ts()
            message = Message(channel, ts, params.get("initial_comment") or "", [], None)
            for found in done:
                found.channel = channel
                message.files.append({"id": found.id, "name": found.filename, "title": found.title})
            self.store[(channel, ts)] = message
        return {"ok": True, "files": [{"id": f.id, "name": f.filename, "title": f.title} for f in done]}

    def _api_webhook(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = _check_message(params)
        if problem:
            return {"ok": False, "error": problem}
        params["channel"] = WEBHOOK_CHANNEL
        return self._api_chat_postMessage(params)


def _metadata(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, str):
        raw = json.loads(raw)
    return raw if isinstance(raw, dict) else None


def _check_message(params: dict[str, Any]) -> str | None:
    """Slack's own validation: the limits a real workspace enforces with invalid_blocks / msg_too_long."""
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = params["blocks"] = json.loads(blocks)
    if not params.get("text") and not blocks:
        return "no_text"
    if len(params.get("text") or "") > 40000:
        return "msg_too_long"
    if blocks is None:
        return None
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if block.get("type") == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return "invalid_blocks"
        if block.get("type") == "header" and (block.get("text", {}).get("type") != "plain_text"
                                              or len(block.get("text", {}).get("text", "")) > 150):
            return "invalid_blocks"
        if block.get("type") == "context":
            elements = block.get("elements", [])
            if len(elements) > 10 or any(len(e.get("text", "")) > 3000 for e in elements):
                return "invalid_blocks"
    return None


def _failure(kind: str, retry_after: float) -> tuple[int, dict[str, Any]]:
    if kind == "429":
        return 429, {"ok": False, "error": "ratelimited", "_retry_after": retry_after}
    if kind == "500":
        return 500, {"ok": False, "error": "internal_error"}
    return 200, {"ok": False, "error": kind}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_POST(self) -> None:
        standin = self.server.standin
        body_bytes = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith(UPLOAD_PREFIX):
            status, text = standin.upload(self.path[len(UPLOAD_PREFIX):], body_bytes)
            self._send(status, text.encode(), "text/plain")
            return
        raw = body_bytes.decode("utf-8")
        if self.path == WEBHOOK_PATH:
            method = "webhook"
        elif self.path.startswith("/api/"):
            method = self.path[len("/api/"):].split("?")[0]
        else:
            self._send(404, b"not found", "text/plain")
            return
        params: dict[str, Any]
        if "json" in (self.headers.get("Content-Type") or ""):
            params = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw))
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
        status, body, delay = standin.handle(method, params, token)
        if delay:
            time.sleep(delay)
        retry_after = body.pop("_retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if method == "webhook":  # incoming webhooks answer in plain text
            text = "ok" if body.get("ok") else ("too_many_requests" if status == 429 else body.get("error", "error"))
            if status == 200 and not body.get("ok"):
                status = {"invalid_auth": 403, "channel_not_found": 404}.get(text, 400)
            self._send(status, text.encode(), "text/plain", headers)
        else:
            self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

    def _send(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: SlackStandIn


@contextlib.contextmanager
def serve_slack() -> Iterator[SlackStandIn]:
    """Run a Slack stand-in on 127.0.0.1 (port 0) for the ``with`` block (the fixture and bench/ use it)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    standin = SlackStandIn()
    server.standin = standin
    port = server.server_address[1]
    standin.base_url = f"http://127.0.0.1:{port}/api/"
    standin.webhook_url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="slack-standin", daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def slack_server() -> Iterator[SlackStandIn]:
    """A fresh Slack stand-in per test: ``.base_url`` ends in "/api/", ``.webhook_url`` is the webhook."""
    with serve_slack() as standin:
        yield standin

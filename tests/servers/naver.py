"""A local stand-in of the Naver News search API (``GET /v1/search/news.json``), on 127.0.0.1 (port 0).

It answers as the real API does (developers.naver.com/docs/serviceapi/search/news/news.md): JSON with
``lastBuildDate``, ``total``, ``start``, ``display`` and ``items`` (``title`` and ``description`` with the
query's words in ``<b>…</b>`` and HTML entities, ``originallink``, ``link``, ``pubDate`` in RFC 822 with
+0900), newest first with ``sort=date`` and in insertion order with the default ``sort=sim``. It checks what
the real one checks: the two headers (401 + errorCode 024 otherwise), ``query`` (SE01), ``display`` 1–100
(SE02), ``start`` 1–1000 (SE03) and ``sort`` (SE04). ``fail(status, body)`` makes the next requests answer
an error instead (429 with errorCode 010, 500 with SE99 …). Every request is recorded (path with query and
lower-cased headers), so tests can check paging and that the credentials were sent.

    with NaverApi(client_id="id", client_secret="pw") as api:
        api.add(title="포항 이차전지 특화단지", originallink="https://www.yna.co.kr/view/1", ...)
        url = api.url  # .../v1/search/news.json
"""

from __future__ import annotations

import html
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

PATH = "/v1/search/news.json"


@dataclass(frozen=True)
class Article:
    """One article the stand-in knows (plain text; highlighting and entities are added when answering)."""

    title: str
    originallink: str
    link: str
    description: str
    received: datetime  # Naver's pubDate: when Naver received it


def _highlight(text: str, words: list[str]) -> str:
    escaped = html.escape(text, quote=True)  # & < > " ' as entities, as the API sends them
    for word in words:
        escaped = escaped.replace(html.escape(word, quote=True), f"<b>{html.escape(word, quote=True)}</b>")
    return escaped


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        api = self.server.api
        parts = urlsplit(self.path)
        api._record(self.path, {k.lower(): v for k, v in self.headers.items()})
        status, body = api._answer(parts.path, parse_qs(parts.query), self.headers)
        try:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # half a surrogate pair in a text: escaped, as the API sends it ("\ud83d")
            data = json.dumps(body).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 429 and api.retry_after is not None:
            self.send_header("Retry-After", str(api.retry_after))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: NaverApi


class NaverApi:
    """The stand-in; a context manager that serves until closed."""

    def __init__(self, client_id: str = "test-client-id", client_secret: str = "test-client-secret") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.articles: list[Article] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.retry_after: int | None = None
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="naver-api", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def add(self, title: str, originallink: str, link: str, description: str, received: datetime) -> Article:
        article = Article(title, originallink, link, description, received)
        with self._lock:
            self.articles.append(article)
        return article

    def fail(self, status: int, body: dict[str, str], times: int = 1) -> None:
        """The next ``times`` requests answer ``status`` with ``body`` (e.g. 429, errorCode 010)."""
        with self._lock:
            self._failures.extend([(status, body)] * times)

    def searches(self) -> list[dict[str, str]]:
        """The query parameters of every search request so far."""
        with self._lock:
            return [{k: v[0] for k, v in parse_qs(urlsplit(p).query).items()} for p, _ in self.requests]

    def _record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, headers))

    def _answer(self, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            articles = list(self.articles)
        if path != PATH:
            return 404, {"errorMessage": "Invalid Search API (존재하지 않는 검색 api 요청입니다.)", "errorCode": "SE05"}
        if headers.get("X-Naver-Client-Id") != self.client_id or headers.get("X-Naver-Client-Secret") != self.client_secret:
            return 401, {"errorMessage": "NID AUTH Result Invalid (28) : Authentication failed. (인증에 실패했습니다.)",
                         "errorCode": "024"}  # fmt: skip
        text = (query.get("query") or [""])[0]
        if not text.strip():
            return 400, {"errorMessage": "Incorrect query request (잘못된 쿼리요청입니다.)", "errorCode": "SE01"}
        display, start, sort = (query.get("display") or ["10"])[0], (query.get("start") or ["1"])[0], \
            (query.get("sort") or ["sim"])[0]  # fmt: skip
        if not display.isdigit() or not 1 <= int(display) <= 100:
            return 400, {"errorMessage": "Invalid display value (부적절한 display 값입니다.)", "errorCode": "SE02"}
        if not start.isdigit() or not 1 <= int(start) <= 1000:
            return 400, {"errorMessage": "Invalid start value (부적절한 start 값입니다.)", "errorCode": "SE03"}
        if sort not in ("sim", "date"):
            return 400, {"errorMessage": "Invalid sort value (부적절한 sort 값입니다.)", "errorCode": "SE04"}
        words = [w for w in re.split(r"\s+", text.strip()) if w]
        hits = [a for a in articles if all(w in a.title or w in a.description for w in words)]
        if sort == "date":
            hits.sort(key=lambda a: a.received, reverse=True)
        page = hits[int(start) - 1: int(start) - 1 + int(display)]
        return 200, {
            "lastBuildDate": format_datetime(max((a.received for a in articles), default=datetime.now().astimezone())),
            "total": len(hits),
            "start": int(start),
            "display": len(page),
            "items": [
                {"title": _highlight(a.title, words), "originallink": a.originallink, "link": a.link,
                 "description": _highlight(a.description, words), "pubDate": format_datetime(a.received)}
                for a in page
            ],  # fmt: skip
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The stack's API for the e2e suite and the demo: a small FastAPI app run by real
``uvicorn --workers N`` (tests/e2e/realapi.py makes its venv inside the container).

- ``GET /api/v1/health`` checks Qdrant and TEI as the seeds' app does: 200
  ``{"status":"ok","dependencies":{...}}`` when both answer 2xx, else 503 ``"degraded"``;
  500 when the control file (``$API_CONTROL``) holds ``fail``.
- ``GET /api/v1/query?q=...&rid=...`` scores a small corpus (some CPU work) and answers the
  best documents and the worker's pid.
- Every request is logged through Python ``logging`` as one numbered line,
  ``api pid=<pid> seq=<n> rid=<rid> <method> <path> <status>``: ``seq`` counts per worker
  from 0, ``rid`` is the client's request id, so lost or doubled lines can be counted. To
  stdout (journald) by default; to ``$API_LOG_FILE`` through ``WatchedFileHandler``, which
  reopens after a rotation renamed the file, without any signal.

Configuration from the environment: API_QDRANT_HEALTH, API_TEI_HEALTH (URLs), API_CONTROL,
API_LOG_FILE.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import logging.handlers
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

CORPUS = [
    f"document {i} about {' '.join(str(i * k % 97) for k in range(1, 40))}" for i in range(300)
]


def request_logger() -> logging.Logger:
    logger = logging.getLogger("ragops_api.requests")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    path = os.environ.get("API_LOG_FILE")
    handler: logging.Handler
    if path:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger


app = FastAPI()
LOG = request_logger()
SEQ = itertools.count()


@app.middleware("http")
async def log_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    # Logged before the response goes out: a client that got an answer has its line.
    rid = request.query_params.get("rid", "-")
    LOG.info(
        "api pid=%d seq=%d rid=%s %s %s %d",
        os.getpid(),
        next(SEQ),
        rid,
        request.method,
        request.url.path,
        response.status_code,
    )
    return response


def check(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as answer:
            return "ok" if 200 <= answer.status < 300 else f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable: {getattr(exc, 'reason', exc)}"


def control() -> str:
    path = os.environ.get("API_CONTROL")
    if not path:
        return "ok"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or "ok"
    except OSError:
        return "ok"


@app.get("/api/v1/health")
def health() -> JSONResponse:
    if control() == "fail":
        return JSONResponse({"status": "error", "error": "injected failure"}, status_code=500)
    deps = {
        name: check(url)
        for name, url in (
            ("qdrant", os.environ.get("API_QDRANT_HEALTH")),
            ("tei", os.environ.get("API_TEI_HEALTH")),
        )
        if url
    }
    ok = all(v == "ok" for v in deps.values())
    body = {"status": "ok" if ok else "degraded", "dependencies": deps}
    return JSONResponse(body, status_code=200 if ok else 503)


@app.get("/api/v1/query")
def query(q: str = "document", rid: str = "-") -> dict[str, Any]:
    words = q.lower().split()
    scores: list[tuple[int, int]] = []
    for index, text in enumerate(CORPUS):
        digest = hashlib.sha256(text.encode()).digest()
        score = sum(text.count(w) for w in words) * 256 + digest[0]
        scores.append((score, index))
    best = [index for _score, index in sorted(scores, reverse=True)[:3]]
    return {"rid": rid, "pid": os.getpid(), "results": best}

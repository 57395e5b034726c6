"""A stand-in for the RAG API: ``GET /api/v1/health`` reports its dependencies.

It probes each dependency URL given (``--qdrant URL``, ``--tei URL``) on every request:
200 ``{"status":"ok","dependencies":{...}}`` when all answer 2xx, else 503 with the same
shape and ``"status":"degraded"``. A fault injected through the control file or
``POST /_control`` makes it 500 on its own.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from typing import TYPE_CHECKING

# Run by path inside the container (no package there): the sibling module is "common".
if TYPE_CHECKING:
    from tests.standins.common import Control, Handler, StandinServer, base_parser, serve
else:
    from common import Control, Handler, StandinServer, base_parser, serve


def check(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return "ok" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"unreachable: {reason}"


def health(handler: Handler) -> None:
    if handler.server.control.apply() == "fail":
        handler.send_json(500, {"status": "error", "error": "injected failure"})
        return
    deps: dict[str, str] = handler.server.extra["deps"]
    timeout = float(handler.server.extra["dep_timeout"])
    found = {name: check(url, timeout) for name, url in deps.items()}
    ok = all(v == "ok" for v in found.values())
    handler.send_json(
        200 if ok else 503, {"status": "ok" if ok else "degraded", "dependencies": found}
    )


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--qdrant", default=None, help="Qdrant health URL, e.g. .../readyz")
    parser.add_argument("--tei", default=None, help="TEI health URL, e.g. .../health")
    parser.add_argument("--dependency-timeout", type=float, default=2.0)
    args = parser.parse_args()
    routes = {("GET", "/api/v1/health"): health}
    server = StandinServer(args.port, routes, Control(args.control), args.host)
    server.extra["deps"] = {k: v for k, v in (("qdrant", args.qdrant), ("tei", args.tei)) if v}
    server.extra["dep_timeout"] = args.dependency_timeout
    serve(server, args.pid_file)


if __name__ == "__main__":
    main()

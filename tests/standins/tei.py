"""A stand-in for TEI (text-embeddings-router), behaving as FACTS.md says.

The port stays closed while it "loads the model" (``--load-seconds``); then ``/health``
(and the aliases ``/`` and ``/ping``) answer 200, or 503
``{"error":"unhealthy","error_type":"Unhealthy"}`` once a failure is injected
(``fail`` in the control file or ``POST /_control``). ``POST /embed`` returns small
deterministic vectors.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from typing import TYPE_CHECKING

# Run by path inside the container (no package there): the sibling module is "common".
if TYPE_CHECKING:
    from tests.standins.common import Control, Handler, StandinServer, base_parser, serve
else:
    from common import Control, Handler, StandinServer, base_parser, serve

UNHEALTHY = {"error": "unhealthy", "error_type": "Unhealthy"}


def health(handler: Handler) -> None:
    if handler.server.control.apply() == "fail":
        handler.send_json(503, UNHEALTHY)
        return
    handler.send_response(200)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def embed(handler: Handler) -> None:
    import json

    try:
        inputs = json.loads(handler.body() or b"{}").get("inputs", "")
    except ValueError:
        handler.send_json(422, {"error": "invalid JSON", "error_type": "Validation"})
        return
    if handler.server.control.apply() == "fail":
        handler.send_json(424, {"error": "backend failed", "error_type": "Backend"})
        return
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    dim = int(handler.server.extra["dim"])
    handler.send_json(200, [vector(str(t), dim) for t in texts])


def vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 4) for i in range(dim)]


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--load-seconds",
        type=float,
        default=0.0,
        help="keep the port closed this long (model download and warm-up)",
    )
    parser.add_argument("--dim", type=int, default=8)
    args = parser.parse_args()
    if args.load_seconds > 0:
        print(f"loading the model for {args.load_seconds:g}s", file=sys.stderr, flush=True)
        time.sleep(args.load_seconds)
    routes = {("GET", p): health for p in ("/health", "/", "/ping")}
    routes[("POST", "/embed")] = embed
    server = StandinServer(args.port, routes, Control(args.control), args.host)
    server.extra["dim"] = args.dim
    serve(server, args.pid_file)


if __name__ == "__main__":
    main()

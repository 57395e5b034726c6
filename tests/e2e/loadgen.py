"""Steady HTTP load against the API, run inside the e2e container (standard library only).

``python3 loadgen.py --url URL --rate R --stop-file F --out OUT``: R requests per second,
each on a new connection (``Connection: close``: a request never rides on a kept-alive
connection that a stopping worker closes), until F exists. Every request carries
``rid=<prefix>-<n>``; OUT gets a JSON summary: counts, the first errors, the ids answered
200 (to find each in the API's log), and the worker pids that answered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok: list[str] = []
        self.errors: list[str] = []
        self.failed = 0
        self.pids: dict[str, int] = {}

    def one(self, base: urllib.parse.SplitResult, rid: str, timeout: float) -> None:
        conn = http.client.HTTPConnection(base.hostname or "127.0.0.1", base.port, timeout=timeout)
        try:
            conn.request(
                "GET", f"{base.path}?q=document+7&rid={rid}", headers={"Connection": "close"}
            )
            answer = conn.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"HTTP {answer.status}")
            pid = str(json.loads(body)["pid"])
            with self.lock:
                self.ok.append(rid)
                self.pids[pid] = self.pids.get(pid, 0) + 1
        except Exception as exc:  # every failure counts, whatever it is
            with self.lock:
                self.failed += 1
                if len(self.errors) < 20:
                    self.errors.append(f"{rid}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prefix", default="r")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    base = urllib.parse.urlsplit(args.url)
    tally = Tally()
    started = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(max_workers=32) as pool:
        while not os.path.exists(args.stop_file):
            elapsed = time.monotonic() - started
            if elapsed > args.max_seconds:
                break
            due = int(elapsed * args.rate) + 1
            while sent < due:
                pool.submit(tally.one, base, f"{args.prefix}-{sent}", args.timeout)
                sent += 1
            time.sleep(0.01)
        seconds = time.monotonic() - started
    summary = {
        "sent": sent,
        "ok": len(tally.ok),
        "failed": tally.failed,
        "errors": tally.errors,
        "seconds": round(seconds, 3),
        "rate": round(sent / seconds, 2) if seconds else 0.0,
        "pids": tally.pids,
        "ok_rids": tally.ok,
    }
    with open(args.out + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(summary, handle)
    os.rename(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()

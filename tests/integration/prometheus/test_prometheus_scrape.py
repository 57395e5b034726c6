"""The agent's metrics as the real Prometheus and promtool see them (Debian's prometheus).

A real agent loop over real stand-ins (tests/integration/daemon/agentstack.py) serves its
metrics; ``promtool check metrics`` reads the exposition; a real ``prometheus`` on a
loopback port scrapes it every second with the shipped rules loaded, and every panel
expression of the shipped dashboard is queried through /api/v1/query.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.snapshot.drill import record_verify
from agent.snapshot.jobs import record_success
from tests.integration.daemon.agentstack import Running, Stack, free_port, wait_until
from tests.paths import PROMETHEUS

PROMETHEUS_BIN = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
DASHBOARD = PROMETHEUS / "ragops.dashboard.json"
RULES = PROMETHEUS / "ragops.rules.yml"
FAST = {"interval_seconds": 0.2, "timeout_seconds": 1.0, "start_grace_seconds": 1.0}

pytestmark = pytest.mark.skipif(
    PROMETHEUS_BIN is None or PROMTOOL is None,
    reason="prometheus/promtool not installed (apt-get install prometheus)",
)


def panel_exprs() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bragops_[a-z_]+\b", expr))


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def start_prometheus(root: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    assert PROMETHEUS_BIN is not None
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {json.dumps(str(RULES))}\n"
        "scrape_configs:\n  - job_name: ragops\n"
        f"    static_configs:\n      - targets: [{json.dumps(target)}]\n"
    )
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS_BIN,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


async def query(client: httpx.AsyncClient, base: str, expr: str) -> dict[str, Any]:
    response = await client.get(f"{base}/api/v1/query", params={"query": expr})
    doc: dict[str, Any] = response.json()
    return doc


def build_stack(stack: Stack) -> None:
    stack.add("tei", "tei.py", FAST)
    stack.add("api", "api.py", FAST, path="/api/v1/health")
    data = stack.root / "data"
    data.mkdir()
    stack.services["tei"]["memory_max"] = "1G"
    stack.services["tei"]["data_paths"] = [str(data)]
    # What a snapshot job records (the real function): the snapshot panels have data.
    record_success(stack.run_dir / "state", "docs", time.time() - 60, 4096, 1.5)
    # And what the restore drill records (the real function): the verify panel has data.
    verified = {"ok": True, "id": "docs-1", "timestamp": time.time() - 30}
    record_verify(stack.run_dir / "state", "docs", verified)


def test_the_exposition_passes_promtool_check_metrics(stack: Stack) -> None:
    build_stack(stack)
    port = free_port()

    async def scenario() -> None:
        async with Running(stack, metrics=f"127.0.0.1:{port}") as s:
            await wait_until(
                lambda: all(s.health(n) == "healthy" for n in ("tei", "api")), 15, "healthy"
            )
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            assert 'ragops_service_memory_max_bytes{service="tei"} 1073741824' in text
            assert 'ragops_snapshot_last_size_bytes{collection="docs"} 4096' in text
            result = check_metrics(text)
            assert (result.returncode, result.stdout + result.stderr) == (0, "")
            # promtool does read it: a counter without _total is reported.
            bad = text.replace("ragops_agent_rounds_total", "ragops_agent_rounds")
            assert "counter metrics should have" in check_metrics(bad).stderr

    asyncio.run(scenario())


def test_prometheus_scrapes_the_agent_and_every_panel_returns_a_series(stack: Stack) -> None:
    build_stack(stack)
    port = free_port()

    async def scenario() -> None:
        async with Running(stack, metrics=f"127.0.0.1:{port}") as s:
            proc, base = start_prometheus(stack.root, f"127.0.0.1:{port}")
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    await scrape_and_query(s, client, base, port)
            finally:
                proc.terminate()
                proc.wait(10)

    asyncio.run(scenario())


async def scrape_and_query(s: Stack, client: httpx.AsyncClient, base: str, port: int) -> None:
    await wait_until(lambda: all(s.health(n) == "healthy" for n in ("tei", "api")), 15, "healthy")
    samples: list[Any] = []

    async def scraped_twice() -> bool:
        try:
            doc = await query(client, base, "count_over_time(ragops_agent_rounds_total[1m])")
        except httpx.HTTPError:
            return False
        samples[:] = doc.get("data", {}).get("result", [])
        return bool(samples) and float(samples[0]["value"][1]) >= 3

    deadline = time.monotonic() + 30
    while not await scraped_twice():
        assert time.monotonic() < deadline, "prometheus did not scrape the agent 3 times in 30 s"
        await asyncio.sleep(0.5)

    for title, expr in panel_exprs():
        doc = await query(client, base, expr)
        assert doc["status"] == "success", (title, expr, doc)
        assert doc["data"]["result"], f"panel {title!r}: {expr} returned no series"

    # A broken expression is reported as such (the check above can fail).
    assert (await query(client, base, "rate(ragops_service_up[")).get("status") == "error"

    # The health state Prometheus holds is the agent's.
    doc = await query(client, base, "ragops_service_state == 1")
    seen = {r["metric"]["service"]: r["metric"]["state"] for r in doc["data"]["result"]}
    assert seen == {n: s.health(n) for n in ("tei", "api")}

    # The shipped rules load in the real server and evaluate without error.
    rules = (await client.get(f"{base}/api/v1/rules")).json()["data"]["groups"]
    loaded = {r["name"]: r["health"] for g in rules for r in g["rules"]}
    assert len(loaded) >= 7
    assert set(loaded.values()) == {"ok"}, loaded

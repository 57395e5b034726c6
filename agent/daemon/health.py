"""The health states a service can be in: names only, standard library, nothing to build.

The judgement (agent/daemon/judgement.py) moves services between them; the metrics' state
label and ``ragops status`` (on its fast path, which must stay this light) read them here.
"""

from __future__ import annotations

HEALTHY = "healthy"
STARTING = "starting"
UNHEALTHY = "unhealthy"
BLOCKED = "blocked"
GAVE_UP = "gave-up"
STOPPED = "stopped"
UNKNOWN = "unknown"
# Every health a service can be in (the metrics' state label takes each of them).
STATES = (HEALTHY, STARTING, UNHEALTHY, BLOCKED, GAVE_UP, STOPPED, UNKNOWN)
# What `ragops status` accepts for exit code 0.
FINE = frozenset({HEALTHY, STARTING})

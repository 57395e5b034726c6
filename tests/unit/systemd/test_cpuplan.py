from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.loading import load_settings, settings_from_data
from agent.config.models import Settings
from agent.errors import ConfigError
from agent.systemd.cpuplan import apportion, plan_cpus
from tests.paths import SHIPPED_CONFIG


def shipped() -> Settings:
    return load_settings(SHIPPED_CONFIG)


def test_four_cores_give_api_two_tei_one_and_qdrant_bm25_ragops_the_last() -> None:
    plan = plan_cpus(shipped(), 4)
    assert plan.services == {"qdrant": [3], "tei": [2], "api": [0, 1], "bm25": [3]}
    assert plan.ragops == [3]
    assert plan.affinity("api") == "0-1"


def test_one_core_puts_everything_on_core_zero() -> None:
    plan = plan_cpus(shipped(), 1)
    assert set(map(tuple, plan.services.values())) == {(0,)}
    assert plan.ragops == [0]


def test_two_cores_keep_the_api_alone_on_core_zero() -> None:
    plan = plan_cpus(shipped(), 2)
    assert plan.services["api"] == [0]
    assert plan.services["tei"] == plan.services["qdrant"] == [1]


def test_explicit_cpus_override_the_plan() -> None:
    settings = shipped()
    settings.services["tei"].cpus = "0-1 3"
    assert plan_cpus(settings, 4).services["tei"] == [0, 1, 3]


def test_override_naming_a_missing_cpu_is_a_config_error_with_its_path() -> None:
    settings = shipped()
    settings.services["tei"].cpus = "7"
    with pytest.raises(ConfigError) as caught:
        plan_cpus(settings, 4)
    assert "at 'services.tei.cpus'" in caught.value.problems[0]
    assert "CPU 7 does not exist on 4 cores" in caught.value.problems[0]


def test_apportion_sums_to_cores_and_gives_everyone_one() -> None:
    assert apportion(4, [2.0, 1.0, 1.0]) == [2, 1, 1]
    assert apportion(7, [1.0, 1.0, 1.0]) == [3, 2, 2]
    assert apportion(3, [100.0, 1.0, 1.0]) == [1, 1, 1]


service_names = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True).filter(
        lambda n: n not in {"agent", "snapshot", "logrotate", "target"}
    ),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=300, deadline=None)
@given(
    names=service_names,
    weights=st.lists(st.floats(min_value=0.1, max_value=50), min_size=12, max_size=12),
    groups=st.lists(st.integers(min_value=0, max_value=4), min_size=12, max_size=12),
    cores=st.integers(min_value=1, max_value=256),
)
def test_any_plan_from_1_to_256_cores_is_complete_and_in_range(
    names: list[str], weights: list[float], groups: list[int], cores: int
) -> None:
    data = {
        "services": {
            name: {
                "exec": ["/bin/true"],
                "core_weight": weights[i],
                "cpu_group": f"g{groups[i]}" if groups[i] else None,
            }
            for i, name in enumerate(names)
        }
    }
    plan = plan_cpus(settings_from_data(data, "generated.toml"), cores)
    used: set[int] = set()
    for name in names:
        cpus = plan.services[name]
        assert cpus, f"{name} got no core"
        assert all(0 <= c < cores for c in cpus)
        used.update(cpus)
    assert plan.ragops and all(0 <= c < cores for c in plan.ragops)
    if cores >= len(names):
        assert used == set(range(cores)), "a core was left idle"


@settings(max_examples=100, deadline=None)
@given(cores=st.integers(min_value=1, max_value=256))
def test_shipped_config_plans_every_core_count(cores: int) -> None:
    plan = plan_cpus(shipped(), cores)
    assert plan.services["api"][0] == 0
    used = {c for cpus in plan.services.values() for c in cpus}
    assert used == set(range(cores))
    # Qdrant and the BM25 worker share their group; ragops' jobs run beside them.
    assert plan.services["qdrant"] == plan.services["bm25"] == plan.ragops

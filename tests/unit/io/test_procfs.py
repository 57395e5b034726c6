"""Process figures read from /proc, checked against the kernel's other accounts of them."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from agent.io import procfs


def test_usage_is_this_process_resident_size_and_cpu_time() -> None:
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # some CPU time to see
        pass
    usage = procfs.process_usage(os.getpid())
    assert usage is not None
    rss, cpu = usage
    with open("/proc/self/status") as status:
        vm_rss = next(int(ln.split()[1]) * 1024 for ln in status if ln.startswith("VmRSS:"))
    assert abs(rss - vm_rss) <= 1 << 20
    own = resource.getrusage(resource.RUSAGE_SELF)
    assert 0.05 <= cpu <= own.ru_utime + own.ru_stime + 0.05


def test_a_child_and_its_child_are_in_the_tree_and_gone_processes_answer_none() -> None:
    code = "import subprocess, sys, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        tree: list[int] = []
        while time.monotonic() < deadline and len(tree) < 3:
            tree = procfs.process_tree(os.getpid())
            time.sleep(0.05)
        children = procfs.children_map()
        assert child.pid in children[os.getpid()] and child.pid in tree
        grandchildren = children[child.pid]
        assert len(grandchildren) == 1 and grandchildren[0] in tree
        assert set(procfs.descendants(os.getpid(), children)) >= {child.pid, *grandchildren}
    finally:
        for pid in procfs.descendants(child.pid, procfs.children_map()):
            os.kill(pid, 9)
        child.kill()
        child.wait()
    assert procfs.process_usage(child.pid) is None
    assert procfs.cpu_affinity(child.pid) is None
    assert procfs.process_tree(child.pid) == []


def test_affinity_is_the_schedulers_cpu_set() -> None:
    assert procfs.cpu_affinity(os.getpid()) == sorted(os.sched_getaffinity(0))


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() -> None:
    name = "a) b (c"
    code = f"import ctypes, time; ctypes.CDLL(None).prctl(15, {name.encode()!r}); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/comm") as comm:
                if comm.read().strip() == name:
                    break
            time.sleep(0.05)
        fields = procfs.stat_fields(child.pid)
        assert fields is not None and int(fields[1]) == os.getpid()
        assert os.getpid() in procfs.children_map() and procfs.process_usage(child.pid)
    finally:
        child.kill()
        child.wait()

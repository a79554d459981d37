"""How many local worker processes a job gets: the cores this process may use, and no more
than its memory holds.

``os.cpu_count()`` counts the machine, not what the job may use: a container limited to 2
CPUs on a 64-core host (a cgroup CPU quota), or a process pinned to some cores (``taskset``,
CPU affinity), would start 64 workers that fight over 2 cores. ``usable_cores`` counts the
smallest of the affinity mask and the cgroup quota (v2 ``cpu.max`` or v1
``cpu.cfs_quota_us``); ``default_workers`` then caps it so each worker has
``WORKER_MEMORY`` of the memory still available (MemAvailable, or the cgroup's limit less
its usage when that is smaller). No Beam here: the command line imports this module.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# What one local worker may need at its peak: bench/memory.py measures 250-360 MiB per job
# process at 10k-100k records (flat in the data); the rest is headroom for a shard sorted in
# memory and the runner's own copy of the bundles.
WORKER_MEMORY = 1 << 30
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")
SELF_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(controller: str, root: Path, self_cgroup: Path) -> list[Path]:
    """Where this process's cgroup files for ``controller`` may be: its own cgroup's folder
    (v2: the unified hierarchy; v1: the controller's), then the mount itself (inside a
    container the cgroup namespace often makes the mount the process's own cgroup)."""
    dirs = []
    for line in (_read(self_cgroup) or "").splitlines():
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # v2
            dirs += [root / relative, root]
        elif controller in controllers.split(","):  # v1
            mount = root / controllers
            dirs += [mount / relative, mount]
    return dirs


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The CPUs the cgroup quota allows (quota / period), or None when unlimited."""
    for folder in _cgroup_dirs("cpu", root, self_cgroup):
        text = _read(folder / "cpu.max")  # v2: "max 100000" or "200000 100000"
        if text is not None:
            quota, _, period = text.partition(" ")
            if quota != "max" and period:
                return int(quota) / int(period)
            return None
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return int(quota) / int(period) if int(quota) > 0 else None  # -1: unlimited
    return None


def usable_cores(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int:
    """The cores this process may run on: CPU affinity, lowered by a cgroup quota (a quota of
    1.5 CPUs is 2 workers: rounded up, the last one shares)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity call
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root, self_cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def available_memory(
    meminfo: Path = MEMINFO, root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP
) -> int | None:
    """Bytes the job can still use: MemAvailable, or the cgroup's limit less its usage when
    that is smaller; None where neither can be read."""
    found = []
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemAvailable:"):
            found.append(int(line.split()[1]) * 1024)
    for folder in _cgroup_dirs("memory", root, self_cgroup):
        limit = _read(folder / "memory.max") or _read(folder / "memory.limit_in_bytes")
        usage = _read(folder / "memory.current") or _read(folder / "memory.usage_in_bytes")
        if limit is not None and usage is not None:
            if limit != "max" and int(limit) < 1 << 60:  # v1 says "no limit" with ~2**63
                found.append(max(0, int(limit) - int(usage)))
            break
    return min(found) if found else None


def default_workers(
    cores: int | None = None, memory: int | None = None, per_worker: int = WORKER_MEMORY
) -> int:
    """One worker per usable core, fewer where ``per_worker`` bytes each would not fit."""
    cores = usable_cores() if cores is None else cores
    memory = available_memory() if memory is None else memory
    if memory is not None:
        cores = min(cores, memory // per_worker)
    return max(1, cores)

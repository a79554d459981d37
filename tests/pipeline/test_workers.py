"""How many local workers a job gets: the cores it may use (affinity, cgroup quota), capped by
the memory each worker needs; and how --workers meets Beam's own flags and other runners."""

import argparse
import os

import pytest
from apache_beam.options.pipeline_options import DirectOptions

from commandline.flags import UsageError
from pipeline import options as job_options
from pipeline import workers
from pipeline.options import parse_job_args
from pipeline.workers import available_memory, cgroup_cpu_quota, default_workers, usable_cores

GIB = 1 << 30


def cgroups(tmp_path, files: dict[str, str], self_cgroup: str):
    """A fake /sys/fs/cgroup holding ``files`` and a fake /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(self_cgroup)
    return root, proc


def test_a_cgroup_v2_quota_of_one_and_a_half_cpus_allows_two_workers(tmp_path, monkeypatch):
    root, proc = cgroups(tmp_path, {"job/cpu.max": "150000 100000\n"}, "0::/job\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)))
    assert cgroup_cpu_quota(root, proc) == 1.5
    assert usable_cores(root, proc) == 2


def test_a_cgroup_v1_quota_counts_and_minus_one_means_unlimited(tmp_path):
    limited = {"cpu,cpuacct/cpu.cfs_quota_us": "300000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}
    root, proc = cgroups(tmp_path / "a", limited, "4:cpu,cpuacct:/\n")
    assert cgroup_cpu_quota(root, proc) == 3
    free = {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}
    root, proc = cgroups(tmp_path / "b", free, "4:cpu:/\n")
    assert cgroup_cpu_quota(root, proc) is None


def test_the_cpu_affinity_counts_not_the_machines_cores(tmp_path, monkeypatch):
    root, proc = cgroups(tmp_path, {"cpu.max": "max 100000\n"}, "0::/\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {3, 5, 7})
    assert usable_cores(root, proc) == 3


def test_a_cgroup_memory_limit_below_memavailable_is_what_is_available(tmp_path):
    root, proc = cgroups(
        tmp_path,
        {"job/memory.max": str(3 * GIB), "job/memory.current": str(GIB)},
        "0::/job\n",
    )
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: {64 * GIB // 1024} kB\nMemAvailable: {32 * GIB // 1024} kB\n")
    assert available_memory(meminfo, root, proc) == 2 * GIB


def test_workers_are_one_per_core_unless_memory_would_not_hold_them():
    assert default_workers(cores=16, memory=64 * GIB, per_worker=GIB) == 16
    assert default_workers(cores=16, memory=5 * GIB + 1, per_worker=GIB) == 5
    assert default_workers(cores=16, memory=GIB // 2, per_worker=GIB) == 1


def _parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    return parse_job_args(parser, argv)


def _direct(options):
    direct = options.view_as(DirectOptions)
    return direct.direct_running_mode, direct.direct_num_workers


def test_a_job_without_flags_gets_a_worker_process_per_usable_core(monkeypatch):
    monkeypatch.setattr(job_options, "default_workers", workers.default_workers)  # conftest's 1
    monkeypatch.setattr(workers, "usable_cores", lambda: 3)
    monkeypatch.setattr(workers, "available_memory", lambda: 64 * GIB)
    _, options = _parse(["--input", "x"])
    assert _direct(options) == ("multi_processing", 3)


def test_workers_flag_sets_the_local_worker_processes():
    assert _direct(_parse(["--input", "x", "--workers", "2"])[1]) == ("multi_processing", 2)


def test_one_worker_runs_in_the_launchers_process():
    assert _direct(_parse(["--input", "x", "--workers", "1"])[1]) == ("multi_threading", 1)


def test_beams_own_worker_flags_win_over_workers():
    argv = ["--workers", "4", "--direct_num_workers", "3", "--direct_running_mode", "in_memory"]
    assert _direct(_parse(argv)[1]) == ("in_memory", 3)


def test_workers_on_dataflow_is_refused_with_a_pointer_to_max_num_workers():
    with pytest.raises(UsageError, match="--max_num_workers"):
        _parse(["--input", "x", "--runner", "DataflowRunner", "--workers", "4"])


def test_workers_below_one_is_a_usage_error():
    with pytest.raises(UsageError, match="--workers must be at least 1"):
        _parse(["--input", "x", "--workers", "0"])

"""Idempotence and resume: a job killed midway (SIGKILL, no clean-up) and run again ends with
exactly the files of a run that was never interrupted: no duplicate, no missing record.

Each job of the chain is started as a real process over the inputs of the clean reference run
(``local_chain``), killed as soon as it has written its first output file, and rerun.
"""

import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.stats import read_stats
from tests.integration.chain import JOBS, MODULES, RUNS, job_argv

REPO = Path(__file__).resolve().parents[2]


def output_files(folder: Path) -> dict[str, bytes | list]:
    """Every data file a job leaves (stats.json aside: it is compared by its counts; the
    download's policy records by their rows, fetch times aside)."""
    return {
        path.relative_to(folder).as_posix(): content(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != "stats.json" and "report" not in path.parts
    }


def content(path: Path) -> bytes | list:
    if path.parent.name == "policies" and path.suffix == ".parquet":
        return pq.read_table(path).drop_columns(["fetched_at"]).to_pylist()
    return path.read_bytes()


def kill_after_first_output(argv: list[str], module: str, output: Path, pattern: str) -> list[str]:
    """Runs ``python -m module argv``, SIGKILLs it once a file matching ``pattern`` appears
    under output, and returns the files there at that moment, as paths relative to output
    ([] if it finished first)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            *argv,
            "--workers",
            "1",
        ],  # as the in-process runs (conftest)
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while process.poll() is None:
            present = sorted(
                p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()
            )
            if any(fnmatch.fnmatch(name.rsplit("/", 1)[-1], pattern) for name in present):
                os.killpg(process.pid, signal.SIGKILL)
                return present
            time.sleep(0.02)
        return []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# What must exist before the kill: download resumes per shard, so kill it after a whole one.
KILL_WHEN = {"crawl": "*", "text": "*", "download": "images-*.parquet", "all": "*"}


@pytest.fixture(scope="module")
def workspace(local_chain, synthetic_web, tmp_path_factory):
    """A folder for the reruns, the reference run's folder, and the eval images' glob."""
    reference = Path(local_chain["crawl"]).parent
    root = tmp_path_factory.mktemp("resume")
    return root, reference, f"{synthetic_web.eval_zero_shot}/*/*.jpg"


def prepared_argv(job: str, root: Path, reference: Path, eval_glob: str) -> list[str]:
    """The job's command line over the reference run's own inputs, its output under root.

    Crawl reads the reference's WARCs in place (their paths end up in ``source``); a later job
    reads a copy of the reference's output of the job before it (``source`` is carried over).
    """
    argv = job_argv(job, str(root), eval_glob)
    if job == "crawl":
        argv[argv.index("--input") + 1] = job_argv(job, str(reference), eval_glob)[1]
        return argv
    before = JOBS[JOBS.index(job) - 1]
    if not (root / before).exists():
        shutil.copytree(reference / before, root / before)
    return argv


@pytest.mark.slow
@pytest.mark.parametrize("job", ["crawl", "download", "all"])  # text writes like crawl
def test_a_killed_job_rerun_ends_byte_identical_to_an_uninterrupted_run(job, workspace):
    root, reference, eval_glob = workspace
    argv = prepared_argv(job, root, reference, eval_glob)
    output = root / job
    present = kill_after_first_output(argv, MODULES[job], output, KILL_WHEN[job])
    RUNS[job](argv)
    assert output_files(output) == output_files(reference / job)
    rerun, clean = read_stats(str(output)), read_stats(str(reference / job))
    assert {k: rerun[k] for k in ("in", "kept", "rejected", "balanced")} == {
        k: clean[k] for k in ("in", "kept", "rejected", "balanced")
    }
    assert present, "the job finished before it could be killed"
    scratch = ("_pieces_", "_scratch")  # pieces on their way to shards, not outputs
    written = [name for name in present if not name.startswith(scratch) and "/_" not in name]
    assert len(written) < len(output_files(reference / job)) + 1, f"killed too late: {present}"


@pytest.mark.parametrize("job", JOBS)
def test_leftovers_of_a_crash_do_not_survive_a_rerun(job, workspace, tmp_path):
    """What a kill can leave: a shard missing, one cut short, a half-written temporary."""
    root, reference, eval_glob = workspace
    argv = prepared_argv(job, root, reference, eval_glob)
    damaged = tmp_path / job
    shutil.copytree(reference / job, damaged)
    shards = sorted(damaged.rglob("*.parquet"))
    shards[0].unlink()
    shards[-1].write_bytes(shards[-1].read_bytes()[:100])
    Path(f"{shards[-1]}.tmp").write_bytes(b"crashed mid-write")
    (damaged / "stats.json").unlink()
    RUNS[job](
        argv[: argv.index("--output") + 1] + [str(damaged)] + argv[argv.index("--output") + 2 :]
    )
    assert output_files(damaged) == output_files(reference / job)
    assert read_stats(str(damaged))["balanced"]

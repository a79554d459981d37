"""Local worker processes end with the job that started them, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam

from pipeline.worker_main import alive

REPO = Path(__file__).resolve().parents[2]


class MarkThenWait(beam.DoFn):
    """Marks that it runs (a file in ``folder``), then holds its bundle for a minute."""

    def __init__(self, folder: str):
        self.folder = folder

    def process(self, element):
        Path(self.folder, "running").touch()
        time.sleep(60)
        yield element


LAUNCHER = """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from pipeline.runner import LocalRunner
from tests.pipeline.test_worker_main import MarkThenWait

options = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
pipeline = beam.Pipeline(runner=LocalRunner(), options=options)
_ = pipeline | beam.Create([1]) | beam.ParDo(MarkThenWait(sys.argv[1]))  # one worker idle
pipeline.run().wait_until_finish()
"""


def wait_until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_finished_process_is_not_alive():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_until(lambda: not alive(process.pid))  # a zombie until waited: not alive
    process.wait()
    assert not alive(process.pid)
    assert alive(os.getpid())


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def workers_of(launcher: int) -> list[int]:
    """Beam starts each worker as sh -c 'python ...': the launcher's grandchildren."""
    return [pid for shell in children(launcher) for pid in children(shell)]


def test_worker_processes_end_when_their_launcher_is_killed_as_they_start(tmp_path):
    """Killed while its workers import and connect (Beam's own worker then waited for its
    launcher's address forever), the launcher leaves no worker behind."""
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path)], cwd=REPO)
    try:
        assert wait_until(lambda: len(workers_of(launcher.pid)) == 2, seconds=120)
        workers = workers_of(launcher.pid)
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
    assert wait_until(lambda: not any(alive(pid) for pid in workers), seconds=30)


def test_worker_processes_end_when_their_launcher_is_killed_mid_bundle(tmp_path):
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path)], cwd=REPO)
    try:
        assert wait_until(lambda: (tmp_path / "running").exists(), seconds=120)
        workers = workers_of(launcher.pid)
        assert len(workers) == 2 and all(alive(pid) for pid in workers)
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
    assert wait_until(lambda: not any(alive(pid) for pid in workers), seconds=30)

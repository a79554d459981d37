"""What a Dataflow worker installs, against the full stack: bytes on disk, packages, time.

    .venv/bin/python bench/install.py [--workdir DIR] [--keep] [--no-smoke] [--repeat N]

Builds the sdist exactly as Beam's ``--setup_file`` staging does (Beam's own stager code),
fills a local wheelhouse once (the only step that uses the network), then installs the sdist
offline (``--no-index``, ``-c constraints.txt``) into fresh virtual environments:

- worker: the sdist alone, as a worker pip-installs the staged ``workflow.tar.gz`` (the core
  dependencies, no extra);
- worker + gcp: ``sdist[gcp]``, the container recipe of docs/dataflow.md and a Dataflow launcher;
- full: ``sdist[demo,gcp]``, everything but the test tools;
- before: ``sdist[demo]`` + ``apache-beam[gcp]``, what every install was before the split
  (the training stack, plots, photographs and all of Beam's Google Cloud connectors);
- worker on Beam's image, and before on it: the sdist over a venv that already holds
  ``apache-beam[gcp]``, as Beam's worker image does, with the core only and with the
  dependencies every install had before the split (``[demo]``).

Each row gives the packages it added, their size on disk (du of site-packages, less the
base's), and pip's wall and CPU time (CPU is less disturbed by a busy machine); a ratio
compares a row to 'before' (to 'before, on Beam's image' for the rows on Beam's image): the
target for a worker is <= 0.25 of what it installed before. Every installed package must be
pinned in constraints.txt and the train-gpu extra must resolve (``pip install --dry-run``,
online).

The smoke test (unless ``--no-smoke``) then uses the worker + gcp environment as a user
would: the training commands refuse in one line naming their extra (exit 2), the curation
chain (crawl -> filter text -> download -> filter all --stats) runs on a synthetic web served
from this interpreter, and, as a Dataflow launcher, every module of Beam's Dataflow runner
and GCS filesystem imports and align-crawl builds a Dataflow template (``--template_location``,
staged to a GCS emulator) whose every step unpickles.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gcp_install import normalised  # noqa: E402 - PEP 503 names, one definition

CONSTRAINTS = ROOT / "constraints.txt"
BEAM_SDK_IMAGE = "apache-beam[gcp]"  # what Beam's worker image holds before a job's package
TRAINING_COMMANDS = ("align-train", "align-vocab", "align-eval", "align-embed")
TRAINING_DISTRIBUTIONS = {"tensorflow", "tensorflow-text", "keras", "keras-hub", "tensorboard"}


@dataclass(frozen=True)
class Row:
    name: str
    extras: str  # of the sdist: "" is the core, what a worker installs
    on_sdk_image: bool = False  # over a venv that already holds apache-beam[gcp]
    compare_to: str = "before"
    also: tuple[str, ...] = ()  # requirements installed with the sdist


BEFORE_ON_IMAGE = "before, on Beam's image"
ROWS = (
    Row("worker", ""),
    Row("worker + gcp", "gcp"),
    Row("full", "demo,gcp"),
    Row("before", "demo", also=(BEAM_SDK_IMAGE,)),
    Row("worker on Beam's image", "", on_sdk_image=True, compare_to=BEFORE_ON_IMAGE),
    Row(BEFORE_ON_IMAGE, "demo", on_sdk_image=True, compare_to=BEFORE_ON_IMAGE),
)


@dataclass
class Install:
    row: Row
    added: set[str]  # distributions the install added
    megabytes: float
    walls: list[float]  # one per repetition
    cpus: list[float]

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    def unpinned(self) -> list[str]:
        return sorted(self.added - pins() - {"align-recipe"})


def pins() -> set[str]:
    return {
        normalised(line.split("==")[0])
        for line in CONSTRAINTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


def pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(python), "-m", "pip", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return done


def build_sdist(folder: Path) -> Path:
    """The sdist Beam stages as workflow.tar.gz, built by Beam's own stager code."""
    from apache_beam.runners.portability.stager import Stager

    return Path(Stager._build_setup_package(str(ROOT / "setup.py"), str(folder)))


def requirement(sdist: Path, extras: str) -> str:
    return f"align-recipe[{extras}] @ {sdist.as_uri()}" if extras else str(sdist)


def label(row: Row) -> str:
    sdist = f"sdist[{row.extras}]" if row.extras else "sdist"
    parts = [BEAM_SDK_IMAGE] * row.on_sdk_image + [sdist, *row.also]
    return " + ".join(parts)


def fill_wheelhouse(sdist: Path, wheelhouse: Path) -> None:
    """Every wheel the full install and the 'before' one need, and the build backend,
    downloaded once."""
    python = Path(sys.executable)
    pip(python, "download", "-q", "-d", str(wheelhouse), "--no-deps", "setuptools>=68")
    pip(python, "download", "-q", "-d", str(wheelhouse), "-c", str(CONSTRAINTS),
        requirement(sdist, "demo,gcp"), BEAM_SDK_IMAGE)  # fmt: skip


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def disk_bytes(folder: Path) -> int:
    """Like ``du``: blocks on disk, each file once."""
    total, seen = 0, set()
    for directory, _, files in os.walk(folder):
        for name in files:
            status = os.lstat(os.path.join(directory, name))
            if (status.st_dev, status.st_ino) not in seen:
                seen.add((status.st_dev, status.st_ino))
                total += status.st_blocks * 512
    return total


def distributions(venv: Path) -> set[str]:
    found = metadata.distributions(path=[str(site_packages(venv))])
    return {normalised(d.metadata["Name"]) for d in found}


def offline(wheelhouse: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheelhouse), "-c", str(CONSTRAINTS)]


def fresh_venv(venv: Path, base: Path | None) -> Path:
    shutil.rmtree(venv, ignore_errors=True)
    if base is None:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    else:
        shutil.copytree(base, venv, symlinks=True)
    return venv / "bin" / "python"


def install(row: Row, sdist: Path, wheelhouse: Path, venv: Path, base: Path | None) -> Install:
    python = fresh_venv(venv, base if row.on_sdk_image else None)
    before, bytes_before = distributions(venv), disk_bytes(site_packages(venv))
    usage, start = os.times(), time.perf_counter()
    pip(python, "install", "-q", *offline(wheelhouse), requirement(sdist, row.extras), *row.also)
    wall, after = time.perf_counter() - start, os.times()
    cpu = after.children_user - usage.children_user
    cpu += after.children_system - usage.children_system
    megabytes = (disk_bytes(site_packages(venv)) - bytes_before) / 1e6
    return Install(row, distributions(venv) - before, megabytes, [wall], [cpu])


def measure(sdist: Path, wheelhouse: Path, venvs: dict, base: Path, repeat: int) -> list[Install]:
    """Every row ``repeat`` times, a round of all rows at a time, so that a spell of load on
    a shared machine falls on every row alike; times are the medians."""
    installs = [install(row, sdist, wheelhouse, venvs[row.name], base) for row in ROWS]
    for _ in range(repeat - 1):
        for one in installs:
            again = install(one.row, sdist, wheelhouse, venvs[one.row.name], base)
            one.walls += again.walls
            one.cpus += again.cpus
    return installs


def gpu_resolution(python: Path, sdist: Path) -> list[str]:
    """What train-gpu resolves to that constraints.txt does not pin (online dry run)."""
    done = pip(python, "install", "--dry-run", "--ignore-installed", "-q", "--report", "-",
               "-c", str(CONSTRAINTS), requirement(sdist, "train-gpu"))  # fmt: skip
    names = {normalised(item["metadata"]["name"]) for item in json.loads(done.stdout)["install"]}
    if not any(name.startswith("nvidia-cudnn") for name in names):
        raise SystemExit("train-gpu resolved without TensorFlow's CUDA wheels")
    return sorted(names - pins() - {"align-recipe"})


def spread(values: list[float]) -> str:
    """The median, and the range when there is more than one."""
    median = f"{statistics.median(values):.1f}"
    return median if len(values) == 1 else f"{median} ({min(values):.0f}-{max(values):.0f})"


def print_table(installs: list[Install], loads: tuple[float, float]) -> None:
    by_name = {one.row.name: one for one in installs}
    repeat = len(installs[0].walls)
    print(
        f"\nThe staged sdist installed offline from a local wheelhouse into fresh venvs, "
        f"{repeat} time(s) each (times: median, and range); {os.cpu_count()} CPUs, load "
        f"average {loads[0]:.1f} before, {loads[1]:.1f} after\n"
    )
    print("| install | packages | MB on disk | pip wall s | pip CPU s | bytes | wall | CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for one in installs:
        peer = by_name[one.row.compare_to]
        print(
            f"| {one.row.name}: `{label(one.row)}` | {len(one.added)} | {one.megabytes:,.0f} "
            f"| {spread(one.walls)} | {spread(one.cpus)} | {one.megabytes / peer.megabytes:.2f} "
            f"| {one.wall / peer.wall:.2f} | {one.cpu / peer.cpu:.2f} |"
        )
    print(
        "\nbytes, wall, CPU: the row's / the 'before' row's (the pre-split install: "
        f"`{label(by_name['before'].row)}`), or / '{BEFORE_ON_IMAGE}''s for the rows on "
        "Beam's image; target for a worker <= 0.25. On Beam's image only what the image "
        "lacks is counted."
    )


def run_installed(venv: Path, command: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / command), *argv], capture_output=True, text=True)


def smoke(venv: Path, workdir: Path) -> list[str]:
    """The worker + gcp install as a user runs it; returns what failed."""
    from tests.integration.chain import JOBS, job_argv
    from tools.synthweb import generate, small_config
    from tools.webserver import DEFAULT_HOSTS, WebServer

    failures = []
    for command in TRAINING_COMMANDS:
        done = run_installed(venv, command, ["--help"])
        lines = done.stderr.strip().splitlines()
        print(f"  {command} --help -> exit {done.returncode}: {' | '.join(lines)}")
        if done.returncode != 2 or len(lines) != 1 or "align-recipe[train]" not in lines[0]:
            failures.append(f"{command} without the train extra")
    root = workdir / "smoke"
    shutil.rmtree(root, ignore_errors=True)
    server = WebServer(root / "web" / "site", port=0, hosts=DEFAULT_HOSTS)
    try:
        generate(root / "web", small_config(server.port))
        server.reload()
        shutil.copytree(root / "web" / "warc", root / "run" / "warc")
        commands = {"crawl": "align-crawl", "download": "align-download"}
        for job in JOBS:
            argv = job_argv(job, str(root / "run"), str(root / "web/eval/zero_shot/*/*.jpg"))
            argv += ["--stats"] if job == "all" else []
            start = time.perf_counter()
            done = run_installed(venv, commands.get(job, "align-filter"), argv)
            print(f"  {job}: exit {done.returncode} in {time.perf_counter() - start:.1f} s")
            if done.returncode != 0:
                failures.append(f"{job}: {done.stderr[-1500:]}")
        report = root / "run" / "all" / "report" / "report.md"
        if not report.exists() or "align-recipe[report]" not in report.read_text():
            failures.append("filter all --stats: no report naming the report extra")
    finally:
        server.close()
    return failures + dataflow_smoke(venv, root, root / "web" / "warc" / "*.warc.gz")


def dataflow_smoke(venv: Path, root: Path, warcs: Path) -> list[str]:
    """The install as a Dataflow launcher: Beam's runner and GCS modules import, and
    align-crawl builds a template staged to a GCS emulator whose every step unpickles."""
    from tests.gcp_install import LAUNCHER_CHECK
    from tests.gcs import start_emulator
    from tools.dataflow import SDIST

    def run(command: list[str], environment: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, cwd=root, env=environment)

    python = str(venv / "bin" / "python")
    done = run([python, "-c", LAUNCHER_CHECK])
    print(f"  Dataflow runner and GCS modules: {done.stdout.strip() or done.stderr[-500:]}")
    if not done.stdout.strip().endswith("all import"):
        return [f"launcher imports: {done.stdout.strip()} {done.stderr[-1500:]}"]
    (root / "gcs").mkdir()
    emulator = start_emulator(root / "gcs")  # with this interpreter: the venv lacks it
    environment = {**os.environ, **emulator.environment}
    template = root / "crawl-template.json"
    flags = ["--runner=DataflowRunner", "--project=align-test", "--region=us-central1"]
    flags += [f"--temp_location={emulator.url('temp')}", f"--template_location={template}"]
    flags += [f"--setup_file={ROOT / 'setup.py'}"]
    argv = ["--input", str(warcs), "--output", emulator.url("pairs"), *flags]
    try:
        start = time.perf_counter()
        built = run([str(venv / "bin" / "align-crawl"), *argv], environment)
        loaded = run([python, "-m", "tools.dataflow", str(template), "--load"], environment)
    finally:
        emulator.process.terminate()
        emulator.process.wait(timeout=30)
    print(
        f"  align-crawl --template_location: exit {built.returncode}; tools.dataflow --load: "
        f"exit {loaded.returncode} ({time.perf_counter() - start:.1f} s)"
    )
    if built.returncode != 0:
        return [f"Dataflow template: {built.stderr[-1500:]}"]
    if loaded.returncode != 0 or "every step unpickled" not in loaded.stdout:
        return [f"Dataflow template load: {loaded.stdout[-500:]} {loaded.stderr[-1500:]}"]
    if SDIST not in loaded.stdout:
        return ["Dataflow template: the package sdist was not staged"]
    return []


def problems_of(installs: list[Install]) -> list[str]:
    problems = [
        f"{one.row.name}: not pinned in constraints.txt: {', '.join(one.unpinned())}"
        for one in installs
        if one.unpinned()
    ]
    for one in installs:
        training = one.added & TRAINING_DISTRIBUTIONS
        if "demo" not in one.row.extras and training:
            problems.append(f"{one.row.name} installs {', '.join(sorted(training))}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "align-install"))
    parser.add_argument("--keep", action="store_true", help="keep the venvs (to look inside)")
    parser.add_argument("--no-smoke", action="store_true", help="measure only")
    parser.add_argument("--repeat", type=int, default=1, help="installs of each row (median)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    sdist_dir, wheelhouse = workdir / "sdist", workdir / "wheelhouse"
    shutil.rmtree(sdist_dir, ignore_errors=True)
    sdist_dir.mkdir(parents=True)
    wheelhouse.mkdir(exist_ok=True)
    sdist = build_sdist(sdist_dir)
    print(f"sdist {sdist.name}: {sdist.stat().st_size / 1e3:.0f} kB; filling {wheelhouse}")
    fill_wheelhouse(sdist, wheelhouse)

    base = workdir / "venv-beam-image"
    python = fresh_venv(base, None)
    pip(python, "install", "-q", *offline(wheelhouse), BEAM_SDK_IMAGE)
    load_before = os.getloadavg()[0]
    venvs = {row.name: workdir / f"venv-{index}" for index, row in enumerate(ROWS)}
    installs = measure(sdist, wheelhouse, venvs, base, args.repeat)
    print_table(installs, (load_before, os.getloadavg()[0]))

    problems = problems_of(installs)
    unpinned_gpu = gpu_resolution(venvs["worker"] / "bin" / "python", sdist)
    print(f"train-gpu resolves; not pinned: {', '.join(unpinned_gpu) or 'nothing'}")
    if unpinned_gpu:
        problems.append(f"train-gpu: not pinned in constraints.txt: {', '.join(unpinned_gpu)}")
    if not args.no_smoke:
        print("\nsmoke test of the worker + gcp install:")
        problems += smoke(venvs["worker + gcp"], workdir)
    if not args.keep:
        for venv in [base, *venvs.values()]:
            shutil.rmtree(venv, ignore_errors=True)
    if problems:
        raise SystemExit("\n".join(["", "PROBLEMS:", *problems]))
    print("\nno problems: every package pinned, no worker install holds the training stack")


if __name__ == "__main__":
    main()

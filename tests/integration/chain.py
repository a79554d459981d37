"""The curation chain as a user runs it: crawl -> filter text -> download -> filter all."""

from __future__ import annotations

from filters.config import small_config_path
from pipeline.crawl import cli as crawl
from pipeline.download import cli as download
from pipeline.filter import cli as filter

JOBS = ("crawl", "text", "download", "all")
FETCH = ["--allow-private-networks", "--total-timeout=5", "--read-timeout=3"]
OUTPUTS = {
    "crawl": "pairs-*.parquet",
    "text": "pairs-*.parquet",
    "download": "images-*.parquet",
    "all": "shards/*.parquet",
}


def job_argv(job: str, root: str, eval_glob: str) -> list[str]:
    """The command line of one job of the chain, every path under ``root``."""
    out = {name: f"{root}/{name}" for name in JOBS}
    config = ["--config", str(small_config_path())]
    if job == "crawl":
        return ["--input", f"{root}/warc/*.warc.gz", "--output", out["crawl"]]
    if job == "text":
        return ["--input", out["crawl"], "--output", out["text"], "--rules", "text"] + config
    if job == "download":
        return ["--input", out["text"], "--output", out["download"]] + FETCH
    return (
        ["--input", out["download"], "--output", out["all"], "--rules", "all"]
        + ["--eval-images", f"test={eval_glob}"]
        + config
    )


RUNS = {"crawl": crawl.run, "text": filter.run, "download": download.run, "all": filter.run}
MODULES = {"crawl": "pipeline.crawl", "text": "pipeline.filter"}
MODULES.update({"download": "pipeline.download", "all": "pipeline.filter"})


def run_chain(root: str, eval_glob: str, runner: list[str]) -> dict[str, str]:
    """Runs the four jobs; ``runner`` (Beam flags) goes to crawl and filter --rules all, the
    shuffle-heavy jobs; returns each job's output folder."""
    for job in JOBS:
        extra = runner if job in ("crawl", "all") else []
        RUNS[job](job_argv(job, root, eval_glob) + extra)
    return {name: f"{root}/{name}" for name in JOBS}

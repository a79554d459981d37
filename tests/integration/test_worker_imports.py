"""The curation jobs run on the core install alone, as a Dataflow worker has it.

The whole chain (crawl -> filter text -> download -> filter all --stats) is built and run in a
fresh interpreter where the training stack, the report's plots and other frameworks cannot
be imported, so a top-level ``import tensorflow`` creeping into a job fails here, not on a
few hundred workers that never installed it.
"""

from __future__ import annotations

import html
import json
import shutil

import pytest

from tests.blocked_imports import NOT_IN_A_WORKER, run_without
from tests.integration.chain import JOBS

CHAIN = """
import json
from tests.integration.chain import JOBS, RUNS, job_argv

for job in JOBS:
    argv = job_argv(job, {root!r}, {eval_glob!r}) + (["--stats"] if job == "all" else [])
    RUNS[job](argv)
    print("ATTEMPTED", job, json.dumps(sorted(set(_ATTEMPTS))), flush=True)
    _ATTEMPTS.clear()
"""


@pytest.fixture(scope="module")
def chain_without_extras(synthetic_web, tmp_path_factory):
    root = tmp_path_factory.mktemp("lean_chain")
    shutil.copytree(synthetic_web.root / "warc", root / "warc")
    eval_glob = f"{synthetic_web.eval_zero_shot}/*/*.jpg"
    outcome = run_without(NOT_IN_A_WORKER, CHAIN.format(root=str(root), eval_glob=eval_glob), root)
    attempted = {}
    for line in outcome.stdout.splitlines():
        if line.startswith("ATTEMPTED "):
            _, job, names = line.split(" ", 2)
            attempted[job] = json.loads(names)
    return {"outcome": outcome, "attempted": attempted, "root": root}


@pytest.mark.parametrize("job", JOBS)
def test_each_curation_job_builds_and_runs_without_the_training_stack(chain_without_extras, job):
    attempted = chain_without_extras["attempted"]
    assert job in attempted, chain_without_extras["outcome"].stderr[-3000:]
    expected = ["matplotlib"] if job == "all" else []  # the report looks for its plots
    assert attempted[job] == expected


def test_the_report_without_its_plots_is_its_tables_and_names_the_extra(chain_without_extras):
    report = chain_without_extras["root"] / "all" / "report"
    assert "pip install 'align-recipe[report]'" in (report / "report.md").read_text()
    assert "pip install 'align-recipe[report]'" in html.unescape(
        (report / "report.html").read_text()
    )
    assert not list(report.glob("*.png"))
    assert "- **rejected**:" in (report / "report.md").read_text()  # the summary, as text
    assert "align-recipe[report]" in chain_without_extras["outcome"].stderr

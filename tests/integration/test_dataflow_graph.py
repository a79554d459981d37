"""Dataflow readiness: every job builds its Dataflow job offline, and a worker can load it.

``--template_location`` makes the DataflowRunner build the graph, package the project
(``--setup_file``), stage package and graph to ``--temp_location`` (here the GCS emulator)
and write the job request to a file instead of submitting it. A fresh interpreter that sees
only the staged package, and cannot import what its core dependencies leave out (the
training stack, the report's plots), then unpickles every step, as a Dataflow worker would.
"""

import io
import re
from pathlib import Path

import apache_beam as beam
import pytest
from PIL import Image

from pipeline.crawl import cli as crawl
from pipeline.download import cli as download
from pipeline.filter import cli as filter
from pipeline.ingest import cli as ingest
from pipeline.records import DOWNLOAD_SCHEMA, PAIR_SCHEMA, make_uid
from pipeline.shards import ReadTables, WriteShards, rows_to_table, write_parquet
from pipeline.stats import WriteStats
from tests.gcs import upload
from tests.integration.dataflow_worker import install_staged_package, load_as_a_worker
from tools.dataflow import (
    SDIST,
    pipeline_proto,
    read_bytes,
    read_template,
    staged_packages,
    step_names,
    worker_requirements,
)

REPO = Path(__file__).resolve().parents[2]


def dataflow_flags(temp: str, template: Path) -> list[str]:
    return [
        "--runner=DataflowRunner",
        "--project=align-test",
        "--region=us-central1",
        f"--temp_location={temp}",
        f"--template_location={template}",
        f"--setup_file={REPO / 'setup.py'}",
    ]


def pair(i: int) -> dict:
    url, alt = f"http://images.example/{i}.jpg", f"a photo of thing {i}"
    return {"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": "p", "source": "s"}


def jpeg(size=(260, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


class ThingOutsideThePackage(beam.DoFn):
    """Lives in the tests, which are not shipped to workers."""

    def process(self, element):
        yield element


@pytest.fixture(scope="module")
def bucket(gcs_emulator, synthetic_web, tmp_path_factory):
    """Inputs of every job on gs://: WARCs, pair and image shards, an eval image, a list."""
    root = gcs_emulator.url("dataflow")
    for path in sorted(Path(synthetic_web.root, "warc").glob("*.warc.gz")):
        upload(f"{root}/warc/{path.name}", path.read_bytes())
    rows = [pair(i) for i in range(4)]
    write_parquet(rows_to_table(rows, PAIR_SCHEMA), f"{root}/pairs/pairs-00000-of-00001.parquet")
    image = jpeg()
    downloaded = [
        {**row, "status": "ok", "image": image, "width": 260, "height": 240, "mime": "image/jpeg"}
        | {"original_width": 260, "original_height": 240, "sha256": "0" * 64, "phash": "0" * 16}
        for row in rows
    ]
    table = rows_to_table(downloaded, DOWNLOAD_SCHEMA)
    write_parquet(table, f"{root}/images/images-00000-of-00001.parquet")
    upload(f"{root}/eval/cat/one.jpg", image)
    upload(f"{root}/list/cc3m.tsv", "".join(f"{r['alt']}\t{r['url']}\n" for r in rows).encode())
    return root


JOBS = {
    "crawl": lambda root: (
        crawl.run,
        ["--input", f"{root}/warc/*.warc.gz", "--output", f"{root}/out-crawl"],
    ),
    "ingest": lambda root: (
        ingest.run,
        ["--input", f"{root}/list/cc3m.tsv", "--output", f"{root}/out-ingest"],
    ),
    "download": lambda root: (
        download.run,
        ["--input", f"{root}/pairs", "--output", f"{root}/out-download"],
    ),
    "filter-text": lambda root: (
        filter.run,
        ["--input", f"{root}/pairs", "--output", f"{root}/out-text", "--rules", "text"],
    ),
    "filter-all": lambda root: (
        filter.run,
        ["--input", f"{root}/images", "--output", f"{root}/out-all", "--rules", "all"]
        + ["--eval-images", f"cats={root}/eval/*/*.jpg"],
    ),
}


def build_template(run, argv, temp: str, template: Path) -> None:
    run(argv + dataflow_flags(temp, template))


@pytest.fixture(scope="module")
def templates(bucket, tmp_path_factory):
    folder = tmp_path_factory.mktemp("templates")
    built = {}
    for name, job in JOBS.items():
        run, argv = job(bucket)
        built[name] = folder / f"{name}.json"
        build_template(run, argv, f"{bucket}/temp-{name}", built[name])
    return built


@pytest.fixture(scope="module")
def worker_site(templates, tmp_path_factory) -> Path:
    return install_staged_package(str(templates["crawl"]), tmp_path_factory.mktemp("worker"))


@pytest.mark.parametrize("job", sorted(JOBS))
def test_each_job_writes_a_template_and_stages_package_and_graph(templates, job):
    template = read_template(str(templates[job]))
    assert {"workflow.tar.gz", "pickled_main_session"} <= set(staged_packages(template))
    assert "beam_fn_api" in template["environment"]["experiments"]
    assert len(step_names(pipeline_proto(template))) > 5


@pytest.fixture(scope="module")
def worker_loads(templates, worker_site) -> dict[str, str]:
    outcomes = load_as_a_worker([str(path) for path in templates.values()], worker_site)
    return {job: outcomes[str(path)] for job, path in templates.items()}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_worker_with_only_the_staged_package_loads_every_step(worker_loads, job):
    assert worker_loads[job] == "loaded"


def test_the_staged_package_asks_a_worker_for_the_curation_core_only(templates):
    sdist = read_bytes(staged_packages(read_template(str(templates["crawl"])))[SDIST])
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group().lower() for r in worker_requirements(sdist)}
    assert {"apache-beam", "pyarrow", "pillow"} <= names
    assert not names & {"tensorflow", "tensorflow-text", "keras", "keras-hub", "matplotlib"}


def test_building_a_template_runs_nothing(gcs_emulator, templates, bucket):
    outputs = [name for name in gcs_emulator.blob_names(bucket) if "/out-" in name]
    assert not [name for name in outputs if name.endswith((".parquet", ".json", ".tfrecord"))]


def test_a_step_whose_code_is_not_in_the_package_fails_on_the_worker(bucket, worker_site, tmp_path):
    template = tmp_path / "outside.json"
    options = beam.options.pipeline_options.PipelineOptions(
        dataflow_flags(f"{bucket}/temp-outside", template)
    )
    with beam.Pipeline(options=options) as pipeline:
        tables = pipeline | ReadTables(f"{bucket}/pairs/*.parquet")
        tables = tables | "Outside" >> beam.ParDo(ThingOutsideThePackage())
        tables | WriteShards(f"{bucket}/out-outside", "pairs", PAIR_SCHEMA, 2)
        pipeline | beam.Create([{"in": 0}]) | WriteStats(f"{bucket}/out-outside")
    outcome = load_as_a_worker([str(template)], worker_site)[str(template)]
    assert "No module named" in outcome

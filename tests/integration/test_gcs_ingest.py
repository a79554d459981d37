"""align-ingest on gs://: lists read from the GCS emulator, split into byte ranges and runs of
row groups read by two worker processes, give the pairs the same lists give on local disk."""

from __future__ import annotations

import pytest

from pipeline.ingest import cli as ingest_cli
from pipeline.ingest import job as ingest_job
from pipeline.shards import read_table
from tests.gcs import upload_tree
from tests.pipeline.ingest.lists import ROWS, write_laion, write_tsv

pytestmark = pytest.mark.slow
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
LIST = ROWS + [(f"a caption {i}", f"http://img{i % 5}.example/{i}.jpg", 0.1) for i in range(400)]


def pairs(output: str):
    table = read_table(f"{output}/pairs-*.parquet").drop_columns(["source"])
    return table.sort_by("uid")


@pytest.mark.parametrize("name", ["cc3m.tsv", "cc3m.tsv.gz", "laion.parquet"])
def test_a_list_on_gcs_gives_the_pairs_it_gives_on_disk(gcs_emulator, tmp_path, monkeypatch, name):
    folder = tmp_path / "lists"
    folder.mkdir()
    if name.endswith(".parquet"):
        write_laion(folder / name, LIST, row_group_size=50)
    else:
        write_tsv(folder / name, LIST, header=name.endswith(".gz"), compress=name.endswith(".gz"))
    remote = gcs_emulator.url("ingest", name)
    upload_tree(folder, remote)
    monkeypatch.setattr(ingest_job, "UNIT_BYTES", 4096)  # several ranges of the plain TSV
    monkeypatch.setattr(ingest_job, "UNIT_ROWS", 100)  # several runs of row groups
    argv = ["--input", f"{remote}/{name}", "--output", f"{remote}/out", *MULTI_PROCESS]
    on_gcs = ingest_cli.run(argv)
    on_disk = ingest_cli.run(["--input", str(folder / name), "--output", str(tmp_path / "out")])
    assert {k: on_gcs[k] for k in ("in", "kept", "rejected")} == {
        k: on_disk[k] for k in ("in", "kept", "rejected")
    }
    assert on_gcs["in"] == len(LIST) and on_gcs["balanced"]
    assert pairs(f"{remote}/out").equals(pairs(str(tmp_path / "out")))

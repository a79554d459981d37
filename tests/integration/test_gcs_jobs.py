"""gs:// for real: the whole curation chain reads and writes the GCS emulator (crawl and the
shuffle-heavy filter on the multi-process DirectRunner, whose workers reach GCS on their own)
and ends with the same records as the same chain on local disk, in-process.

crawl (WARCs on gs://) -> filter --rules text -> download (from the synthetic web) ->
filter --rules all (eval images on gs://). The only column allowed to differ is ``source``,
which names the input file (a gs:// or a local path).
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline.shards import read_table
from pipeline.stats import read_stats
from tests.gcs import upload_tree
from tests.integration.chain import OUTPUTS, run_chain

pytestmark = pytest.mark.slow
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def chains(gcs_emulator, synthetic_web, local_chain):
    """The chain on gs:// (crawl and filter --rules all with two worker processes), and the
    same chain on local disk, in-process."""
    remote = gcs_emulator.url("chain")
    upload_tree(synthetic_web.root / "warc", f"{remote}/warc")
    upload_tree(synthetic_web.eval_zero_shot, f"{remote}/eval")
    return run_chain(remote, f"{remote}/eval/*/*.jpg", MULTI_PROCESS), local_chain


def records(pattern: str) -> pa.Table:
    """A job's records, sorted by uid, with ``source`` cut to the input file's name."""
    table = read_table(pattern)
    if "source" in table.column_names:
        names = [value.rsplit("/", 1)[-1] for value in table.column("source").to_pylist()]
        table = table.set_column(table.column_names.index("source"), "source", pa.array(names))
    return table.take(pc.sort_indices(table, [("uid", "ascending")]))


def differences(left: pa.Table, right: pa.Table) -> list[str]:
    """Where two record tables differ: 'uid column: left != right', the first few."""
    if left.column("uid").to_pylist() != right.column("uid").to_pylist():
        return ["different uids"]
    found = []
    for name in left.column_names:
        for uid, a, b in zip(
            left["uid"].to_pylist(), left[name].to_pylist(), right[name].to_pylist(), strict=True
        ):
            if a != b:
                found.append(f"{uid} {name}: {str(a)[:80]} != {str(b)[:80]}")
    return found[:10]


@pytest.mark.parametrize("job", list(OUTPUTS))
def test_gcs_and_local_runs_hold_the_same_records(chains, job):
    on_gcs, on_disk = chains
    pattern = OUTPUTS[job]
    assert (
        differences(records(f"{on_gcs[job]}/{pattern}"), records(f"{on_disk[job]}/{pattern}")) == []
    )
    assert read_stats(on_gcs[job])["rejected"] == read_stats(on_disk[job])["rejected"]


def test_training_shards_on_gcs_match_local_ones_byte_for_byte(chains, gcs_emulator):
    on_gcs, on_disk = chains
    local = sorted(Path(on_disk["all"], "shards").glob("*.tfrecord"))
    assert local
    for path in local:
        with FileSystems.open(f"{on_gcs['all']}/shards/{path.name}") as handle:
            assert handle.read() == path.read_bytes(), path.name


def test_no_temporary_file_is_left_in_the_bucket(chains, gcs_emulator):
    on_gcs, _ = chains
    names = gcs_emulator.blob_names(gcs_emulator.url("chain"))
    assert not [name for name in names if name.endswith(".tmp") or "/.temp" in name]

"""align-purge after the whole chain: the listed records leave every stage's outputs (pairs,
candidates, images, final TFRecord and WebDataset shards, their sidecars, rejects and
measurements), every other file stays byte-identical, a second purge changes nothing, and
every stats.json still balances."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from filters.config import small_config_path
from pipeline.filter import cli as filter_cli
from pipeline.filter.tfrecord import read_records
from pipeline.purge.cli import run as purge
from pipeline.purge.formats import example_strings
from pipeline.report.chain import curation_of
from pipeline.report.consent_counts import consent_rows
from pipeline.report.truth import read_ground_truth
from pipeline.shards import read_table
from pipeline.stats import read_stats

STAGES = ("crawl", "text", "download", "final")


def snapshot(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def uids_in(path: Path) -> list[str]:
    """The uids a shard holds, read without align-purge's own code where a reader exists."""
    if path.suffix == ".parquet":
        if "uid" not in pq.read_schema(path).names:
            return []  # the download's policy record: files, not pairs
        return pq.read_table(path, columns=["uid"]).column("uid").to_pylist()
    if path.suffix == ".tfrecord":
        return [example_strings(record)["uid"] for record in read_records(path.read_bytes())]
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as tar:
        return sorted({member.name.split(".", 1)[0] for member in tar})


@pytest.fixture(scope="module")
def chain(local_chain, synthetic_web, tmp_path_factory) -> Path:
    """A copy of the reference chain, its final shards written as TFRecord and WebDataset."""
    root = tmp_path_factory.mktemp("purge")
    for stage in ("crawl", "text", "download"):
        shutil.copytree(local_chain[stage], root / stage)
        stats = root / stage / "stats.json"  # inputs named in the copy: the copy's folders
        origin = str(Path(local_chain[stage]).parent)
        stats.write_text(stats.read_text().replace(origin, str(root)))
    filter_cli.run(
        ["--input", str(root / "download"), "--output", str(root / "final"), "--rules", "all"]
        + ["--config", str(small_config_path()), "--output-format", "tfrecord,webdataset"]
        + ["--eval-images", f"test={synthetic_web.eval_zero_shot}/*/*.jpg"]
    )
    return root


def listed_uids(images: list[dict], domain: str, url: str, digest: str, near: str) -> set[str]:
    """The uids the list names, worked out here from the download's rows."""
    out = set()
    for row in images:
        host = urlsplit(row["url"]).hostname
        page_host = urlsplit(row["page_url"] or "").hostname
        near_hit = row["phash"] and (int(row["phash"], 16) ^ int(near, 16)).bit_count() <= 2
        if domain in (host, page_host) or row["url"] == url or row["sha256"] == digest or near_hit:
            out.add(row["uid"])
    return out


def test_a_purge_removes_listed_records_from_every_stage_and_nothing_else(chain, tmp_path):
    images = read_table(str(chain / "download" / "images-*.parquet")).to_pylist()
    final = read_table(str(chain / "final" / "shards" / "*.parquet")).to_pylist()
    crawled = read_table(str(chain / "crawl" / "pairs-*.parquet")).to_pylist()
    # A host of few images, a URL the text filter dropped (only in the crawl and rejects), and
    # two images of the final shards by their hashes (not in any pair shard's columns).
    hosts = sorted({urlsplit(row["url"]).hostname for row in images})
    domain = min(hosts, key=lambda h: sum(urlsplit(r["url"]).hostname == h for r in images))
    in_text = {
        row["uid"] for row in read_table(str(chain / "text" / "pairs-*.parquet")).to_pylist()
    }
    dropped_url = next(row["url"] for row in crawled if row["uid"] not in in_text)
    elsewhere = [row for row in final if urlsplit(row["url"]).hostname != domain]
    digest = elsewhere[0]["sha256"]
    near = f"{int(elsewhere[-1]['phash'], 16) ^ 0b11:016x}"  # two bits off a kept image
    (tmp_path / "list.txt").write_text(
        f"domain:{domain}\nurl:{dropped_url}\nsha256:{digest}\nphash:{near}/2\n"
    )
    gone = listed_uids(images, domain, dropped_url, digest, near)
    gone |= {row["uid"] for row in crawled if row["url"] == dropped_url}
    before = snapshot(chain)
    stats_before = {stage: read_stats(str(chain / stage)) for stage in STAGES}

    records = purge(["--list", str(tmp_path / "list.txt")] + [str(chain / s) for s in STAGES])

    after = snapshot(chain)
    shards = [p for p in chain.rglob("*") if p.suffix in (".parquet", ".tfrecord", ".tar")]
    assert any(p.suffix == ".tar" for p in shards) and any(p.suffix == ".tfrecord" for p in shards)
    for path in shards:
        assert not gone & set(uids_in(path)), f"{path} still holds a listed record"
    rewritten = {
        f"{stage}/{entry['file']}"
        for stage in STAGES
        for entry in records[str(chain / stage)].get("files", [])
    }
    changed = {name for name in before if before[name] != after.get(name)}
    stats_files = {f"{stage}/stats.json" for stage in STAGES}
    assert rewritten and changed == rewritten | stats_files
    reasons = {reason for record in records.values() for reason in record["removed"]}
    assert reasons == {f"opt_out_{kind}" for kind in ("domain", "url", "sha256", "phash")}
    assert set(after) - set(before) == {_record_path(records, chain, s) for s in STAGES}
    for stage in STAGES:
        stats = read_stats(str(chain / stage))
        assert stats["balanced"], stage
        assert stats["in"] == stats_before[stage]["in"]
    assert_kept_counts_match_the_shards(chain)

    purge(["--list", str(tmp_path / "list.txt")] + [str(chain / s) for s in STAGES])
    assert snapshot(chain) == after, "a second purge changed something"


def test_the_report_after_a_purge_shows_it_and_every_signal_and_still_balances(
    chain, synthetic_web, tmp_path
):
    (tmp_path / "list.txt").write_text(f"page:{synthetic_web.page_urls.read_text().split()[0]}\n")
    purge(["--list", str(tmp_path / "list.txt")] + [str(chain / s) for s in STAGES])
    filter_cli.run(
        ["--stats", str(chain / "final"), "--ground-truth", str(synthetic_web.ground_truth)]
    )
    report = (chain / "final" / "report" / "report.md").read_text()
    consent = report.split("## Consent")[1].split("\n## ")[0]
    for signal in ("x_robots_tag", "meta_robots", "tdm_reservation", "tdm_reservation_meta"):
        assert f"| {signal} | crawl/ (align-crawl) |" in consent
    assert str(tmp_path / "list.txt") in consent
    assert "| crawl/ |" in consent and "| text/ |" in consent  # every run's purge record
    assert "do not balance" not in report and "measurements hold" not in report
    assert "before it kept" not in report


def _record_path(records: dict, chain: Path, stage: str) -> str:
    """The one purge record of a stage's folder, which is what the command returned."""
    (path,) = (chain / stage).glob("purge-*.json")
    assert json.loads(path.read_text()) == records[str(chain / stage)]
    return f"{stage}/{path.name}"


def assert_kept_counts_match_the_shards(chain: Path) -> None:
    def rows(pattern: str) -> list[dict]:
        return read_table(str(chain / pattern)).to_pylist()

    assert read_stats(str(chain / "text"))["kept"] == len(rows("text/pairs-*.parquet"))
    crawl = read_stats(str(chain / "crawl"))["counts"]
    assert crawl["pairs/written"] == len(rows("crawl/pairs-*.parquet"))
    download = read_stats(str(chain / "download"))
    statuses = [row["status"] for row in rows("download/images-*.parquet")]
    assert download["kept"] == statuses.count("ok")
    assert download["in"] - download["rejected"]["purged"] == len(statuses)
    assert read_stats(str(chain / "final"))["kept"] == len(rows("final/shards/*.parquet"))


def test_every_signal_removed_exactly_the_pairs_the_ground_truth_labels(local_chain, synthetic_web):
    """The consent rows of the reference chain (nothing purged) against the synthetic web."""
    truth = read_ground_truth(str(synthetic_web.ground_truth))
    rows = consent_rows(curation_of(local_chain["all"]), truth)
    by_job = {(row.job, row.signal): (row.pairs, row.labelled) for row in rows}
    page_signals = ("x_robots_tag", "meta_robots", "tdm_reservation", "tdm_reservation_meta")
    assert {signal for job, signal in by_job if job == "align-crawl"} == set(page_signals)
    assert {signal for job, signal in by_job if job == "align-download"} == {
        "x_robots_tag",
        "robots_disallowed",
        "ai_txt",
        "tdmrep_json",
        "tdm_reservation",
    }
    assert all(pairs == labelled and pairs for pairs, labelled in by_job.values())

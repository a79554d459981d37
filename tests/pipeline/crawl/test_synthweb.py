"""align-crawl on the synthetic web: exactly the ground truth pairs, from WARC, WAT or server."""

import pyarrow.parquet as pq
import pytest

from pipeline.crawl.cli import run
from pipeline.shards import read_table
from pipeline.stats import read_stats


def expected_pairs(web) -> set[tuple[str, str]]:
    rows = pq.read_table(web.ground_truth, columns=["url", "alt", "emitted_by_crawl"]).to_pylist()
    return {(row["url"], row["alt"]) for row in rows if row["emitted_by_crawl"]}


def crawled_pairs(output) -> list[tuple[str, str]]:
    table = read_table(str(output / "pairs-*.parquet"), columns=["url", "alt"])
    return list(zip(table.column("url").to_pylist(), table.column("alt").to_pylist(), strict=True))


def inputs(web, mode: str) -> list[str]:
    if mode == "warc":
        return ["--input", web.warc_glob]
    if mode == "wat":
        return ["--input", web.wat_glob]
    return ["--page-urls", str(web.page_urls), "--allow-private-networks"]


@pytest.fixture(scope="module", params=["warc", "wat", "page-urls"])
def crawl(request, synthetic_web, tmp_path_factory):
    output = tmp_path_factory.mktemp(f"crawl-{request.param}")
    run(inputs(synthetic_web, request.param) + ["--output", str(output), "--shards", "3"])
    return synthetic_web, output


def test_emits_exactly_the_ground_truth_pairs(crawl):
    web, output = crawl
    pairs = crawled_pairs(output)
    expected = expected_pairs(web)
    missing, extra = sorted(expected - set(pairs)), sorted(set(pairs) - expected)
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    assert len(pairs) == len(set(pairs)), "a (url, alt) pair was written twice"


def test_stats_balance_and_count_the_duplicates(crawl):
    web, output = crawl
    stats = read_stats(str(output))
    assert stats["balanced"] and stats["in"] == stats["kept"] + sum(stats["rejected"].values())
    counts = stats["counts"]
    assert counts["pairs/written"] == len(expected_pairs(web))
    assert counts["pairs/extracted"] == counts["pairs/written"] + counts["pairs/duplicates"]
    assert counts["pairs/duplicates"] >= web.config.n_duplicates
    assert counts["img/seen"] == sum(v for k, v in counts.items() if k.startswith("img/")) // 2


def test_fetch_failures_are_rejected_by_name(synthetic_web, tmp_path):
    good = synthetic_web.page_urls.read_text().split()[0]
    listed = [good, synthetic_web.url(0, "/no/such/page.html"), "ftp://example.com/x.html"]
    (tmp_path / "pages.txt").write_text("\n".join(listed) + "\n# a comment\n\n")
    argv = ["--page-urls", str(tmp_path / "pages.txt"), "--allow-private-networks"]
    run(argv + ["--output", str(tmp_path / "out")])
    stats = read_stats(str(tmp_path / "out"))
    assert (stats["in"], stats["kept"], stats["balanced"]) == (3, 1, True)
    assert stats["rejected"] == {"fetch_http_404": 1, "fetch_unsupported_scheme": 1}


def test_reserved_pages_are_withheld_under_their_signal(crawl):
    """Each page that reserves itself is rejected under its signal, its pairs counted under
    pairs/withheld/ (a page fetched live and refused by its X-Robots-Tag is never read)."""
    web, output = crawl
    rows = pq.read_table(web.ground_truth, columns=["page_url", "consent", "emitted_by_crawl"])
    reserved = [r for r in rows.to_pylist() if r["consent"] and not r["emitted_by_crawl"]]
    pages = {}
    for row in reserved:
        pages.setdefault(row["consent"], set()).add(row["page_url"])
    stats = read_stats(str(output))
    assert {signal: stats["rejected"].get(signal) for signal in pages} == {
        signal: len(urls) for signal, urls in pages.items()
    }
    prefix = "pairs/withheld/"
    withheld = {k[len(prefix) :]: v for k, v in stats["counts"].items() if k.startswith(prefix)}
    pairs = {}
    for row in reserved:
        pairs[row["consent"]] = pairs.get(row["consent"], 0) + 1
    if "page-urls" in str(output):  # the fetcher refuses these before reading them
        pairs.pop("x_robots_tag")
        assert stats["counts"]["pages/withheld_unread"] == len(pages["x_robots_tag"])
    assert {k: v for k, v in withheld.items() if k in pairs} == pairs

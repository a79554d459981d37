"""The synthetic web generator: determinism, the noise it promises, and files that agree with
its ground truth (HTML, WARC, WAT, served site, evaluation sets)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pyarrow.parquet as pq
import pytest
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

from pipeline.crawl.harvest import wat_headers, wat_metas
from pipeline.fetch.consent import (
    ai_txt_reservation,
    page_reservation,
    parse_ai_txt,
    parse_tdmrep,
    tdmrep_reservation,
)
from pipeline.fetch.fetcher import AGENT_TOKEN
from tools import synth_text
from tools.synth_plan import NOISE_KINDS
from tools.synthweb import WebConfig, generate, photo_jpegs, small_config
from tools.synthweb_cli import main, run

CONTRACT_COLUMNS = {
    "url",
    "alt",
    "page_url",
    "image_id",
    "class_name",
    "caption",
    "language",
    "width",
    "height",
    "emitted_by_crawl",
    "fault",
    "expected_status",
    "eval_match",
    *(f"noise_{kind}" for kind in NOISE_KINDS),
}


@pytest.fixture(scope="module")
def truth(synthetic_web) -> list[dict]:
    return pq.read_table(synthetic_web.ground_truth).to_pylist()


@pytest.fixture(scope="module")
def pairs(truth) -> list[dict]:
    """Distinct emitted pairs: what the crawl must output."""
    return [r for r in truth if r["emitted_by_crawl"] and not r["duplicate"]]


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def twin_config(**changes) -> WebConfig:
    config = WebConfig(
        seed=3, n_pairs=100, port=8765, eval_per_class=1, n_retrieval=5, pages_per_warc=4, workers=1
    )
    return WebConfig(**{**config.__dict__, **changes})


@pytest.fixture(scope="module")
def twin_webs(tmp_path_factory):
    """Two webs from the same seed and one from another, each in its own folder."""
    roots = [tmp_path_factory.mktemp(f"twin{i}") for i in range(3)]
    generate(roots[0], twin_config())
    generate(roots[1], twin_config())
    generate(roots[2], twin_config(seed=4))
    return roots


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(twin_webs):
    first, second = files_of(twin_webs[0]), files_of(twin_webs[1])
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []


def test_another_seed_gives_another_web(twin_webs):
    first, other = files_of(twin_webs[0]), files_of(twin_webs[2])
    assert first["ground_truth.parquet"] != other["ground_truth.parquet"]


def test_regenerating_into_the_same_folder_replaces_the_old_web(twin_webs, tmp_path):
    shutil.copytree(twin_webs[2], tmp_path / "web")
    generate(tmp_path / "web", twin_config())
    assert files_of(tmp_path / "web") == files_of(twin_webs[0])


def test_a_folder_with_foreign_files_is_refused(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        generate(tmp_path, small_config(8000))


def test_rendering_in_a_process_pool_gives_the_same_files(twin_webs, tmp_path):
    generate(tmp_path, twin_config(workers=2))
    assert files_of(tmp_path) == files_of(twin_webs[0])


# --- the ground truth's promises ---------------------------------------------------------------


def test_ground_truth_has_the_contract_columns(truth):
    assert CONTRACT_COLUMNS <= set(truth[0])


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_every_noise_kind_is_present_at_its_configured_rate(synthetic_web, pairs, kind):
    rate = getattr(synthetic_web.config, f"rate_{kind}")
    observed = sum(r[f"noise_{kind}"] for r in pairs) / len(pairs)
    assert observed > 0
    floor = {"boilerplate_alt": 15, "reused_image": 25}.get(kind, 0) / len(pairs)
    assert rate * 0.8 <= observed <= max(rate * 1.25, floor * 1.1) + 0.03  # boundary alts


def test_noise_labels_are_one_per_pair_and_clean_pairs_have_none(pairs):
    for row in pairs:
        labels = [kind for kind in NOISE_KINDS if row[f"noise_{kind}"]]
        assert labels == ([row["noise"]] if row["noise"] else [])


def test_about_half_of_the_pairs_are_clean(pairs):
    clean = sum(1 for r in pairs if r["noise"] is None) / len(pairs)
    assert 0.45 <= clean <= 0.65


def test_each_reused_image_carries_at_least_25_distinct_alts(pairs):
    alts = defaultdict(set)
    for row in pairs:
        if row["noise_reused_image"]:
            alts[row["image_id"]].add(row["alt"])
    assert alts and min(len(a) for a in alts.values()) >= 25


def test_reused_image_appears_at_two_urls_with_the_same_bytes(synthetic_web, pairs):
    urls = defaultdict(set)
    for row in pairs:
        if row["noise_reused_image"]:
            urls[row["image_id"]].add(row["url"])
    for image_urls in urls.values():
        assert len(image_urls) == 2
        contents = {served_file(synthetic_web, url) for url in image_urls}
        assert len(contents) == 1


def test_boilerplate_alts_are_shared_by_more_than_ten_images(pairs):
    images = defaultdict(set)
    for row in pairs:
        images[row["alt"]].add(row["image_id"])
    for row in pairs:
        if row["noise_boilerplate_alt"]:
            assert len(images[row["alt"]]) > 10
    shared = Counter(len(ids) for alt, ids in images.items() if len(ids) >= 10)
    assert shared[10] == 1 and shared[11] == 1  # the boundary: 10 is kept, 11 is noise
    assert any(n >= 15 for n in shared)


def test_no_other_alt_is_shared_by_more_than_eight_images(pairs):
    images = defaultdict(set)
    for row in pairs:
        if row["caption"] not in ("boilerplate", "boundary"):
            images[row["alt"]].add(row["image_id"])
    assert max(len(ids) for ids in images.values()) <= 8


def test_rare_tokens_occur_once_in_the_whole_web(pairs):
    counts = Counter(g for row in pairs for g in synth_text.ngrams(row["alt"]))
    for row in pairs:
        weakest = min(counts[g] for g in synth_text.ngrams(row["alt"]))
        if row["noise_rare_token"]:
            assert weakest == 1, row["alt"]


def test_guarded_alts_use_only_frequent_unigrams_and_bigrams(pairs):
    counts = Counter(g for row in pairs for g in synth_text.ngrams(row["alt"]))
    guarded = [r for r in pairs if r["noise"] not in ("rare_token", "non_english")]
    weak = [r["alt"] for r in guarded if min(counts[g] for g in synth_text.ngrams(r["alt"])) < 5]
    assert weak == []


def word_count(alt: str) -> int:
    return len(synth_text.ngrams(alt)) // 2 + 1 if alt.strip() else 0


def test_length_noise_is_outside_3_to_20_words_and_the_rest_inside(pairs):
    for row in pairs:
        n = len(re.findall(r"\w+(?:'\w+)*", row["alt"].casefold()))
        if row["noise_too_short"]:
            assert 1 <= n <= 2, row["alt"]
        elif row["noise_too_long"]:
            assert n >= 21, row["alt"]
        elif row["caption"] in ("template", "photo", "reused", "mismatched", "rare_token"):
            assert 3 <= n <= 20, row["alt"]


def test_image_size_noise_matches_the_served_pictures(synthetic_web, pairs):
    for row in pairs:
        if row["expected_status"] != "ok":
            continue
        with Image.open(io.BytesIO(served_file(synthetic_web, row["url"]))) as image:
            image.load()
            width, height = image.size
        assert (width, height) == (row["width"], row["height"])
        short, long = min(width, height), max(width, height)
        if row["noise_small_image"]:
            assert short <= 200
        elif row["noise_extreme_aspect"]:
            assert long / short >= 3 and short > 200
        else:
            assert short > 200 and long / short < 3, row


def test_undecodable_images_have_a_sane_header_but_fail_to_decode(synthetic_web, pairs):
    rows = [r for r in pairs if r["noise_undecodable"]]
    assert rows
    for row in rows:
        with Image.open(io.BytesIO(served_file(synthetic_web, row["url"]))) as image:
            assert max(image.size) <= synthetic_web.config.max_side * 2
            with pytest.raises(OSError):
                image.load()


def test_langdetect_tells_english_from_the_other_languages(pairs):
    from langdetect import DetectorFactory, detect

    DetectorFactory.seed = 0
    english = [r["alt"] for r in pairs if r["caption"] in ("template", "photo")]
    foreign = [r for r in pairs if r["noise_non_english"]]
    assert sum(detect(a) == "en" for a in english) / len(english) >= 0.9
    assert {r["language"] for r in foreign} >= {"de", "fr", "es"}
    assert sum(detect(r["alt"]) == r["language"] for r in foreign) / len(foreign) >= 0.9


def test_faults_map_to_expected_statuses(pairs):
    expected = {(r["fault"], r["expected_status"]) for r in pairs}
    assert ("http_404", "http_404") in expected and ("hang", "timeout") in expected
    assert ("http_429", "ok") in expected and ("x_robots_tag", "x_robots_tag") in expected
    assert {r["noise"] for r in pairs if r["expected_status"] not in ("ok",)} <= {
        "broken_link",
        "undecodable",
        "x_robots",
        None,  # clean pictures an image host reserves (consent), below
    }
    reserved = {
        r["expected_status"] for r in pairs if r["noise"] is None and r["expected_status"] != "ok"
    }
    assert reserved == {"ai_txt", "tdmrep_json", "tdm_reservation"}
    assert all(
        r["consent"] == r["expected_status"] for r in pairs if r["expected_status"] in reserved
    )


# --- the files agree with the ground truth ---------------------------------------------------


def served_file(web, url: str) -> bytes:
    """The bytes behind an image URL, where the web stored them (following a cross-host move)."""
    host, path = url.split("/", 3)[2].split(":")[0], "/" + url.split("/", 3)[3]
    routes = json.loads((web.site / "routes.json").read_text())["routes"]
    host = routes.get(host, {}).get(path, {}).get("target_host", host)
    return (web.site / host / path.lstrip("/")).read_bytes()


class ReferenceExtractor(HTMLParser):
    """The crawl contract in a few lines: <img> with a non-empty alt and an http(s) src (falling
    back to data-src), resolved against <base href> or the page."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base, self.pairs = page_url, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "base" and attrs.get("href"):
            self.base = urljoin(self.base, attrs["href"])
        if tag != "img":
            return
        alt = " ".join((attrs.get("alt") or "").split())
        src = attrs.get("src") or ""
        if not src.startswith(("http", "/", ".")) and not re.match(r"^[\w/.-]+$", src):
            src = attrs.get("data-src") or src
        url = urljoin(self.base, src)
        if alt and url.startswith(("http://", "https://")):
            self.pairs.append((url, alt))


def charset_of(data: bytes, content_type: str) -> str:
    if "charset=" in content_type:
        return content_type.split("charset=")[1]
    match = re.search(rb'charset="?([\w-]+)', data[:1024], re.IGNORECASE)
    return match.group(1).decode() if match else "utf-8"


def test_pages_hold_exactly_the_ground_truth_pairs(synthetic_web, pairs, truth):
    """Ordinary pages hold the emitted pairs; the pages that reserve themselves hold exactly
    the pairs labelled with their signal, which the crawl must not emit."""
    routes = json.loads((synthetic_web.site / "routes.json").read_text())["routes"]["127.0.0.1"]
    reserved_rows = [r for r in truth if r["consent"] and not r["emitted_by_crawl"]]
    reserved_pages = {r["page_url"] for r in reserved_rows}
    found, reserved = set(), set()
    for url in synthetic_web.page_urls.read_text().split():
        path = "/" + url.split("/", 3)[3]
        data = (synthetic_web.site / "127.0.0.1" / path.lstrip("/")).read_bytes()
        parser = ReferenceExtractor(url)
        parser.feed(data.decode(charset_of(data, routes[path]["content_type"])))
        (reserved if url in reserved_pages else found).update(parser.pairs)
    assert found == {(r["url"], r["alt"]) for r in pairs}
    assert reserved == {(r["url"], r["alt"]) for r in reserved_rows}


@pytest.mark.parametrize(
    "marker",
    [
        b"<base href=",
        b"<BASE HREF=",
        b"<IMG ",
        b"data-src=",
        b'src="data:image/',
        b'src="//',
        b'src="../',
        b'src="/assets/',
        b"&nbsp;",
        b"&#x",
        b"srcset=",
        b"charset=iso-8859-1",
        b"charset=windows-1252",
        b"http-equiv",
        b"<!-- <img",
    ],
)
def test_pages_use_every_markup_variant(synthetic_web, marker):
    pages = [p.read_bytes() for p in (synthetic_web.site / "127.0.0.1").rglob("*.html")]
    assert any(marker in page for page in pages)


def test_some_pages_declare_no_charset_at_all(synthetic_web):
    routes = json.loads((synthetic_web.site / "routes.json").read_text())["routes"]["127.0.0.1"]
    undeclared = [
        path
        for path, route in routes.items()
        if "charset" not in route.get("content_type", "charset")
        and b"charset" not in (synthetic_web.site / "127.0.0.1" / path.lstrip("/")).read_bytes()
    ]
    assert undeclared


def test_warc_responses_are_the_served_pages(synthetic_web):
    types = Counter()
    pages = 0
    for path in sorted(Path(synthetic_web.root, "warc").glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                types[record.rec_type] += 1
                if record.rec_type != "response":
                    continue
                content_type = record.http_headers.get_header("Content-Type")
                if (
                    not content_type.startswith("text/html")
                    or record.http_headers.get_statuscode() != "200"
                ):
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI")
                body = record.content_stream().read()
                assert served_file(synthetic_web, url) == body
                pages += 1
    assert pages == synthetic_web.manifest["counts"]["pages"]
    assert types["warcinfo"] >= 1 and types["request"] >= pages and types["metadata"] >= pages
    assert types["revisit"] >= 1  # and non-HTML responses, to be skipped


def test_wat_links_list_the_ground_truth_pairs(synthetic_web, pairs, truth):
    """The WAT lists every page's links; a reserved page's signal is in its stored headers or
    Head.Metas, where a WAT reader finds it (and no other page reserves itself)."""
    reserved_rows = [r for r in truth if r["consent"] and not r["emitted_by_crawl"]]
    signal_of = {r["page_url"]: r["consent"] for r in reserved_rows}
    found, reserved, signals = set(), set(), {}
    for path in sorted(Path(synthetic_web.root, "wat").glob("*.warc.wat.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type != "metadata":
                    continue
                envelope = json.loads(record.content_stream().read())["Envelope"]
                response = envelope["Payload-Metadata"].get("HTTP-Response-Metadata", {})
                if "HTML-Metadata" not in response:
                    continue
                page = envelope["WARC-Header-Metadata"]["WARC-Target-URI"]
                html = response["HTML-Metadata"]
                found_here = reserved if page in signal_of else found
                decision = page_reservation(wat_headers(response), wat_metas(html), AGENT_TOKEN)
                signals[page] = decision.reason if decision else None
                for link in html.get("Links", []):
                    alt = " ".join(link.get("alt", "").split())
                    if link["path"] == "IMG@/src" and alt and link["url"].startswith("http"):
                        found_here.add((link["url"], alt))
    assert found == {(r["url"], r["alt"]) for r in pairs}
    assert reserved == {(r["url"], r["alt"]) for r in reserved_rows}
    assert {page: why for page, why in signals.items() if why} == signal_of


def test_image_hosts_policy_files_reserve_exactly_the_labelled_images(synthetic_web, pairs):
    """ai.txt and tdmrep.json (read with the project's own parsers) reserve the pairs labelled
    ai_txt and tdmrep_json and no other; tdm_reservation images get the header's route."""
    site = Path(synthetic_web.site)
    routes = json.loads((site / "routes.json").read_text())["routes"]
    policies = {}
    for host in synthetic_web.manifest["hosts"]:
        ai_txt, tdmrep = site / host / "ai.txt", site / host / ".well-known" / "tdmrep.json"
        policies[host] = (
            parse_ai_txt(ai_txt.read_bytes() if ai_txt.exists() else b"", AGENT_TOKEN),
            parse_tdmrep(tdmrep.read_bytes() if tdmrep.exists() else b""),
        )
    found = Counter()
    for row in pairs:
        ai_rules, tdm_rules = policies[row["url"].split("/")[2].split(":")[0]]
        if ai_txt_reservation(ai_rules, row["url"]):
            assert row["consent"] == "ai_txt"
            found["ai_txt"] += 1
        if tdmrep_reservation(tdm_rules, row["url"]):
            assert row["consent"] == "tdmrep_json"
            found["tdmrep_json"] += 1
        path = "/" + row["url"].split("/", 3)[3]
        headers = routes.get(row["url"].split("/")[2].split(":")[0], {}).get(path, {})
        if ["tdm-reservation", "1"] in headers.get("headers", []):
            assert row["consent"] == "tdm_reservation"
            found["tdm_reservation"] += 1
    download_signals = {"ai_txt", "tdmrep_json", "tdm_reservation"}
    labelled = Counter(row["consent"] for row in pairs if row["consent"] in download_signals)
    assert found == labelled and set(labelled) == download_signals
    every_label = [row for row in pairs if row["consent"]]
    assert every_label and all(row["consent"] == row["expected_status"] for row in every_label)


def test_warc_files_are_gzip_members_without_timestamps(synthetic_web):
    path = next(Path(synthetic_web.root, "warc").glob("*.warc.gz"))
    header = path.read_bytes()[:10]
    assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\x00\x00\x00\x00"
    assert gzip.decompress(path.read_bytes()).startswith(b"WARC/1.0")


def test_pages_txt_lists_every_page_once(synthetic_web, truth):
    urls = synthetic_web.page_urls.read_text().split()
    assert len(urls) == len(set(urls)) == synthetic_web.manifest["counts"]["pages"]
    assert {r["page_url"] for r in truth} <= set(urls)


# --- evaluation sets ---------------------------------------------------------------------------


def test_zero_shot_set_has_a_folder_of_images_per_class(synthetic_web):
    classes = (synthetic_web.eval_zero_shot / "classes.txt").read_text().split("\n")[:-1]
    assert len(classes) >= 20
    for name in classes:
        images = list((synthetic_web.eval_zero_shot / name).glob("*.jpg"))
        assert len(images) == synthetic_web.config.eval_per_class


def test_retrieval_set_is_karpathy_style(synthetic_web):
    document = json.loads((synthetic_web.eval_retrieval / "captions.json").read_text())
    assert len(document["images"]) == synthetic_web.config.n_retrieval
    for item in document["images"]:
        assert (synthetic_web.eval_retrieval / "images" / item["filename"]).exists()
        assert item["split"] == "test" and len(item["sentences"]) == 5


def test_eval_images_appear_on_the_web_only_as_near_duplicates(synthetic_web, pairs):
    from filters.phash import hamming, phash

    eval_hashes = {}
    for path in synthetic_web.root.joinpath("eval").rglob("*.jpg"):
        with Image.open(path) as image:
            eval_hashes[str(path.relative_to(synthetic_web.root / "eval"))] = phash(image)
    served_sha = {
        hashlib.sha256(p.read_bytes()).digest()
        for p in synthetic_web.root.joinpath("eval").rglob("*.jpg")
    }
    nearest = []
    for row in pairs:
        if row["expected_status"] != "ok":
            continue
        data = served_file(synthetic_web, row["url"])
        assert hashlib.sha256(data).digest() not in served_sha
        with Image.open(io.BytesIO(data)) as image:
            digest = phash(image)
        if row["noise_eval_near_duplicate"]:
            assert hamming(digest, eval_hashes[row["eval_match"]]) <= 6
        else:
            nearest.append(min(hamming(digest, h) for h in eval_hashes.values()))
    assert sum(d <= 8 for d in nearest) <= len(nearest) * 0.01


def test_photo_jpegs_are_real_photos_of_the_asked_size():
    photos = list(photo_jpegs(4, min_side=800, max_side=1000, seed=1))
    assert len({data for _, data in photos}) == 4
    for name, data in photos:
        assert name.endswith(".jpg")
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            assert 800 <= min(image.size) and max(image.size) <= 1000
    assert list(photo_jpegs(4, min_side=800, max_side=1000, seed=1)) == photos


# --- the command line ------------------------------------------------------------------------


def test_command_line_writes_a_web(tmp_path, capsys):
    args = ["--output", str(tmp_path / "web"), "--pairs", "120", "--seed", "5", "--port", "9001"]
    assert main(args) is None  # the console script's exit status is 0
    manifest = json.loads((tmp_path / "web" / "web.json").read_text())
    assert manifest["port"] == 9001 and manifest["seed"] == 5
    assert "pairs" in capsys.readouterr().out


def test_command_line_rejects_a_bad_flag_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["--output", str(tmp_path), "--pairs", "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("align-synthweb: error: --pairs")

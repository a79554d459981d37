"""A deterministic synthetic web (pages, images, WARC/WAT, ground truth, eval sets) for tests and
the demo: Common Crawl plus the image hosts behind it, with every kind of alt-text noise labelled.

Usage: ``align-synthweb --output DIR [--pairs N] [--seed S] [--port P] [--serve]``
(tools/synthweb_cli.py).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from commandline.extras import require
from commandline.flags import UsageError
from pipeline.records import make_uid
from tools import synth_images
from tools.synth_html import (
    Page,
    content_type,
    image_url,
    make_pages,
    page_url,
    render_page,
    reserved_pages,
)
from tools.synth_plan import (
    DOWNLOAD_SIGNALS,
    EXPECTED_STATUS,
    NOISE_KINDS,
    POLICY,
    Img,
    Planner,
    host_ip,
    page_count,
)
from tools.synth_text import CLASS_NAMES
from tools.synth_warc import Capture, write_warc, write_wat
from tools.webserver import serve_until_interrupted

photo_jpegs = synth_images.photo_jpegs  # the download benchmark's corpus


@dataclass
class WebConfig:
    """Everything that shapes a synthetic web. Rates are fractions of ``n_pairs``; each noise
    kind is on its own pairs, so roughly 1 - sum(rates) of the pairs are clean."""

    seed: int = 0
    n_pairs: int = 2000  # emitted (url, alt) occurrences, about
    port: int = 8000  # embedded in every URL
    n_image_hosts: int = 3  # 127.0.0.2 ... 127.0.0.(1 + n); pages live on 127.0.0.1
    imgs_per_page: tuple[int, int] = (4, 12)
    pages_per_warc: int = 200
    min_side: int = 256  # clean pictures: shorter side in [min_side, max_side]
    max_side: int = 400
    rate_boilerplate_alt: float = 0.05
    rate_reused_image: float = 0.05
    rate_small_image: float = 0.04
    rate_extreme_aspect: float = 0.04
    rate_non_english: float = 0.05
    rate_rare_token: float = 0.05
    rate_too_short: float = 0.03
    rate_too_long: float = 0.03
    rate_mismatched_caption: float = 0.04
    rate_eval_near_duplicate: float = 0.02
    rate_broken_link: float = 0.03
    rate_undecodable: float = 0.02
    rate_x_robots: float = 0.02
    rate_photo: float = 0.06  # share of the clean pairs that are scikit-image photographs
    rate_not_emitted: float = 0.03  # extra <img> tags without alt or with a non-http src
    n_duplicates: int = 5  # (url, alt) repeated on a second page
    min_alts_per_reused_image: int = 25
    boundary_alts: bool = True  # one alt-text on exactly 10 images and one on 11
    n_hang: int = 2  # counted in the broken links: a hang outlasts any sane read timeout
    n_slow: int = 3  # the benign faults, on clean pairs
    n_http_429: int = 4
    n_redirect: int = 6
    n_redirect_other_host: int = 4
    n_wrong_content_type: int = 4
    n_consent_images: int = 2  # per signal a host gives at download time (DOWNLOAD_SIGNALS)
    eval_per_class: int = 8
    n_retrieval: int = 100
    captions_per_image: int = 5
    workers: int | None = None  # processes rendering pictures; None: by size of the web

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host_ip(i) for i in range(self.n_image_hosts + 1))


def small_config(port: int, seed: int = 0, n_pairs: int = 400) -> WebConfig:
    """The web the test suite shares: a few hundred pairs, every noise kind and fault present."""
    return WebConfig(
        seed=seed,
        n_pairs=n_pairs,
        port=port,
        eval_per_class=4,
        n_retrieval=40,
        pages_per_warc=25,
        workers=1,
    )


# --- rendering ------------------------------------------------------------------------------


class _Renderer:
    """Renders picture specs to files, in a process pool when the web is big enough, while
    the caller goes on writing pages and WARC files; ``sizes()`` waits for the pictures."""

    def __init__(self, jobs: list[tuple[dict, list[str]]], workers: int | None) -> None:
        if workers is None:
            workers = 1 if len(jobs) < 800 else min(os.cpu_count() or 1, 8)
        self._pool = self._pending = None
        if workers <= 1:
            self._results = [synth_images.render_to_files(job) for job in jobs]
            return
        # spawn, not fork: the caller may hold TensorFlow or Beam threads
        self._pool = multiprocessing.get_context("spawn").Pool(workers)
        chunksize = max(1, len(jobs) // (workers * 16))
        self._pending = self._pool.map_async(synth_images.render_to_files, jobs, chunksize)

    def results(self) -> list:
        if self._pending is not None:
            try:
                self._results = self._pending.get()
            finally:
                self._pool.close()
                self._pool.join()
            self._pending = None
        return self._results


# --- the generator --------------------------------------------------------------------------


def _prepare(output: Path) -> None:
    if output.exists() and any(output.iterdir()):
        if not (output / "web.json").exists():
            raise UsageError(f"{output} is not empty and holds no synthetic web; pick another")
        for name in ("warc", "wat", "site", "eval"):
            shutil.rmtree(output / name, ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)


def generate(output_dir: str | os.PathLike, config: WebConfig) -> dict:
    """Writes the whole web under ``output_dir`` and returns its manifest (also web.json)."""
    output = Path(output_dir)
    _prepare(output)
    planner = Planner(config)
    planner.plan()
    planner.check()
    rng = random.Random(f"synthweb:{config.seed}:pages")
    ordinary = [img for img in planner.imgs if img.reserved_page is None]
    pages = make_pages(ordinary, page_count(len(ordinary), config.imgs_per_page), rng, config)
    pages += reserved_pages(planner.imgs, len(pages))
    pictures = _write_pictures(output, planner, config)
    routes = _write_pages(output, pages, config)
    _write_site_extras(output, planner, routes, config)
    n_warc = _write_crawl(output, pages, config)
    sizes = pictures()
    rows = _ground_truth(planner, pages, sizes, config)
    pq.write_table(
        pa.Table.from_pylist(rows, schema=GROUND_TRUTH_SCHEMA),
        output / "ground_truth.parquet",
        compression="zstd",
    )
    _write_eval(output, planner)
    (output / "pages.txt").write_text("".join(page_url(config.port, p.path) + "\n" for p in pages))
    manifest = _manifest(config, rows, pages, planner, n_warc)
    (output / "web.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_pictures(output: Path, planner: Planner, config: WebConfig):
    """Starts rendering every picture and eval image; returns a function that waits for
    them and gives {picture id or eval name: (width, height) or None}."""
    site = output / "site"
    jobs, keys = [], []
    for picture in planner.pictures:
        if picture.store:
            paths = [str(site / host_ip(h) / p.lstrip("/")) for h, p in picture.store]
            jobs.append((picture.spec, paths))
            keys.append(picture.id)
    for item in planner.eval_images:
        jobs.append((item.spec, [str(output / "eval" / item.name)]))
        keys.append(item.name)
    renderer = _Renderer(jobs, config.workers)
    return lambda: dict(zip(keys, renderer.results(), strict=True))


def _write_pages(output: Path, pages: list[Page], config: WebConfig) -> dict:
    """Writes every page (served bytes = archived bytes); returns the server's routes."""
    routes: dict[str, dict[str, dict]] = {}
    for page in pages:
        data, links, head = render_page(page, config.port, config.seed)
        page.data, page.links_meta, page.head = data, links, head
        path = output / "site" / host_ip(0) / page.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        route = {"content_type": content_type(page)}
        if page.headers:
            route["headers"] = [list(pair) for pair in page.headers]
        routes.setdefault(host_ip(0), {})[page.path] = route
    return routes


# Image hosts' own policy files (pipeline/fetch/consent.py): host 1's ai.txt reserves its
# /ai-reserved/ folder, host 2's tdmrep.json its /tdm-reserved/ folder; each also says something
# that reserves nothing for our agent (another agent's rule, a location with reservation 0).
AI_TXT = (
    "# Spawning ai.txt\nUser-Agent: *\nDisallow: /{folder}/\nAllow: /img/\n\n"
    "User-Agent: otherbot\nDisallow: /\n"
)


def _write_policies(site: Path, config: WebConfig) -> None:
    ai_host, tdm_host = host_ip(1), host_ip(min(2, config.n_image_hosts))
    (site / ai_host / "ai.txt").write_text(AI_TXT.format(folder=DOWNLOAD_SIGNALS["ai_txt"]))
    rules = [
        {"location": f"/{DOWNLOAD_SIGNALS['tdmrep_json']}/*", "tdm-reservation": 1,
         "tdm-policy": POLICY},
        {"location": "/img/*", "tdm-reservation": 0},
    ]  # fmt: skip
    well_known = site / tdm_host / ".well-known"
    well_known.mkdir(parents=True, exist_ok=True)
    (well_known / "tdmrep.json").write_text(json.dumps(rules, indent=1) + "\n")


def _write_site_extras(output: Path, planner: Planner, routes: dict, config: WebConfig) -> None:
    """robots.txt of every host, and routes.json: the per-URL faults the server plays."""
    site = output / "site"
    for index, ip in enumerate(config.hosts):
        rules = "Disallow: /private/\n" if index else "Disallow: /admin/\n"
        (site / ip).mkdir(parents=True, exist_ok=True)
        (site / ip / "robots.txt").write_text(
            f"User-agent: *\n{rules}\nUser-agent: BadBot\nDisallow: /\n"
        )
    _write_policies(site, config)
    for picture in planner.pictures:
        quiet = picture.fault in ("none", "robots_disallowed", "undecodable", "http_404")
        if quiet and not picture.route.get("headers"):
            continue
        route = {"fault": picture.fault, **picture.route}
        if picture.fault == "not_an_image":
            route = {"content_type": "text/html; charset=utf-8"}
        for host, path in [(picture.host, picture.path), *picture.mirrors]:
            routes.setdefault(host_ip(host), {})[path] = route
    document = {
        "settings": {"slow_seconds": 1.5, "hang_seconds": 60, "redirect_hops": 2},
        "routes": routes,
    }
    (site / "routes.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def _extra_captures(index: int, config: WebConfig) -> list[Capture]:
    """Records a WARC reader must skip: robots.txt, an image, a PDF, a revisit, a 404 page."""
    base = f"http://{host_ip(0)}:{config.port}"
    return [
        Capture(f"{base}/robots.txt", 200, "text/plain", b"User-agent: *\nDisallow: /admin/\n"),
        Capture(
            f"{base}/files/leaflet-{index}.pdf",
            200,
            "application/pdf",
            b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
        ),
        Capture(
            f"{base}/assets/spacer-{index}.gif",
            200,
            "image/gif",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
            b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
        ),
        Capture(f"{base}/pages/{index:05d}.html", 200, "text/html", b"", revisit=True),
        Capture(
            f"{base}/gone-{index}.html",
            404,
            "text/html",
            b"<html><body><h1>Not found</h1></body></html>",
        ),
    ]


def _write_crawl(output: Path, pages: list[Page], config: WebConfig) -> int:
    (output / "warc").mkdir(parents=True, exist_ok=True)
    (output / "wat").mkdir(parents=True, exist_ok=True)
    chunks = [
        pages[i : i + config.pages_per_warc] for i in range(0, len(pages), config.pages_per_warc)
    ]
    for number, chunk in enumerate(chunks):
        captures = []
        for page in chunk:
            captures.append(
                Capture(
                    page_url(config.port, page.path),
                    200,
                    content_type(page),
                    page.data,
                    page.links_meta,
                    page.head,
                    headers=page.headers,
                )
            )
            if page.index % 10 == 3:
                captures += _extra_captures(page.index, config)
        stem = f"CC-SYNTH-{config.seed:04d}-{number:05d}"
        envelopes = write_warc(str(output / "warc" / f"{stem}.warc.gz"), captures, config.seed)
        write_wat(str(output / "wat" / f"{stem}.warc.wat.gz"), envelopes, config.seed)
    return len(chunks)


def _write_eval(output: Path, planner: Planner) -> None:
    zero_shot = output / "eval" / "zero_shot"
    zero_shot.mkdir(parents=True, exist_ok=True)
    (zero_shot / "classes.txt").write_text("".join(f"{name}\n" for name in CLASS_NAMES))
    images = [
        {
            "filename": item.name.rsplit("/", 1)[-1],
            "split": "test",
            "class_name": item.class_name,
            "sentences": [{"raw": c, "tokens": c.split()} for c in item.captions],
        }
        for item in planner.eval_images
        if item.name.startswith("retrieval/")
    ]
    retrieval = output / "eval" / "retrieval"
    retrieval.mkdir(parents=True, exist_ok=True)
    (retrieval / "captions.json").write_text(json.dumps({"images": images}, indent=1) + "\n")


# --- ground truth ---------------------------------------------------------------------------

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),  # make_uid(url, alt) of an emitted pair, else null
        ("url", pa.string()),
        ("alt", pa.string()),
        ("page_url", pa.string()),
        ("position", pa.int32()),  # index of the <img> on its page
        ("image_id", pa.string()),  # identity of the picture (same for reused images)
        ("class_name", pa.string()),
        ("caption", pa.string()),  # how the alt-text was written: template, photo, foreign...
        ("language", pa.string()),
        ("width", pa.int32()),  # as served, when the download must succeed
        ("height", pa.int32()),
        ("emitted_by_crawl", pa.bool_()),
        ("duplicate", pa.bool_()),  # the same (url, alt) already occurs on an earlier row
        ("fault", pa.string()),
        ("expected_status", pa.string()),
        ("noise", pa.string()),  # the one noise kind of the pair, null when clean
        ("eval_match", pa.string()),
        # the machine-readable reservation that keeps the pair out (pipeline/fetch/consent.py):
        # a page's (x_robots_tag, meta_robots, tdm_reservation, tdm_reservation_meta: the crawl
        # emits none of its pairs) or an image host's (ai_txt, tdmrep_json, tdm_reservation:
        # emitted, for align-download to refuse; so are the x_robots_tag and robots_disallowed
        # faults, which it refuses already); null when nothing reserves it
        ("consent", pa.string()),
        *[(f"noise_{kind}", pa.bool_()) for kind in NOISE_KINDS],
    ]
)


# Faults that are an image host's reservation, which align-download already honours.
CONSENT_FAULTS = ("x_robots_tag", "robots_disallowed")


def _ground_truth(planner: Planner, pages: list[Page], sizes: dict, config) -> list[dict]:
    rows = []
    seen: set[tuple[str, str]] = set()
    for page in pages:
        for position, img in enumerate(page.imgs):
            rows.append(_row(img, page, position, sizes, seen, config))
    return rows


def _row(img: Img, page: Page, position: int, sizes: dict, seen: set, config) -> dict:
    picture = img.picture
    url = img.raw_src if img.raw_src is not None else image_url(config.port, img.host, img.path)
    fault = picture.fault if picture and img.emitted else "none"
    expected = EXPECTED_STATUS[fault] if img.emitted else None
    if expected == "ok" and picture.consent in DOWNLOAD_SIGNALS:
        expected = picture.consent  # the host's ai.txt or tdmrep.json, or the image's header
    size = sizes.get(picture.id) if picture and expected == "ok" else None
    key = (url, img.alt)
    row = {
        "uid": make_uid(url, img.alt) if img.emitted else None,
        "url": url,
        "alt": img.alt,
        "page_url": page_url(config.port, page.path),
        "position": position,
        "image_id": picture.id if picture else None,
        "class_name": picture.class_name if picture else None,
        "caption": img.caption,
        "language": img.language,
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "emitted_by_crawl": img.emitted,
        "duplicate": img.emitted and key in seen,
        "fault": fault,
        "expected_status": expected,
        "noise": img.noise,
        "eval_match": img.eval_match,
        "consent": img.consent or (fault if fault in CONSENT_FAULTS else None),
    }
    if img.emitted:
        seen.add(key)
    for kind in NOISE_KINDS:
        row[f"noise_{kind}"] = img.noise == kind
    return row


def _manifest(config: WebConfig, rows: list[dict], pages, planner: Planner, n_warc: int) -> dict:
    emitted = [r for r in rows if r["emitted_by_crawl"] and not r["duplicate"]]
    return {
        "seed": config.seed,
        "port": config.port,
        "hosts": list(config.hosts),
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "workers"},
        "counts": {
            "img_tags": len(rows),
            "pairs": len(emitted),
            "clean": sum(1 for r in emitted if r["noise"] is None),
            "pages": len(pages),
            "pictures": len(planner.pictures),
            "warc_files": n_warc,
            "noise": {k: sum(1 for r in emitted if r["noise"] == k) for k in NOISE_KINDS},
            "consent": dict(sorted(Counter(r["consent"] for r in rows if r["consent"]).items())),
            "reserved_pages": sum(1 for page in pages if page.consent),
            "faults": dict(sorted(Counter(r["fault"] for r in emitted).items())),
            "eval_zero_shot": sum(1 for e in planner.eval_images if e.name.startswith("zero")),
            "eval_retrieval": sum(1 for e in planner.eval_images if e.name.startswith("retr")),
        },
        "paths": {
            "warc": "warc/*.warc.gz",
            "wat": "wat/*.warc.wat.gz",
            "site": "site",
            "ground_truth": "ground_truth.parquet",
            "pages": "pages.txt",
            "eval_zero_shot": "eval/zero_shot",
            "eval_retrieval": "eval/retrieval",
        },
    }


# --- the command (its flags: tools/synthweb_cli.py) ---------------------------------------


def build(args) -> dict:
    """align-synthweb's work: generates the web (and serves it with ``--serve``); returns its
    manifest (also DIR/web.json)."""
    pairs = WebConfig.n_pairs if args.pairs is None else args.pairs
    config = WebConfig(seed=args.seed, n_pairs=pairs, port=args.port, workers=args.workers)
    require("synthweb", synth_images.PHOTOS_NEEDED_BY)
    started = time.perf_counter()
    manifest = generate(args.output, config)
    counts = manifest["counts"]
    print(
        f"align-synthweb: {counts['pairs']} pairs ({counts['clean']} clean) on "
        f"{counts['pages']} pages, {counts['pictures']} pictures, {counts['warc_files']} WARC "
        f"files in {time.perf_counter() - started:.1f} s -> {args.output}"
    )
    if args.serve:
        serve_until_interrupted(Path(args.output) / "site", config.port, config.hosts)
    return manifest

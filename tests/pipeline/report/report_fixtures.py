"""A finished curation as the filter job's contract describes it, written for the report's
tests: records where every rule fires (some fail two, labels are imperfect), a run folder of
them, the ground truth that labels them, and the demo's chain of two filter runs."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.filter.apply import MEASUREMENT_SCHEMA, REJECT_OUTPUT_SCHEMA
from pipeline.records import make_uid

# The filter's rule names, in its order (filters.rules.rules_for("all", ...) without nsfw).
RULES = ["download", "alt_length", "image_size", "aspect", "images_per_alt", "alts_per_image"]
RULES += ["rare_tokens", "eval_dedup", "language"]
TEXT_RULES = ["alt_length", "images_per_alt", "rare_tokens", "language"]
WORDS = "red blue green house river mountain dog cat child garden city street tree bird".split()
BOILERPLATE = "click here to enlarge"
REUSED_SHA = "f" * 64
FAILURES = [
    ("download_http_404", "HTTP 404"),
    (
        "download_too_many_redirects",
        "redirect loop at http://127.0.0.2:8000/img/" + "very-long-path-segment/" * 6,
    ),
]
# The rules align-filter --rules text runs, by the reasons they give.
TEXT_REASONS = {"alt_too_short", "alt_too_long", "alt_shared_by_many_images", "rare_token",
                "language"}  # fmt: skip


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (60, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_records(seed: int = 7) -> list[dict]:
    """A run's records: every rule fires, some records fail two rules, labels are imperfect."""
    rng = np.random.default_rng(seed)
    records = []

    def add(
        alt, reasons=(), measured=(), labels=(), width=400, height=300, language="en", sha=None
    ):
        index = len(records)
        url = f"http://127.0.0.2:8000/img/{index:04d}.jpg"
        records.append(
            {
                "uid": make_uid(url, alt),
                "url": url,
                "alt": alt,
                "page_url": f"http://127.0.0.1:8000/page/{index // 3}.html",
                "kept": not reasons,
                "reasons": list(reasons),
                "measured": list(measured),
                "n_unigrams": len(alt.split()),
                "language": language,
                "original_width": width,
                "original_height": height,
                # sha="" for a failed download: no bytes, no hash.
                "sha256": hashlib.sha256(url.encode()).hexdigest() if sha is None else sha or None,
                "labels": set(labels),
                "colour": tuple(int(c) for c in rng.integers(0, 255, 3)),
            }
        )

    def sentence(n):
        return " ".join(rng.choice(WORDS, n))

    for _ in range(120):
        add(sentence(int(rng.integers(3, 15))), width=int(rng.integers(220, 1200)))
    for _ in range(30):
        add(
            BOILERPLATE,
            ["alt_shared_by_many_images"],
            ["images_per_alt>=30"],
            ["noise_boilerplate_alt"],
        )
    for _ in range(18):
        add(sentence(2), ["alt_too_short"], ["n_unigrams=2"], ["noise_too_short"])
    for _ in range(4):  # too short and too small: first failing rule is the text one
        add(sentence(1), ["alt_too_short", "image_too_small"], ["n_unigrams=1", "shorter_side=50"],
            ["noise_too_short", "noise_small_image"], width=80, height=50)  # fmt: skip
    for _ in range(2):  # labelled too short but the rule missed them (recall < 1)
        add(sentence(3), labels=["noise_too_short"])
    for _ in range(10):
        add(sentence(26), ["alt_too_long"], ["n_unigrams=26"], ["noise_too_long"])
    for _ in range(15):
        add("une maison près de la rivière", ["language"], ["language=fr"], ["noise_non_english"],
            language="fr")  # fmt: skip
    for _ in range(16):
        add(sentence(5), ["image_too_small"], ["shorter_side=120"], ["noise_small_image"],
            width=150, height=120)  # fmt: skip
    for _ in range(3):  # small but not labelled so (precision < 1)
        add(sentence(5), ["image_too_small"], ["shorter_side=190"], width=260, height=190)
    for _ in range(10):
        add(sentence(6), ["extreme_aspect"], ["aspect=5.000"], ["noise_extreme_aspect"],
            width=1500, height=300)  # fmt: skip
    for _ in range(25):
        add(sentence(6), ["image_with_many_alts"], ["alts_per_image>=25"], ["noise_reused_image"],
            sha=REUSED_SHA)  # fmt: skip
    for _ in range(5):
        add(sentence(4), ["eval_near_duplicate/zero_shot"], ["hamming=2"],
            ["noise_eval_near_duplicate"])  # fmt: skip
    for _ in range(6):  # kept, but their caption does not describe the image: no rule for that
        add(sentence(5), labels=["noise_mismatched_caption"])
    for index in range(6):  # the download failed: no image, nothing measured on it
        reason, measured = FAILURES[index % 2]
        add(sentence(5), [reason], [measured], ["noise_broken_link"], width=None, height=None,
            language=None, sha="")  # fmt: skip
    return records


def stats_of(records: list[dict], input_dir: str, mode: str = "all", nsfw: bool = False) -> dict:
    first, any_counts = {}, {}
    for record in records:
        if record["reasons"]:
            first[record["reasons"][0]] = first.get(record["reasons"][0], 0) + 1
        for reason in record["reasons"]:
            any_counts[f"any/{reason}"] = any_counts.get(f"any/{reason}", 0) + 1
    kept = sum(record["kept"] for record in records)
    return {
        "in": len(records),
        "kept": kept,
        "rejected": first,
        "counts": any_counts,
        "balanced": len(records) == kept + sum(first.values()),
        "mode": mode,
        "rules": TEXT_RULES if mode == "text" else RULES[:-1] + ["nsfw"] * nsfw + RULES[-1:],
        "job": "align-filter",
        "config": {
            "min_unigrams": 3,
            "max_unigrams": 20,
            "min_shorter_side": 200,
            "max_aspect_ratio": 3.0,
            "languages": ["en"],
        },
        "input": input_dir,
        "nsfw_applied": nsfw,
        "eval_sets": {"zero_shot": 40},
    }


def write_run(
    root: Path, records: list[dict], mode: str = "all", nsfw: bool = False, name: str = "run"
) -> Path:
    """A finished align-filter run folder exactly as the filter job's contract describes it;
    the images it read in root/images (mode all)."""
    run, images = root / name, root / "images"
    (run / "measurements").mkdir(parents=True)
    (run / "rejects").mkdir()
    rows = [{name: r.get(name) for name in MEASUREMENT_SCHEMA.names} for r in records]
    if mode == "text":
        for row in rows:
            row.update(original_width=None, original_height=None, sha256=None)
    for index, part in enumerate((rows[::2], rows[1::2])):
        table = pa.Table.from_pylist(part, schema=MEASUREMENT_SCHEMA)
        pq.write_table(table, run / "measurements" / f"measurements-{index:05d}-of-00002.parquet")
    rejects = [{name: r.get(name) for name in REJECT_OUTPUT_SCHEMA.names} for r in records]
    rejects = pa.Table.from_pylist(
        [r for r in rejects if r["reasons"]], schema=REJECT_OUTPUT_SCHEMA
    )
    pq.write_table(rejects, run / "rejects" / "rejects-00000-of-00001.parquet")
    if mode != "text":
        images.mkdir(exist_ok=True)
        table = pa.table(
            {
                "uid": [r["uid"] for r in records],
                "status": [r["reasons"][0][9:] if failed(r) else "ok" for r in records],
                "image": [None if failed(r) else jpeg(r["colour"]) for r in records],
            }
        )
        half = table.num_rows // 2
        for index, part in enumerate((table.slice(0, half), table.slice(half))):
            path = images / f"images-{index:05d}-of-00002.parquet"
            pq.write_table(part, path, row_group_size=40)
    stats = stats_of(records, str(images) if mode != "text" else str(root / "pairs"), mode, nsfw)
    (run / "stats.json").write_text(json.dumps(stats, indent=2))
    return run


def write_ground_truth(path: Path, records: list[dict]) -> Path:
    labels = sorted(
        {label for r in records for label in r["labels"]}
        | {"noise_boilerplate_alt", "noise_broken_link"}
    )
    rows = [
        {"url": r["url"], "alt": r["alt"], "page_url": r["page_url"],
         **{label: label in r["labels"] for label in labels}}
        for r in records
    ]  # fmt: skip
    # The first pair again on another page, where it is clean: labels belong to occurrences.
    rows += [
        dict(rows[0], page_url="http://127.0.0.1:8000/other.html", **dict.fromkeys(labels, False))
    ]
    rows += [{"url": "http://127.0.0.3:8000/never-crawled.jpg", "alt": "x", "page_url": "p",
              **dict.fromkeys(labels, True)}]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def failed(record: dict) -> bool:
    return bool(record["reasons"]) and record["reasons"][0].startswith("download_")


def text_run_view(record: dict) -> dict:
    """A record as align-filter --rules text sees it: text rules only, nothing downloaded,
    the language detected only on what every other text rule kept."""
    pairs = [(r, m) for r, m in zip(record["reasons"], record["measured"], strict=True)
             if r in TEXT_REASONS]  # fmt: skip
    reasons = [reason for reason, _ in pairs]
    language = record["language"] if reasons in ([], ["language"]) else None
    return dict(record, reasons=reasons, measured=[m for _, m in pairs], kept=not reasons,
                language=language or ("en" if not reasons else None))  # fmt: skip


def write_chain(root: Path, records: list[dict]) -> Path:
    """The demo's curation: align-filter --rules text into text_filter/, align-download into
    images/ (its stats.json naming its input), align-filter --rules all into filter/."""
    upstream = [text_run_view(record) for record in records]
    write_run(root, upstream, mode="text", name="text_filter")
    survivors = []
    for record, seen in zip(records, upstream, strict=True):
        if seen["kept"]:
            pairs = [(r, m) for r, m in zip(record["reasons"], record["measured"], strict=True)
                     if r not in TEXT_REASONS]  # fmt: skip
            kept = not pairs
            survivors.append(dict(record, reasons=[r for r, _ in pairs], kept=kept,
                                  measured=[m for _, m in pairs],
                                  language="en" if kept else None))  # fmt: skip
    final = write_run(root, survivors, name="filter")
    ok = sum(not failed(record) for record in survivors)
    download = {"job": "align-download", "input": str(root / "text_filter"),
                "in": len(survivors), "kept": ok, "balanced": True, "counts": {},
                "rejected": {"http_404": 3, "too_many_redirects": 3}}  # fmt: skip
    (root / "images" / "stats.json").write_text(json.dumps(download))
    return final


def table_row(markdown: str, first_cell: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def section(markdown: str, heading: str) -> str:
    return markdown.split(heading, 1)[1].split("\n## ", 1)[0]


def fact(markdown: str, label: str) -> str:
    """The value of a '- **label**: value' line of the report's summary."""
    for line in markdown.splitlines():
        if line.startswith(f"- **{label}**: "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no fact {label!r}")

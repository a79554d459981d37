"""The two language detectors: accuracy on the synthetic web's labels, speed, and agreement on
real alt-texts.

    .venv/bin/python bench/language.py [--pairs 20000] [--real ../shared/realdata/warc]

1. The synthetic web's plan (tools/synth_plan.py, no pictures rendered) of --pairs pairs:
   every alt-text with a language label (English captions, and the German, French, Spanish
   and Italian ones it plants as noise). Per detector: the share of exact codes, and the
   English-only rule's verdicts against the labels (precision and recall of "not English").
2. Speed: texts per second in one process, batched as align-filter calls them.
3. Real alt-texts: align-crawl (--workers 1) over the real WARC/ARC/WAT files of --real
   (public projects' test fixtures; absent in a fresh clone, then this part says so), each
   distinct alt-text detected by both; a table of their agreement, and every alt-text where
   they differ on the English-only rule.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.langid import BACKENDS, batch_detector  # noqa: E402

SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wat", ".wat.gz")
ENGLISH = "en"


def synthetic_alts(pairs: int, seed: int) -> list[tuple[str, str]]:
    """(alt, language) of every planned <img> whose alt-text has a language label."""
    from tools.synth_plan import Planner
    from tools.synthweb import WebConfig

    planner = Planner(WebConfig(seed=seed, n_pairs=pairs, port=8000))
    planner.plan()
    return [(img.alt, img.language) for img in planner.imgs if img.language and img.alt]


def rule_scores(detected: list[str], labels: list[str]) -> tuple[float, float]:
    """Precision and recall of the English-only rule's rejections against the labels."""
    rejected = [code != ENGLISH for code in detected]
    foreign = [label != ENGLISH for label in labels]
    hits = sum(r and f for r, f in zip(rejected, foreign, strict=True))
    return hits / max(1, sum(rejected)), hits / max(1, sum(foreign))


def texts_per_second(backend: str, texts: list[str], seconds: float = 3.0) -> float:
    detect = batch_detector(backend, 0)
    detect(texts[:10])  # loaded
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = texts[done % len(texts) :][:4096]
        detect(chunk)
        done += len(chunk)
    return done / (time.perf_counter() - start)


def synthetic_part(pairs: int, seed: int) -> None:
    labelled = synthetic_alts(pairs, seed)
    alts, labels = [alt for alt, _ in labelled], [label for _, label in labelled]
    languages = Counter(labels)
    print(f"synthetic web, {pairs:,} pairs planned: {len(alts):,} labelled alt-texts "
          f"({', '.join(f'{k} {v:,}' for k, v in languages.most_common())})\n")  # fmt: skip
    print("| detector | exact code | English-only rule: precision | recall | texts/s (1 process) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for backend in BACKENDS:
        detected = batch_detector(backend, 0)(alts)
        exact = sum(d == label for d, label in zip(detected, labels, strict=True)) / len(labels)
        precision, recall = rule_scores(detected, labels)
        rate = texts_per_second(backend, alts)
        print(f"| {backend} | {exact:.3f} | {precision:.3f} | {recall:.3f} | {rate:,.0f} |")


def crawl_alts(folder: Path) -> list[str]:
    """Every alt-text align-crawl harvests from the crawl files under ``folder``."""
    from pipeline.crawl.cli import run
    from pipeline.shards import read_table

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    with tempfile.TemporaryDirectory() as tmp:
        links = Path(tmp) / "in"
        links.mkdir()
        for index, path in enumerate(files):  # linked, not copied; names made unique
            (links / f"{index:03d}-{path.name}").symlink_to(path)
        with contextlib.redirect_stdout(io.StringIO()):
            run(["--input", str(links), "--output", str(Path(tmp) / "out"), "--workers", "1"])
        table = read_table(str(Path(tmp) / "out" / "pairs-*.parquet"), ["alt"])
    print(f"\nreal alt-texts: align-crawl over {len(files)} files under {folder}: "
          f"{table.num_rows:,} pairs")  # fmt: skip
    return table.column("alt").to_pylist()


def agreement_part(folder: Path, show: int) -> None:
    pairs = crawl_alts(folder)
    alts = sorted(set(pairs))
    found = {backend: batch_detector(backend, 0)(alts) for backend in BACKENDS}
    fast, slow = found["fasttext"], found["langdetect"]
    rows = Counter()
    for f, s in zip(fast, slow, strict=True):
        if f == s:
            rows["same code: English" if f == ENGLISH else "same code: another language"] += 1
        elif (f == ENGLISH) == (s == ENGLISH):
            rows["different codes, both not English (same verdict)"] += 1
        else:
            rows[f"English only by {'fastText' if f == ENGLISH else 'langdetect'}"] += 1
    print(f"{len(alts):,} distinct alt-texts\n")
    print("| fastText vs langdetect | alt-texts | share |")
    print("| --- | ---: | ---: |")
    for name, count in sorted(rows.items(), key=lambda item: -item[1]):
        print(f"| {name} | {count:,} | {count / len(alts):.1%} |")
    same = sum(count for name, count in rows.items() if "English only" not in name)
    print(f"| **English-only verdict agrees** | {same:,} | {same / len(alts):.1%} |")
    differ = [(a, f, s) for a, f, s in zip(alts, fast, slow, strict=True)
              if (f == ENGLISH) != (s == ENGLISH)]  # fmt: skip
    print(f"\nwhere the verdicts differ ({len(differ)}; first {min(show, len(differ))}):\n")
    print("| alt-text | fastText | langdetect |")
    print("| --- | --- | --- |")
    for alt, f, s in differ[:show]:
        shown = " ".join(alt.split())[:70].replace("|", "\\|")
        print(f"| {shown} | {f} | {s} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared" / "realdata" / "warc")
    parser.add_argument("--show", type=int, default=40, help="differing alt-texts to print")
    args = parser.parse_args()
    synthetic_part(args.pairs, args.seed)
    if args.real.is_dir():
        agreement_part(args.real, args.show)
    else:
        print(f"\nreal alt-texts: {args.real} is absent; the agreement part is skipped")


if __name__ == "__main__":
    main()

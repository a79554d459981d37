"""Benchmark: align-download vs img2dataset on the same real-photo JPEGs from a local server.

    .venv/bin/python bench/download.py [--images 3000] [--workers 2] [--threads 64]

Both fetch the same URLs (spread over 4 loopback hosts), resize the shorter side to 346
("keep_ratio", no upscaling) and encode JPEG quality 95; img2dataset with --workers processes
and its multiprocessing distributor. align-download runs three ways, labelled: as a user types
it (default flags: a worker process per usable core, politeness on: 8 request starts/s and 4
connections per host and worker), tuned with politeness relaxed (img2dataset has none: the
comparison of the engines), and that tuned run with Beam's explicit --direct_running_mode
multi_processing --direct_num_workers 2. Also printed: the single-process floor of
decode+resize+encode for ours (Pillow draft mode, then OpenCV bicubic), for draft mode at
twice the target then OpenCV bilinear (the quality of img2dataset's output), and for
img2dataset's resizer (full decode, OpenCV INTER_AREA), each with its PSNR against a
full-resolution Lanczos reference, so speed is also compared at equal quality.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.download.imaging import process_image, target_size  # noqa: E402
from pipeline.records import PAIR_SCHEMA, make_uid  # noqa: E402
from tools.synth_images import photo_jpegs  # noqa: E402
from tools.webserver import DEFAULT_HOSTS, WebServer  # noqa: E402

SIZE, QUALITY = 346, 95
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}


def _photos(job: tuple[str, int, int]) -> int:
    folder, seed, count = job
    for name, data in photo_jpegs(count, seed=seed):
        (Path(folder) / f"s{seed}-{name}").write_bytes(data)
    return count


def photo_corpus(folder: Path, count: int, processes: int) -> list[Path]:
    """``count`` photo JPEGs (800-1600 px), generated once and cached in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.jpg"))
    if len(files) < count:
        for stale in files:
            stale.unlink()
        per = -(-count // processes)
        with Pool(processes) as pool:
            pool.map(_photos, [(str(folder), seed, per) for seed in range(processes)])
        files = sorted(folder.glob("*.jpg"))
    return files[:count]


def write_inputs(urls: list[str], work: Path, shards: int) -> tuple[Path, Path]:
    """The same URLs as img2dataset's parquet and as align-download's pair shards."""
    (work / "pairs").mkdir(parents=True)
    captions = [f"photo number {i}" for i in range(len(urls))]
    pq.write_table(pa.table({"url": urls, "caption": captions}), work / "urls.parquet")
    rows = sorted(
        (
            {"uid": make_uid(u, c), "url": u, "alt": c, "page_url": "", "source": "bench"}
            for u, c in zip(urls, captions, strict=True)
        ),
        key=lambda row: row["uid"],
    )
    for index in range(shards):
        part = rows[index::shards]
        table = pa.table({n: [r[n] for r in part] for n in PAIR_SCHEMA.names}, schema=PAIR_SCHEMA)
        pq.write_table(table, work / "pairs" / f"pairs-{index:05d}-of-{shards:05d}.parquet")
    return work / "urls.parquet", work / "pairs"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the command and every process it waited for."""
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, env=ENV, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(
            f"failed: {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return elapsed, cpu


def run_img2dataset(url_file: Path, output: Path, workers: int, threads: int, n: int) -> tuple:
    code = (
        "import img2dataset; img2dataset.download("
        f"url_list={str(url_file)!r}, input_format='parquet', url_col='url', "
        f"caption_col='caption', output_folder={str(output)!r}, output_format='parquet', "
        f"processes_count={workers}, thread_count={threads}, image_size={SIZE}, "
        f"resize_mode='keep_ratio', resize_only_if_bigger=True, encode_quality={QUALITY}, "
        f"number_sample_per_shard={max(1, n // (4 * workers))}, distributor='multiprocessing', "
        "timeout=20, retries=0)"
    )
    seconds, cpu = timed([sys.executable, "-c", code])
    stats = glob.glob(f"{output}/*_stats.json")
    ok = sum(json.loads(Path(path).read_text())["successes"] for path in stats)
    return seconds, cpu, ok


RELAXED = ["--per-host-rate", "0", "--per-host-concurrency", "64"]  # no politeness caps
BEAM_FLAGS = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]


def run_align(pairs: Path, output: Path, *flags: str) -> tuple:
    """align-download with ``flags`` after the inputs, the size and the quality."""
    command = [sys.executable, "-m", "pipeline.download", "--input", str(pairs)]
    command += ["--output", str(output), "--allow-private-networks"]
    command += ["--image-size", str(SIZE), "--jpeg-quality", str(QUALITY), *flags]
    seconds, cpu = timed(command)
    stats = json.loads((output / "stats.json").read_text())
    return seconds, cpu, stats["kept"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


def reference(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return np.asarray(image.resize(target_size(*image.size, SIZE, False), Image.LANCZOS))


def floors(files: list[Path], sample: int) -> dict:
    """Single-process decode+resize+encode: images per CPU-second, and PSNR, per resizer."""
    import cv2  # img2dataset's resizer: cv2.imdecode, INTER_AREA, cv2.imencode

    blobs = [path.read_bytes() for path in files[:sample]]
    refs = [reference(blob) for blob in blobs[:50]]

    def ours(blob: bytes) -> bytes:
        return process_image(blob, SIZE, False, QUALITY).image

    def draft_twice(blob: bytes) -> bytes:
        image = Image.open(io.BytesIO(blob))
        size = target_size(*image.size, SIZE, False)
        image.draft("RGB", (2 * size[0], 2 * size[1]))
        resized = cv2.resize(np.asarray(image.convert("RGB")), size, interpolation=cv2.INTER_LINEAR)
        output = io.BytesIO()
        Image.fromarray(resized).save(output, "JPEG", quality=QUALITY)
        return output.getvalue()

    def opencv(blob: bytes) -> bytes:
        image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
        height, width = image.shape[:2]
        size = target_size(width, height, SIZE, False)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1].tobytes()

    cv2.setNumThreads(1)
    results = {}
    resizers = (
        ("pillow_draft + cv bicubic (ours)", ours),
        ("pillow_draft_2x + cv bilinear", draft_twice),
        ("opencv_area (img2dataset)", opencv),
    )
    for name, function in resizers:
        start = time.process_time()
        outputs = [function(blob) for blob in blobs]
        rate = len(blobs) / (time.process_time() - start)
        decoded = [np.asarray(Image.open(io.BytesIO(o)).convert("RGB")) for o in outputs]
        quality = np.mean([psnr(d, r) for d, r in zip(decoded, refs, strict=False)])
        results[name] = (rate, quality)
    return results


def print_tables(args, n: int, megapixels: float, runs: list, floor: dict) -> None:
    print(
        f"\n{n} photo JPEGs, {megapixels:.2f} Mpx on average, target {SIZE} px, q{QUALITY}, "
        f"img2dataset {args.workers} processes, {args.threads} threads each, "
        f"{len(os.sched_getaffinity(0))} usable cores, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    header = ("run", "ok", "wall s", "images/s", "ratio", "CPU ms/image", "ratio")
    print("| {:<40} | {:>5} | {:>7} | {:>8} | {:>5} | {:>12} | {:>5} |".format(*header))
    print("|" + "|".join("-" * (w + 2) for w in (40, 5, 7, 8, 5, 12, 5)) + "|")
    peer_rate, peer_cpu = n / runs[0][1], runs[0][2] / n
    for label, seconds, cpu, ok in runs:
        rate, per_image = n / seconds, cpu / n
        print(
            f"| {label:<40} | {ok:>5} | {seconds:>7.1f} | {rate:>8.1f} | {rate / peer_rate:>5.2f} "
            f"| {per_image * 1000:>12.2f} | {peer_cpu / per_image:>5.2f} |"
        )
    print(f"\nsingle-process floor (decode+resize+encode, {args.floor_sample} images):\n")
    print(f"| {'resizer':<32} | {'images/CPU-s':>12} | {'PSNR vs Lanczos':>15} |")
    print(f"|{'-' * 34}|{'-' * 14}|{'-' * 17}|")
    for name, (rate, quality) in floor.items():
        print(f"| {name:<32} | {rate:>12.1f} | {quality:>12.1f} dB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument(
        "--cache", default=os.path.join(tempfile.gettempdir(), "align-bench-photos")
    )
    parser.add_argument("--floor-sample", type=int, default=300)
    args = parser.parse_args()

    files = photo_corpus(Path(args.cache), args.images, args.workers)
    megapixels = np.mean([np.prod(Image.open(f).size) for f in files[:200]]) / 1e6
    hosts = DEFAULT_HOSTS
    with (
        tempfile.TemporaryDirectory() as work,
        WebServer(Path(args.cache), hosts=hosts, faults=False) as server,
    ):
        work = Path(work)
        urls = [server.url(i % len(hosts), f.name) for i, f in enumerate(files)]
        url_file, pairs = write_inputs(urls, work, shards=4 * args.workers)
        peer = run_img2dataset(url_file, work / "i2d", args.workers, args.threads, len(urls))
        tuned = [*RELAXED, "--threads", str(args.threads)]
        runs = [
            ("img2dataset (multiprocessing)", *peer),
            ("align-download, default flags (polite)", *run_align(pairs, work / "a0")),
            ("  tuned: no politeness (as img2dataset)", *run_align(pairs, work / "a1", *tuned)),
            ("  tuned, Beam's 2 processes", *run_align(pairs, work / "a2", *tuned, *BEAM_FLAGS)),
        ]  # fmt: skip
    print_tables(args, len(files), megapixels, runs, floors(files, args.floor_sample))


if __name__ == "__main__":
    main()

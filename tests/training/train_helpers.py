"""Training shards for the trainer's tests, cut from the synthetic web's served images."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from PIL import Image

from tests.training.synthetic import write_shards


def synthetic_web_pairs(web) -> list[dict]:
    """Every clean (alt, image) pair of the web: what align-filter would keep, read off disk."""
    pairs, seen = [], set()
    for row in pq.read_table(web.ground_truth).to_pylist():
        if not (row["emitted_by_crawl"] and row["expected_status"] == "ok"):
            continue
        if row["fault"] != "none" or not row["alt"]:
            continue
        url = urlsplit(row["url"])
        path = Path(web.root) / "site" / url.hostname / url.path.lstrip("/")
        uid = hashlib.sha256(f"{row['url']}\n{row['alt']}".encode()).hexdigest()[:32]
        if uid in seen or not path.is_file():
            continue
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        seen.add(uid)
        pairs.append(
            {
                "uid": uid,
                "url": row["url"],
                "text": row["alt"],
                "image": data,
                "width": width,
                "height": height,
            }
        )
    return sorted(pairs, key=lambda pair: pair["uid"])


def synthetic_web_shards(web, directory: Path, num_shards: int = 2) -> str:
    """Writes DIR/shards/align-*.tfrecord (+ Parquet sidecars) in align-filter's layout."""
    return write_shards(directory, synthetic_web_pairs(web), num_shards)

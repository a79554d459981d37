"""Small hand-made inputs for the align-filter tests: pairs and downloaded-image records."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from filters.phash import phash
from pipeline.records import DOWNLOAD_SCHEMA, PAIR_SCHEMA, make_uid
from pipeline.shards import rows_to_table


def pair(url: str, alt: str, page: str = "http://127.0.0.1/page.html") -> dict:
    return {"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": page, "source": page}


def write_pairs(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows_to_table(rows, PAIR_SCHEMA), folder / "pairs-00000-of-00001.parquet")
    return folder


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def noise_image(seed: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def downloaded(
    url: str,
    alt: str,
    image: Image.Image | None = None,
    original: tuple[int, int] = (400, 300),
    status: str = "ok",
    content: bytes | None = None,
) -> dict:
    """A record as align-download writes it; ``content`` stands for the bytes as served
    (its sha256 is the image identity), ``original`` for the size as served."""
    row = pair(url, alt)
    row.update(status=status)
    if status != "ok":
        row["error"] = f"{status} for {url}"
        return row
    encoded = jpeg_bytes(image)
    served = content if content is not None else encoded
    row.update(
        image=encoded,
        width=image.width,
        height=image.height,
        original_width=original[0],
        original_height=original[1],
        sha256=hashlib.sha256(served).hexdigest(),
        phash=phash(image),
        mime="image/jpeg",
    )
    return row


def write_images(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows_to_table(rows, DOWNLOAD_SCHEMA), folder / "images-00000-of-00001.parquet")
    return folder


def names(rules) -> list[str]:
    """The rule names stats.json lists for these rules (filters.table.rules_for's)."""
    return [rule.name for rule in rules]

"""What becomes of a downloaded image: the defaults and flags of its size and encoding.

Declared apart from imaging.py (OpenCV, Pillow) so align-download's command line reads them
without importing the image stack (pipeline/fetch/settings.py does the same for the fetcher).
"""

from __future__ import annotations

import argparse

from filters.cli import UsageError

DEFAULT_IMAGE_SIZE = 346  # ALIGN: shorter side 346, then a 289 crop in training
DEFAULT_JPEG_QUALITY = 95
DEFAULT_MAX_PIXELS = 64_000_000  # a decompression bomb beyond this never gets decoded


def add_image_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="shorter side")
    parser.add_argument("--upscale", action="store_true", help="also enlarge smaller images")
    parser.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY, help="1-100")
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="decompression-bomb cap"
    )


def check_image_flags(args: argparse.Namespace) -> None:
    for name in ("image_size", "jpeg_quality", "max_pixels"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    if not 1 <= args.jpeg_quality <= 100:
        raise UsageError("--jpeg-quality must be between 1 and 100")

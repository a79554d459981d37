"""Downloaded bytes to a training image: sniff, decode safely, orient, to RGB, resize, encode.

Content type is judged from the bytes (a server's Content-Type is often wrong). Only raster
formats we expect on the web are opened (never EPS, which would run Ghostscript). JPEGs are
decoded at a reduced DCT scale ("draft") when the target is much smaller, which is most of
the speed; the rest of the way is OpenCV's SIMD resize (img2dataset's resizer), about 8x
faster than Pillow's at the same filter. Every input ends as ``ok`` or a named failure;
nothing here raises.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from filters.phash import phash
from pipeline.download.settings import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
)

Image.init()
cv2.setNumThreads(1)  # one image per thread: parallelism comes from the fetch threads
# Raster formats of the web that this Pillow build can open (MPO comes through JPEG's opener).
OPENABLE = tuple(
    f for f in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF") if f in Image.OPEN
)
WHITE = (255, 255, 255)

# (magic prefix, offset, mime); checked in order.
_MAGIC = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
)


def sniff_mime(data: bytes) -> str | None:
    """The image type the bytes say they are, or None (HTML, SVG, text, empty...)."""
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return None


def describe_non_image(data: bytes) -> str:
    """A short reason for bytes that are no raster image: what they look like instead."""
    if not data:
        return "empty body"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "SVG (vector) image"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "HTML document"
    if data[4:8] == b"ftyp":
        return f"unsupported container {data[8:12]!r}"
    return f"unknown bytes {data[:8]!r}"


def _no_address(error: Exception) -> str:
    """An error's text without object addresses ("<_io.BytesIO object at 0x7f...>")."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(error))


@dataclass
class ProcessedImage:
    status: str  # "ok", "not_an_image", "decode_error", "too_many_pixels"
    error: str | None = None
    image: bytes | None = None  # JPEG of the resized image
    width: int | None = None
    height: int | None = None
    original_width: int | None = None  # as displayed (EXIF orientation applied)
    original_height: int | None = None
    sha256: str | None = None  # of the bytes as served
    phash: str | None = None
    mime: str | None = None


def target_size(width: int, height: int, image_size: int, upscale: bool) -> tuple[int, int]:
    """Shorter side to image_size, ratio kept; unchanged when smaller and not upscaling."""
    short = min(width, height)
    if short == image_size or (short < image_size and not upscale):
        return width, height
    scale = image_size / short
    if width <= height:
        return image_size, max(1, round(height * scale))
    return max(1, round(width * scale)), image_size


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB: alpha composited on white, 16-bit scaled, CMYK/palette converted."""
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _grey16_to_l(image)
    elif image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _grey16_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if values.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8))


def process_image(
    data: bytes,
    image_size: int = DEFAULT_IMAGE_SIZE,
    upscale: bool = False,
    quality: int = DEFAULT_JPEG_QUALITY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ProcessedImage:
    """Decodes and normalises one downloaded image; never raises for bad bytes."""
    digest = hashlib.sha256(data).hexdigest()
    mime = sniff_mime(data)
    if mime is None:
        return ProcessedImage("not_an_image", describe_non_image(data), sha256=digest)
    try:
        result = _decode_and_resize(data, image_size, upscale, quality, max_pixels)
    except Image.DecompressionBombError as error:
        result = ProcessedImage("too_many_pixels", str(error))
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError) as error:
        result = ProcessedImage("decode_error", f"{type(error).__name__}: {_no_address(error)}")
    except Exception as error:  # noqa: BLE001 (a hostile file must not kill the worker)
        result = ProcessedImage("decode_error", f"{type(error).__name__}: {_no_address(error)}")
    result.sha256, result.mime = digest, mime
    return result


def _decode_and_resize(
    data: bytes, image_size: int, upscale: bool, quality: int, max_pixels: int
) -> ProcessedImage:
    with Image.open(io.BytesIO(data), formats=OPENABLE) as image:
        width, height = image.size  # as stored; EXIF may ask for a rotation
        if width * height > max_pixels or width < 1 or height < 1:
            return ProcessedImage("too_many_pixels", f"{width}x{height} pixels > {max_pixels}")
        new_size = target_size(width, height, image_size, upscale)
        if image.format in ("JPEG", "MPO") and new_size != (width, height):
            image.draft("RGB", new_size)  # libjpeg decodes at 1/2, 1/4 or 1/8 scale, >= target
        image.load()  # the first frame of an animation; raises on a broken stream
        orientation = _orientation(image)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            image = ImageOps.exif_transpose(image)
        if orientation in (5, 6, 7, 8):
            width, height, new_size = height, width, (new_size[1], new_size[0])
        image = to_rgb(image)
        if image.size != new_size:
            image = resize(image, new_size)
        output = io.BytesIO()
        image.save(output, "JPEG", quality=quality)
        return ProcessedImage(
            "ok",
            image=output.getvalue(),
            width=new_size[0],
            height=new_size[1],
            original_width=width,
            original_height=height,
            phash=phash(image),
        )


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """An RGB image resized: area averaging when shrinking 2x or more, else bicubic.

    Area averaging (img2dataset's choice) is the antialiasing filter for large reductions;
    after a JPEG draft the remaining factor is below 2, where bicubic keeps more detail.
    """
    factor = min(image.size[0] / size[0], image.size[1] / size[1])
    interpolation = cv2.INTER_AREA if factor >= 2 else cv2.INTER_CUBIC
    return Image.fromarray(cv2.resize(np.asarray(image), size, interpolation=interpolation))


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1-8) of a loaded image; 1 when the EXIF block cannot be read."""
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 (broken EXIF: show the image as stored)
        return 1

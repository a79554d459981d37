"""A corpus of hostile and awkward images, generated in code: each must end ``ok`` or as a
named failure, never crash a worker (truncated/corrupt files, bombs, odd modes, non-images).

``align-download`` tests serve these from a local server; ``python -m tools.hostile DIR``
writes them out for a person to try other tools on.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 400  # big enough that resizing to 346 really happens


@dataclass(frozen=True)
class Hostile:
    name: str  # also the file name, with its extension
    data: bytes
    expected: str  # the status process_image / align-download must give
    note: str


def _gradient(width: int = SIDE, height: int = SIDE) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), 128 + 0 * x], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header (1-bit grey) claiming width x height, with a tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = compressor.compress(row * 64) + compressor.flush()  # the rest would be zeros too
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _gif_claiming(width: int, height: int) -> bytes:
    gif = bytearray(_save(Image.new("P", (4, 4)), "GIF"))
    gif[6:10] = struct.pack("<HH", width, height)  # logical screen
    start = gif.index(b"\x2c")  # image descriptor
    gif[start + 5 : start + 9] = struct.pack("<HH", width, height)
    return bytes(gif)


def _exif_rotated_jpeg() -> bytes:
    """A landscape 400x300 JPEG whose EXIF says 'rotate 90 clockwise' (orientation 6)."""
    image = _gradient(400, 300)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(image, "JPEG", quality=90, exif=exif.tobytes())


def _broken_exif_jpeg() -> bytes:
    jpeg = _save(_gradient(), "JPEG", quality=90)
    app1 = b"Exif\x00\x00" + b"MM\x00*\x00\x00\xff\xff" + b"\x00" * 8
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (SIDE, SIDE), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_with_transparency() -> bytes:
    image = Image.new("P", (SIDE, SIDE), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (100, 100, 300, 300))
    return _save(image, "PNG", transparency=0)  # index 0 (the border) is transparent


def _grey16() -> bytes:
    values = np.arange(SIDE * SIDE, dtype=np.uint64).reshape(SIDE, SIDE) * 65535 // (SIDE**2)
    return _save(Image.fromarray(values.astype(np.uint16)), "PNG")


def _rgb16_png() -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    width = height = SIDE
    pixels = np.zeros((height, width, 3), dtype=">u2")
    pixels[..., 0] = 65535
    pixels[..., 2] = np.linspace(0, 65535, width, dtype=np.uint16)[None, :]
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def _corrupt(data: bytes, start: int) -> bytes:
    """Overwrites the middle of the data with garbage, leaving the header intact."""
    garbage = bytes((i * 37 + 11) % 256 for i in range(len(data) - start))
    return data[:start] + garbage


def corpus() -> list[Hostile]:
    """Every hostile image, with the status it must end as."""
    jpeg = _save(_gradient(), "JPEG", quality=90)
    png = _save(_gradient(), "PNG")
    gif = _animated_gif()
    webp = _save(_gradient(), "WEBP", quality=80)
    rgba = _gradient().convert("RGBA")
    rgba.putalpha(0)
    return [
        Hostile("plain.jpg", jpeg, "ok", "a normal JPEG, the control"),
        Hostile("truncated.jpg", jpeg[: len(jpeg) // 2], "decode_error", "cut in half"),
        Hostile("corrupt.jpg", _corrupt(jpeg, 200), "decode_error", "garbage after headers"),
        Hostile("header-only.jpg", jpeg[:20], "decode_error", "SOI and APP0 only"),
        Hostile("truncated.png", png[: len(png) // 2], "decode_error", "cut in half"),
        Hostile("corrupt.png", _corrupt(png, 41), "decode_error", "garbage zlib stream"),
        Hostile("truncated.gif", gif[: len(gif) // 3], "decode_error", "cut short"),
        Hostile("corrupt.webp", webp[:30] + b"\x00" * 200, "decode_error", "zeroed body"),
        Hostile("truncated.webp", webp[: len(webp) // 2], "decode_error", "cut in half"),
        Hostile("bomb.png", _png_bomb(50_000, 50_000), "too_many_pixels", "2.5 Gpx claimed"),
        Hostile("bomb.gif", _gif_claiming(65_535, 65_535), "too_many_pixels", "4 Gpx claimed"),
        Hostile("cmyk.jpg", _save(_gradient().convert("CMYK"), "JPEG"), "ok", "CMYK JPEG"),
        Hostile("grey16.png", _grey16(), "ok", "16-bit greyscale"),
        Hostile("rgb16.png", _rgb16_png(), "ok", "16-bit RGB, red with a blue ramp"),
        Hostile("palette-transparent.png", _palette_with_transparency(), "ok", "P + tRNS"),
        Hostile("rgba-transparent.png", _save(rgba, "PNG"), "ok", "fully transparent RGBA"),
        Hostile("grey-alpha.png", _save(_gradient().convert("LA"), "PNG"), "ok", "LA mode"),
        Hostile("animated.gif", gif, "ok", "red frame then blue frame"),
        Hostile("exif-rotated.jpg", _exif_rotated_jpeg(), "ok", "orientation 6"),
        Hostile("broken-exif.jpg", _broken_exif_jpeg(), "ok", "unparseable EXIF block"),
        Hostile("plain.webp", webp, "ok", "WebP"),
        Hostile("plain.bmp", _save(_gradient(), "BMP"), "ok", "BMP"),
        Hostile("tiny.png", _save(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), "ok", "1x1"),
        Hostile("empty.jpg", b"", "not_an_image", "zero-byte body"),
        Hostile("page.jpg", b"<!DOCTYPE html><html><body>404</body></html>", "not_an_image", ""),
        Hostile(
            "vector.svg",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10"></svg>',
            "not_an_image",
            "SVG is not decoded",
        ),
        Hostile(
            "script.eps",
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
            "not_an_image",
            "never run Ghostscript",
        ),
        Hostile("random.bin", bytes(range(256)) * 8, "not_an_image", "no known magic"),
    ]


def write(directory: str | Path) -> list[Path]:
    """Writes the corpus as files (for a person to inspect); returns their paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in corpus():
        path = folder / item.name
        path.write_bytes(item.data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(sys.argv[1] if len(sys.argv) > 1 else "hostile"):
        print(written)

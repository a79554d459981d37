"""Pictures of the synthetic web, rendered with Pillow from a spec dict: one pure function per kind.

A spec is a small picklable dict with its own seed, so rendering is deterministic whatever
process renders it and in whatever order: the generator can farm specs out to a pool.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from commandline.extras import MissingExtra
from filters.phash import hamming, phash

OBJECT_RGB = {
    "red": (215, 35, 35),
    "green": (40, 165, 55),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 30),
    "purple": (135, 50, 175),
}
SIZE_FRACTION = {"small": (0.14, 0.2), "medium": (0.24, 0.3), "large": (0.34, 0.42)}
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "camera",
    "coins",
    "immunohistochemistry",
)
LARGE_PHOTOS = PHOTOS + ("retina", "motorcycle")
PHOTOS_NEEDED_BY = "the synthetic web's photographs (scikit-image's sample images)"
EXTENSIONS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}


def render(spec: dict) -> bytes:
    """The encoded bytes of one picture spec."""
    return _RENDERERS[spec["kind"]](spec)


def render_to_files(job: tuple[dict, list[str]]) -> tuple[int, int] | None:
    """Renders one spec to every path it is stored at; returns its size if it decodes.
    (A pool worker's task: this module imports only numpy and Pillow, so workers start fast.)"""
    spec, paths = job
    data = render(spec)
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    if spec["kind"] in ("undecodable", "html"):
        return None
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def rng_of(spec: dict) -> np.random.Generator:
    return np.random.default_rng(spec["seed"])


# --- backgrounds and objects ---------------------------------------------------------------


def _neutral(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation tone (light or dark) that never looks like an object colour."""
    value = rng.uniform(165, 240) if rng.random() < 0.75 else rng.uniform(35, 85)
    tint = rng.uniform(-12, 12, size=3)
    return np.clip(value + tint, 0, 255)


def _tone(rgb: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(rgb, 0, 255))


def background(rng: np.random.Generator, kind: str, width: int, height: int) -> Image.Image:
    """A textured backdrop of two neutral tones. Patterns are drawn as a Pillow mask and
    composited in C: numpy passes over every pixel cost more than the rest of a picture."""
    a, b = _neutral(rng), _neutral(rng)
    if abs(float(a.mean() - b.mean())) < 25:
        b = np.clip(a + (40 if a.mean() < 128 else -40), 0, 255)
    if kind == "plain":
        return Image.new("RGB", (width, height), _tone(a))
    if kind == "grainy":
        tile = Image.fromarray(rng.integers(0, 256, size=(64, 64), dtype=np.uint8), "L")
        mask = Image.new("L", (width, height))
        for x in range(0, width, 64):
            for y in range(0, height, 64):
                mask.paste(tile, (x, y))
        a, b = a + 22, a - 22
    elif kind == "gradient":
        angle = float(rng.uniform(0, 2 * math.pi))
        xx = np.arange(width, dtype=np.float32)[None, :] * math.cos(angle)
        yy = np.arange(height, dtype=np.float32)[:, None] * math.sin(angle)
        coord = xx + yy
        low, high = float(coord.min()), float(coord.max())
        mask = Image.fromarray(((coord - low) * (255 / max(1e-6, high - low))).astype(np.uint8))
    else:
        mask = _pattern_mask(rng, kind, width, height)
    return Image.composite(
        Image.new("RGB", (width, height), _tone(b)),
        Image.new("RGB", (width, height), _tone(a)),
        mask,
    )


def _pattern_mask(rng: np.random.Generator, kind: str, width: int, height: int) -> Image.Image:
    if kind == "striped":
        period = int(rng.integers(12, 40))
        angle = float(rng.choice([0.0, 90.0, 45.0, -45.0]))
        side = int(math.hypot(width, height)) + 2
        mask = Image.new("L", (side, side))
        draw = ImageDraw.Draw(mask)
        for y in range(0, side, period):
            draw.rectangle((0, y, side, y + period // 2 - 1), fill=255)
        mask = mask.rotate(angle, Image.Resampling.NEAREST)
        x0, y0 = (side - width) // 2, (side - height) // 2
        return mask.crop((x0, y0, x0 + width, y0 + height))
    mask = Image.new("L", (width, height))
    draw = ImageDraw.Draw(mask)
    if kind == "checkered":
        cell = int(rng.integers(16, 44))
        for i, x in enumerate(range(0, width, cell)):
            for j, y in enumerate(range(0, height, cell)):
                if (i + j) % 2 == 0:
                    draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=255)
    elif kind == "dotted":
        step = int(rng.integers(14, 30))
        r = step * float(rng.uniform(0.15, 0.3))
        for x in range(step // 2, width + step, step):
            for y in range(step // 2, height + step, step):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    else:
        raise ValueError(f"unknown background {kind!r}")
    return mask


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """The outline of a shape of radius 1 around the origin."""
    if shape in ("square", "triangle"):
        corners = 4 if shape == "square" else 3
        start = math.pi / 4 if shape == "square" else -math.pi / 2
        return [
            (
                math.cos(start + k * 2 * math.pi / corners),
                math.sin(start + k * 2 * math.pi / corners),
            )
            for k in range(corners)
        ]
    if shape == "star":
        points = []
        for k in range(10):
            radius = 1.0 if k % 2 == 0 else 0.42
            theta = -math.pi / 2 + k * math.pi / 5
            points.append((radius * math.cos(theta), radius * math.sin(theta)))
        return points
    if shape == "cross":
        w = 0.3
        return [
            (-w, -0.9),
            (w, -0.9),
            (w, -w),
            (0.9, -w),
            (0.9, w),
            (w, w),
            (w, 0.9),
            (-w, 0.9),
            (-w, w),
            (-0.9, w),
            (-0.9, -w),
            (-w, -w),
        ]
    raise ValueError(f"unknown shape {shape!r}")


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in _unit_polygon(shape)]


def draw_object(draw: ImageDraw.ImageDraw, rng: np.random.Generator, spec: dict, cx, cy, r):
    rgb = np.clip(np.array(OBJECT_RGB[spec["colour"]]) + rng.integers(-18, 19, size=3), 0, 255)
    fill = tuple(int(v) for v in rgb)
    outline = tuple(int(v * 0.55) for v in fill) if rng.random() < 0.5 else None
    width = max(1, int(r * 0.06))
    if spec["shape"] == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)
        return
    angle = rng.uniform(-0.35, 0.35)
    points = _polygon(spec["shape"], cx, cy, r, angle)
    draw.polygon(points, fill=fill, outline=outline, width=width if outline else 0)


def place(rng: np.random.Generator, count: int, radius: float, width: int, height: int):
    """Centres for ``count`` objects of ``radius`` that stay inside and mostly do not overlap."""
    centres: list[tuple[float, float]] = []
    for _ in range(count):
        best = None
        for _attempt in range(40):
            cx = rng.uniform(radius + 2, max(radius + 3, width - radius - 2))
            cy = rng.uniform(radius + 2, max(radius + 3, height - radius - 2))
            gap = min((math.dist((cx, cy), c) for c in centres), default=1e9)
            if best is None or gap > best[0]:
                best = (gap, cx, cy)
            if gap > 2.05 * radius:
                break
        centres.append((best[1], best[2]))
    return centres


def shape_image(spec: dict) -> Image.Image:
    """Objects of one class (colour x shape), ``count`` of them, on a textured background."""
    rng = rng_of(spec)
    width, height = spec["width"], spec["height"]
    canvas = background(rng, spec["background"], width, height)
    draw = ImageDraw.Draw(canvas)
    low, high = SIZE_FRACTION[spec["size"]]
    radius = min(width, height) * rng.uniform(low, high) / 2 * 2
    radius /= {1: 1.0, 2: 1.25, 3: 1.45}[spec["count"]]
    if spec["kind"] == "banner":  # a row of objects along the long side
        radius = min(radius, height * 0.38)
    for cx, cy in place(rng, spec["count"], radius, width, height):
        draw_object(draw, rng, spec, cx, cy, radius)
    return lighting(rng, canvas)


def lighting(rng: np.random.Generator, image: Image.Image) -> Image.Image:
    """Uneven light: a smooth random field (upsampled from 4x4) darkens parts of the scene.

    Besides realism, it gives every picture its own low-frequency layout, so perceptual
    hashes of unrelated renders stay far apart and eval-set dedup has clean negatives.
    """
    field = rng.uniform(150, 255, size=(4, 4)).astype(np.uint8)
    shade = Image.fromarray(field, "L").resize(image.size, Image.Resampling.BICUBIC)
    return ImageChops.multiply(image, Image.merge("RGB", (shade, shade, shade)))


def encode(
    image: Image.Image, fmt: str, rng: np.random.Generator, quality: int = 90, animate: bool = True
) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpg":
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    elif fmt == "png":
        if rng.random() < 0.3:  # palette with a transparent index, as many web PNGs are
            paletted = image.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE)
            paletted.save(buffer, "PNG", transparency=0)
        else:
            image.save(buffer, "PNG", compress_level=1)
    elif fmt == "webp":
        image.save(buffer, "WEBP", quality=85, method=0)
    elif fmt == "gif":
        first = image.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE)
        if rng.random() < 0.5 and animate:  # animated: a second, shifted frame
            second = Image.fromarray(np.roll(np.asarray(image.convert("RGB")), 7, axis=1))
            second = second.quantize(colors=64, method=Image.Quantize.FASTOCTREE)
            first.save(buffer, "GIF", save_all=True, append_images=[second], duration=200, loop=0)
        else:
            first.save(buffer, "GIF")
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return buffer.getvalue()


def _render_shape(spec: dict) -> bytes:
    rng = np.random.default_rng([spec["seed"], 1])
    return encode(shape_image(spec), spec["format"], rng, spec.get("quality", 90))


# --- photographs ------------------------------------------------------------------------------


PHOTO_FILES = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "camera": "camera.png",
    "coins": "coins.png",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
    "motorcycle": "motorcycle_left.png",
}


@functools.cache
def photo_array(name: str) -> np.ndarray:
    """An RGB uint8 array of a photograph shipped inside scikit-image's wheel (no download;
    read with Pillow, since importing skimage.io costs more than the whole small web)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("synthweb", "skimage", PHOTOS_NEEDED_BY)
    folder = Path(spec.submodule_search_locations[0]) / "data"
    with Image.open(folder / PHOTO_FILES[name]) as image:
        return np.asarray(image.convert("RGB"))


def photo_image(spec: dict) -> Image.Image:
    """A random crop of a photograph, rescaled to the spec's size, with a slight colour jitter."""
    rng = rng_of(spec)
    array = photo_array(spec["photo"])
    h, w = array.shape[:2]
    target_aspect = spec["width"] / spec["height"]
    area = rng.uniform(0.5, 1.0) * h * w
    crop_w = int(min(w, math.sqrt(area * target_aspect)))
    crop_h = int(min(h, crop_w / target_aspect))
    crop_w = int(min(crop_w, crop_h * target_aspect))
    x0 = int(rng.integers(0, w - crop_w + 1))
    y0 = int(rng.integers(0, h - crop_h + 1))
    gain = rng.uniform(0.88, 1.12, size=3)
    crop = np.clip(array[y0 : y0 + crop_h, x0 : x0 + crop_w] * gain, 0, 255).astype(np.uint8)
    return Image.fromarray(crop).resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR)


def _render_photo(spec: dict) -> bytes:
    rng = np.random.default_rng([spec["seed"], 1])
    return encode(photo_image(spec), spec.get("format", "jpg"), rng, spec.get("quality", 90))


def photo_jpegs(
    n: int, min_side: int = 800, max_side: int = 1600, seed: int = 0
) -> Iterator[tuple[str, bytes]]:
    """``n`` real-photo JPEGs (crops, rescales, colour jitter of scikit-image photos), as
    (file name, bytes); the peer corpus of download benchmarks."""
    for index in range(n):
        rng = np.random.default_rng([seed, 7, index])
        short = int(rng.integers(min_side, max_side + 1))
        long = int(min(max_side, short * rng.uniform(1.0, 1.5)))
        width, height = (long, short) if rng.random() < 0.6 else (short, long)
        spec = {
            "kind": "photo",
            "seed": [seed, 8, index],
            "photo": LARGE_PHOTOS[index % len(LARGE_PHOTOS)],
            "width": width,
            "height": height,
            "format": "jpg",
            "quality": 90,
        }
        yield f"photo-{index:06d}.jpg", render(spec)


# --- logos, near-duplicates, broken files -------------------------------------------------


def _render_logo(spec: dict) -> bytes:
    """An emblem reused across a site (rings and a bar): the 'one image, many alt-texts' noise."""
    rng = rng_of(spec)
    size = spec["width"]
    image = Image.new("RGB", (size, spec["height"]), tuple(int(v) for v in _neutral(rng)))
    draw = ImageDraw.Draw(image)
    colours = [tuple(int(c) for c in rng.integers(0, 256, size=3)) for _ in range(3)]
    cx, cy = size / 2, spec["height"] / 2
    for k, colour in enumerate(colours):
        r = size * (0.42 - 0.12 * k)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    draw.rectangle((size * 0.2, cy - size * 0.05, size * 0.8, cy + size * 0.05), fill=colours[0])
    return encode(image, spec["format"], rng)


NEAR_DUPLICATE_MAX_DISTANCE = 6  # pHash bits: what "near-duplicate" means in this web


def near_duplicate(source_bytes: bytes, spec: dict) -> bytes:
    """A resized, slightly cropped, recompressed copy of an evaluation image, redrawn until
    its perceptual hash is within NEAR_DUPLICATE_MAX_DISTANCE of the source's (so a label
    means "a pHash dedup at that distance must catch it")."""
    rng = rng_of(spec)
    source = Image.open(io.BytesIO(source_bytes)).convert("RGB")
    target = phash(source)
    for _attempt in range(20):
        data = _transform(source, rng)
        if hamming(phash(Image.open(io.BytesIO(data))), target) <= NEAR_DUPLICATE_MAX_DISTANCE:
            break
    return data


def _transform(image: Image.Image, rng: np.random.Generator) -> bytes:
    w, h = image.size
    crop = [rng.uniform(0, 0.012) for _ in range(4)]
    box = (int(w * crop[0]), int(h * crop[1]), int(w * (1 - crop[2])), int(h * (1 - crop[3])))
    image = image.crop(box)
    scale = rng.uniform(0.85, 1.1)  # keeps the shorter side above 200 px
    image = image.resize(
        (max(8, int(image.width * scale)), max(8, int(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(65, 86)))
    return buffer.getvalue()


def _render_near_dup(spec: dict) -> bytes:
    return near_duplicate(render(spec["source"]), spec)


def _render_undecodable(spec: dict) -> bytes:
    """A real picture cut off after its header: sane dimensions and the right magic bytes,
    so it is judged an image of a plausible size, but decoding it fails."""
    rng = np.random.default_rng([*spec["seed"], 2])
    data = encode(shape_image(spec), spec["format"], rng, animate=False)
    header = {"jpg": 700, "png": 120, "gif": 900, "webp": 60}[spec["format"]]
    return data[: max(header, int(len(data) * rng.uniform(0.2, 0.45)))]


def _render_html(spec: dict) -> bytes:
    """An HTML error page served where an image was expected."""
    return (
        b"<!doctype html><html><head><title>Not found</title></head><body>"
        b"<h1>Sorry, this picture has moved</h1><p>Please try our home page.</p></body></html>"
    )


_RENDERERS = {
    "shape": _render_shape,
    "banner": _render_shape,
    "icon": _render_shape,
    "photo": _render_photo,
    "logo": _render_logo,
    "near_dup": _render_near_dup,
    "undecodable": _render_undecodable,
    "html": _render_html,
}

"""Eval dedup: banding finds every hash within d, and pHash separates near-dups from others."""

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data

from filters.eval_index import EvalIndex, band_widths, bands, best_match, eval_reason
from filters.phash import hamming, phash

PHOTOS = ["astronaut", "coffee", "chelsea", "camera", "rocket", "coins", "moon", "horse"]
THRESHOLD = 10  # the small config's: near-dups measured <= 10 here, unrelated photos >= 20


def _photo(name: str) -> Image.Image:
    array = getattr(data, name)()
    if array.dtype != np.uint8:
        array = (array * 255).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def _render(seed: int) -> Image.Image:
    """A synthetic render: random coloured shapes on a gradient."""
    rng = random.Random(seed)
    image = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(280), rng.randrange(200)
        box = (x, y, x + rng.randrange(20, 160), y + rng.randrange(20, 120))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return image


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _variants(image: Image.Image) -> dict[str, Image.Image]:
    width, height = image.size
    return {
        "resized": image.resize((width // 2, height // 2)),
        "recompressed": _jpeg(image, 30),
        "cropped": image.crop((width // 50, height // 50, width, height)),
        "cropped_resized_jpeg": _jpeg(
            image.crop((0, 0, width - width // 50, height - height // 50)).resize((346, 300)), 60
        ),
    }


@pytest.fixture(scope="module")
def originals() -> dict[str, Image.Image]:
    images = {name: _photo(name) for name in PHOTOS}
    images.update({f"render{seed}": _render(seed) for seed in range(4)})
    return images


@pytest.fixture(scope="module")
def index(originals) -> EvalIndex:
    return EvalIndex([("test", name, phash(im)) for name, im in originals.items()], THRESHOLD)


def test_d_plus_one_bands_cover_64_bits():
    assert band_widths(0) == [64]
    assert band_widths(8) == [8] + [7] * 8
    assert band_widths(63) == [1] * 64


def test_any_hash_within_d_shares_a_band_exactly():
    rng = random.Random(7)
    for _ in range(300):
        distance = rng.randrange(0, 12)
        value = rng.getrandbits(64)
        for bit in rng.sample(range(64), distance):
            value ^= 1 << bit
        a = f"{value:016x}"
        other = int(a, 16)
        for bit in rng.sample(range(64), distance):
            other ^= 1 << bit
        near = f"{other:016x}"
        assert hamming(a, near) <= distance
        assert set(bands(a, distance)) & set(bands(near, distance))


def test_match_exactly_at_threshold_is_caught_one_above_is_not():
    base = 0x0123456789ABCDEF
    at = f"{base ^ 0b11111111:016x}"  # 8 bits flipped
    above = f"{base ^ 0b111111111:016x}"  # 9 bits flipped
    index = EvalIndex([("set", "img", f"{base:016x}")], max_distance=8)
    assert index.match(at).distance == 8
    assert index.match(above) is None


def test_best_match_prefers_nearest_then_set_name():
    evals = [("b", "x", "0000000000000003"), ("a", "y", "0000000000000003")]
    match = best_match("0000000000000000", evals, 4)
    assert (match.set_name, match.distance) == ("a", 2)
    assert "eval_set=a" in match.measured()
    assert eval_reason("imagenet") == "eval_near_duplicate/imagenet"


@pytest.mark.parametrize("variant", ["resized", "recompressed", "cropped", "cropped_resized_jpeg"])
def test_near_duplicates_of_eval_images_are_caught(originals, index, variant):
    for name, image in originals.items():
        match = index.match(phash(_variants(image)[variant]))
        assert match is not None and match.image == name, (name, variant)


def test_unrelated_images_are_not_matched(originals, index):
    others = [_photo(name) for name in ("page", "clock", "brick", "grass", "gravel")]
    others += [_render(seed) for seed in range(100, 120)]
    assert [index.match(phash(image)) for image in others] == [None] * len(others)


def test_distance_outside_zero_to_63_is_refused():
    with pytest.raises(ValueError, match="0..63"):
        band_widths(64)

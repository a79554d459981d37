"""The perceptual hash: the imagehash algorithm, stable under resizing, apart for other photos."""

import io

import numpy as np
import pytest
import scipy.fftpack
from PIL import Image
from skimage import data

from filters.phash import hamming, phash


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def reference_phash(image: Image.Image) -> str:
    """imagehash.phash, written out with scipy's DCT."""
    pixels = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), float)
    low = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8]
    bits = "".join("1" if bit else "0" for bit in (low > np.median(low)).flatten())
    return f"{int(bits, 2):016x}"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "camera", "rocket"])
def test_phash_equals_the_imagehash_algorithm(name):
    image = Image.fromarray(getattr(data, name)())
    assert phash(image) == reference_phash(image)


def test_phash_is_sixteen_lowercase_hex_digits(astronaut):
    value = phash(astronaut)
    assert len(value) == 16 and value == value.lower()
    int(value, 16)


def test_resized_and_recompressed_copy_is_a_near_duplicate(astronaut):
    buffer = io.BytesIO()
    astronaut.resize((200, 200)).save(buffer, "JPEG", quality=60)
    copy = Image.open(io.BytesIO(buffer.getvalue()))
    assert hamming(phash(astronaut), phash(copy)) <= 4


def test_different_photos_are_far_apart(astronaut):
    coffee = Image.fromarray(data.coffee())
    assert hamming(phash(astronaut), phash(coffee)) >= 16


def test_hamming_counts_differing_bits():
    assert hamming("0000000000000000", "0000000000000000") == 0
    assert hamming("0000000000000000", "ffffffffffffffff") == 64
    assert hamming("00000000000000f0", "0000000000000010") == 3


def test_hamming_rejects_hashes_of_different_lengths():
    with pytest.raises(ValueError, match="length"):
        hamming("00", "0000")

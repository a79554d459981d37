"""The 64-bit DCT perceptual hash of an image and the Hamming distance between two hashes.

The same hash as ``imagehash.phash`` (greyscale, Lanczos to 32x32, 2-D DCT-II, the 8x8
lowest frequencies compared with their median, row-major bits, first bit most significant),
so hashes computed here agree with the common tool people check near-duplicates with.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIZE = 8  # 8x8 low frequencies: a 64-bit hash
HIGHFREQ_FACTOR = 4  # the image is reduced to 32x32 before the DCT
_SIDE = HASH_SIZE * HIGHFREQ_FACTOR


def _dct_matrix(n: int) -> np.ndarray:
    """DCT-II without normalisation (scipy.fftpack's default): y = M @ x, M[k, i] = 2cos(...)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT = _dct_matrix(_SIDE)


def phash_bits(image: Image.Image) -> np.ndarray:
    """The 8x8 boolean matrix of the hash: low-frequency DCT coefficients above their median."""
    grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    coefficients = _DCT @ pixels @ _DCT.T  # DCT along columns, then along rows
    low = coefficients[:HASH_SIZE, :HASH_SIZE]
    return low > np.median(low)


def phash(image: Image.Image) -> str:
    """The perceptual hash as 16 lowercase hex digits."""
    value = 0
    for bit in phash_bits(image).flatten():
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {a!r} vs {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()

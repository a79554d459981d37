"""Decoding downloaded bytes: sniffing, RGB normalisation, resizing, hostile files."""

import hashlib
import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from filters.phash import phash
from pipeline.download.imaging import process_image, sniff_mime, target_size, to_rgb
from tools.hostile import corpus

HOSTILE = {item.name: item for item in corpus()}


def decoded(result) -> Image.Image:
    image = Image.open(io.BytesIO(result.image))
    assert image.format == "JPEG" and image.mode == "RGB"
    return image


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_hostile_image_ends_with_its_expected_status(name):
    item = HOSTILE[name]
    result = process_image(item.data)
    assert result.status == item.expected, result.error
    assert result.sha256 == hashlib.sha256(item.data).hexdigest()
    if item.expected == "ok":
        assert decoded(result).size == (result.width, result.height)
        assert result.phash and len(result.phash) == 16
    else:
        assert result.image is None and result.error


@pytest.mark.parametrize(
    "size, image_size, upscale, expected",
    [
        ((1000, 500), 346, False, (692, 346)),
        ((500, 1000), 346, False, (346, 692)),
        ((346, 800), 346, False, (346, 800)),
        ((200, 100), 346, False, (200, 100)),  # never upscaled unless asked
        ((200, 100), 346, True, (692, 346)),
        ((1001, 1001), 346, False, (346, 346)),
    ],
)
def test_shorter_side_goes_to_the_image_size(size, image_size, upscale, expected):
    assert target_size(*size, image_size, upscale) == expected


def test_photo_is_resized_to_346_on_its_shorter_side_with_metadata():
    photo = jpeg_bytes(Image.fromarray(data.astronaut()).resize((1024, 768)), quality=92)
    result = process_image(photo)
    assert (result.status, result.mime) == ("ok", "image/jpeg")
    assert (result.width, result.height) == (461, 346)
    assert (result.original_width, result.original_height) == (1024, 768)
    assert result.sha256 == hashlib.sha256(photo).hexdigest()
    assert result.phash == phash(decoded(result))  # hash of the stored picture


def test_draft_decoding_keeps_the_quality_of_a_full_decode():
    photo = jpeg_bytes(Image.fromarray(data.astronaut()).resize((1600, 1600)), quality=92)
    fast = np.asarray(decoded(process_image(photo)), dtype=np.float64)
    reference = Image.open(io.BytesIO(photo)).convert("RGB")
    slow = np.asarray(reference.resize((346, 346), Image.Resampling.LANCZOS), dtype=np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((fast - slow) ** 2))
    assert psnr > 30


def test_a_large_reduction_averages_instead_of_aliasing():
    # A one-pixel checkerboard (a PNG: no draft decoding) shrunk 4x must come out mid-grey;
    # a filter that samples rather than averages returns black, white or stripes.
    board = (np.indices((1430, 1430)).sum(axis=0) % 2 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(board).convert("RGB").save(buffer, "PNG")
    pixels = np.asarray(decoded(process_image(buffer.getvalue(), quality=100)), dtype=np.float64)
    assert pixels.shape == (346, 346, 3)
    assert np.abs(pixels - 127.5).max() < 8


def test_upscale_and_quality_are_honoured():
    small = jpeg_bytes(Image.fromarray(data.astronaut()).resize((100, 100)))
    assert (process_image(small).width, process_image(small).height) == (100, 100)
    assert process_image(small, upscale=True).width == 346
    big = jpeg_bytes(Image.fromarray(data.astronaut()))
    assert len(process_image(big, quality=50).image) < len(process_image(big, quality=95).image)


def test_animated_gif_keeps_its_first_frame():
    pixel = decoded(process_image(HOSTILE["animated.gif"].data)).getpixel((100, 100))
    assert pixel[0] > 200 and pixel[2] < 60  # red, not the blue second frame


def test_transparency_is_composited_on_white():
    palette = decoded(process_image(HOSTILE["palette-transparent.png"].data))
    assert min(palette.getpixel((5, 5))) > 245  # transparent border
    red = palette.getpixel((173, 173))
    assert red[0] > 200 and red[1] < 60  # opaque red middle
    clear = np.asarray(decoded(process_image(HOSTILE["rgba-transparent.png"].data)))
    assert clear.min() > 245


def test_sixteen_bit_images_keep_their_tones():
    grey = np.asarray(decoded(process_image(HOSTILE["grey16.png"].data)), dtype=int)
    assert grey[5, :, 0].mean() < 30 and grey[-5, :, 0].mean() > 220  # dark to light ramp
    rgb = decoded(process_image(HOSTILE["rgb16.png"].data))
    left, right = rgb.getpixel((3, 100)), rgb.getpixel((340, 100))
    assert left[0] > 230 and left[2] < 30 and right[2] > 220


def test_cmyk_is_converted_to_rgb_colours():
    image = decoded(process_image(HOSTILE["cmyk.jpg"].data))
    top_right = image.getpixel((340, 3))  # the gradient is red there, blue 128 everywhere
    assert top_right[0] > 200 and top_right[1] < 60


def test_exif_orientation_is_applied():
    stored = Image.new("RGB", (400, 300), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 50, 50))  # red marker top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    result = process_image(jpeg_bytes(stored, exif=exif.tobytes()))
    image = decoded(result)
    assert (result.original_width, result.original_height) == (300, 400)
    assert image.size == (300, 400)
    assert image.getpixel((280, 20))[0] > 200  # the marker is now top-right
    assert image.getpixel((20, 20))[2] > 200


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_to_rgb_handles_every_mode(mode):
    image = Image.new("RGB", (8, 8), (200, 100, 50)).convert(mode)
    assert to_rgb(image).mode == "RGB"


def test_a_pixel_bomb_is_refused_before_decoding():
    result = process_image(
        HOSTILE["plain.png"].data
        if "plain.png" in HOSTILE
        else jpeg_bytes(Image.new("RGB", (400, 400))),
        max_pixels=100_000,
    )
    assert result.status == "too_many_pixels"


@pytest.mark.parametrize(
    "head, mime",
    [
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF89a", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x1cftypavif", "image/avif"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_content_type_is_sniffed_from_the_bytes(head, mime):
    assert sniff_mime(head) == mime

"""ALIGN's image rules: a downloaded image, its size and aspect ratio, images shared by too
many alt-texts, and the NSFW classifier's verdict."""

from __future__ import annotations

STATUS_OK = "ok"  # the download status of a usable image (pipeline/records.py re-exports it)
DOWNLOAD_FAILED = "download_"  # + the download's status: download_http_404, ...
IMAGE_TOO_SMALL = "image_too_small"
EXTREME_ASPECT = "extreme_aspect"
IMAGE_MANY_ALTS = "image_with_many_alts"
NSFW = "nsfw"
NSFW_UNSCORED = "nsfw_unscored"

Verdict = tuple[str, str] | None  # None keeps; otherwise (reason, what was measured)


def check_download(status: str | None, error: str | None) -> Verdict:
    """A pair whose image could not be downloaded has nothing to train on; the reason names
    the download's failure (download_http_404, download_timeout, ...)."""
    if status != STATUS_OK:
        return f"{DOWNLOAD_FAILED}{status}", (error or "")[:200]
    return None


def check_size(width: int, height: int, min_shorter_side: int = 200) -> Verdict:
    """ALIGN keeps images whose shorter side is more than 200 px (of the original image)."""
    shorter = min(width, height)
    if shorter <= min_shorter_side:
        return IMAGE_TOO_SMALL, f"shorter_side={shorter}"
    return None


def check_aspect(width: int, height: int, max_aspect: float = 3.0) -> Verdict:
    """ALIGN keeps images with long/short side ratio below 3: banners and strips are not
    photos of anything a caption describes."""
    short, long = sorted((width, height))
    if short <= 0:
        return EXTREME_ASPECT, f"aspect=inf ({width}x{height})"
    aspect = long / short
    if aspect >= max_aspect:
        return EXTREME_ASPECT, f"aspect={aspect:.3f}"
    return None


def check_alts_per_image(n_alts: int, max_alts: int = 1000) -> Verdict:
    """ALIGN drops images associated with more than 1000 alt-texts (logos, spacers, icons)."""
    if n_alts > max_alts:
        return IMAGE_MANY_ALTS, f"alts_per_image>={n_alts}"
    return None


def check_nsfw(score: float | None, threshold: float = 0.5) -> Verdict:
    """ALIGN drops pornographic images by a classifier's score; an image the model could not
    score is dropped too, under its own reason, rather than let through unjudged."""
    if score is None:
        return NSFW_UNSCORED, "no score from the NSFW model"
    if score > threshold:
        return NSFW, f"nsfw_score={score:.4f}"
    return None

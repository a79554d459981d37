"""The plan of a synthetic web: every picture, where it is served and how, and every <img> on it.

Planning is cheap and sequential (one seeded ``random.Random``); rendering and writing the
plan's files is the expensive part, done elsewhere from the specs planned here.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass, field

from tools import synth_text as text

NOISE_KINDS = (
    "boilerplate_alt",
    "reused_image",
    "small_image",
    "extreme_aspect",
    "non_english",
    "rare_token",
    "too_short",
    "too_long",
    "mismatched_caption",
    "eval_near_duplicate",
    "broken_link",
    "undecodable",
    "x_robots",
)
# What align-download must conclude for a URL served with each fault.
EXPECTED_STATUS = {
    "none": "ok",
    "slow": "ok",
    "http_429": "ok",  # every other request is a 429 with Retry-After: 1; a retry succeeds
    "redirect": "ok",
    "redirect_other_host": "ok",
    "wrong_content_type": "ok",  # the type is judged from the bytes
    "http_404": "http_404",
    "http_500": "http_5xx",
    "hang": "timeout",
    "truncated": "truncated",
    "redirect_loop": "too_many_redirects",
    "not_an_image": "not_an_image",
    "undecodable": "decode_error",
    "x_robots_tag": "x_robots_tag",
    "robots_disallowed": "robots_disallowed",
}
BENIGN_FAULTS = ("slow", "http_429", "redirect", "redirect_other_host", "wrong_content_type")
BROKEN_SPLIT = (
    ("http_404", 0.4),
    ("http_500", 0.2),
    ("truncated", 0.15),
    ("not_an_image", 0.15),
    ("redirect_loop", 0.1),
)
X_ROBOTS_VALUES = ("noai", "noimageai", "noai, noimageai")
# Pages that reserve themselves, one of each (pipeline/fetch/consent.py): the signal's reason,
# the response headers, the <meta name content> tags. Every <img> on them is a pair the crawl
# must not emit, labelled with the reason in the ground truth's ``consent`` column.
POLICY = "https://synthweb.example/tdm-policy.json"
RESERVED_PAGES = (
    ("x_robots_tag", (("X-Robots-Tag", "noai"),), ()),
    (
        "x_robots_tag",
        (("X-Robots-Tag", "otherbot: nofollow"), ("X-Robots-Tag", "align-recipe: noimageai")),
        (),
    ),
    ("meta_robots", (), (("robots", "noindex, nofollow"),)),
    ("meta_robots", (), (("align-recipe", "noimageai"),)),
    ("tdm_reservation", (("tdm-reservation", "1"), ("tdm-policy", POLICY)), ()),
    ("tdm_reservation_meta", (), (("tdm-reservation", "1"), ("tdm-policy", POLICY))),
)
IMGS_PER_RESERVED_PAGE = 3
# Signals on ordinary pages that reserve nothing for our agent: the crawl must keep them.
DECOY_SIGNALS = (
    ((("tdm-reservation", "0"), ("tdm-policy", POLICY)), ()),
    ((("X-Robots-Tag", "otherbot: noai"),), ()),
    ((), (("googlebot", "noindex"),)),
    ((), (("robots", "max-image-preview:none, nofollow"),)),
)
# Images reserved where align-download sees them (the host's /ai.txt, its
# /.well-known/tdmrep.json, the image response's tdm-reservation header): emitted by the crawl,
# labelled in ``consent``, and expected to end in the download under the signal's name.
DOWNLOAD_SIGNALS = {"ai_txt": "ai-reserved", "tdmrep_json": "tdm-reserved", "tdm_reservation": None}
MAX_USES = {"photo": 3, "too_short": 8}  # images per alt-text; every other kind: 1
MIN_NGRAM_COUNT = 5  # every n-gram of a guarded alt-text occurs at least this often
GUARDED = {"template", "photo", "reused", "too_short", "too_long", "mismatched", "rare_token"}
IMAGE_FORMATS = (("jpg", 0.8), ("png", 0.08), ("webp", 0.07), ("gif", 0.05))


@dataclass
class Picture:
    """One file behind one or more URLs (host index 0 is the page host 127.0.0.1)."""

    id: str
    spec: dict
    host: int
    path: str
    class_name: str | None = None
    attrs: dict | None = None
    fault: str = "none"
    route: dict = field(default_factory=dict)  # extra per-URL server behaviour
    consent: str | None = None  # the signal that reserves it at download time
    store: list[tuple[int, str]] = field(default_factory=list)  # where the bytes are written
    mirrors: list[tuple[int, str]] = field(default_factory=list)  # same bytes, other URLs

    @property
    def size(self) -> tuple[int, int]:
        return self.spec.get("width", 0), self.spec.get("height", 0)


@dataclass
class Img:
    """One <img> occurrence: a row of the ground truth."""

    picture: Picture | None
    host: int  # which URL of the picture (mirrors): host index
    path: str
    alt: str  # normalised, as the crawler must emit it
    caption: str  # how the alt-text was written
    language: str | None
    noise: str | None = None
    eval_match: str | None = None
    emitted: bool = True
    duplicate: bool = False
    alt_attribute: bool = True  # False: the tag has no alt attribute at all
    raw_src: str | None = None  # for non-emitted tags: a src the crawler must skip
    rare: str | None = None  # the rare token put into a rare-token alt-text
    consent: str | None = None  # the signal that reserves the pair (RESERVED_PAGES, DOWNLOAD_...)
    reserved_page: int | None = None  # index into RESERVED_PAGES of the page it must go on


@dataclass
class EvalImage:
    name: str  # path under eval/, e.g. "zero_shot/red circle/0003.jpg"
    spec: dict
    class_name: str
    attrs: dict
    captions: list[str] = field(default_factory=list)


def host_ip(index: int) -> str:
    return f"127.0.0.{index + 1}"


class Planner:
    """Turns a WebConfig into pictures, <img> occurrences and evaluation images."""

    def __init__(self, config) -> None:
        self.config = config
        self.rng = random.Random(f"synthweb:{config.seed}:plan")
        self.pictures: list[Picture] = []
        self.imgs: list[Img] = []
        self.eval_images: list[EvalImage] = []
        self.alt_uses: Counter[str] = Counter()  # images per alt-text, kept small on purpose
        self.rare_tokens: set[str] = set()
        self.vocabulary = text.vocabulary()
        self._class_cycle: list[tuple[str, int]] = []
        self._variants, self._suffixes = 1, 1

    # --- pictures ---------------------------------------------------------------------------

    def _new_id(self) -> str:
        return f"p{len(self.pictures):06d}"

    def _seed(self, stream: int, index: int) -> list[int]:
        return [self.config.seed, stream, index]

    def random_attrs(self, class_name: str | None = None) -> dict:
        """Attributes of a new picture. Without a class, classes and singular/plural come
        round-robin (shuffled), so every class word pair is about equally frequent."""
        if class_name is None:
            if not self._class_cycle:
                self._class_cycle = [(c, plural) for c in text.CLASS_NAMES for plural in (0, 1)]
                self.rng.shuffle(self._class_cycle)
            class_name, plural = self._class_cycle.pop()
            count = self.rng.choice((2, 3)) if plural else 1
        else:
            count = self.rng.choice((1, 1, 2, 3))
        colour, shape = class_name.split(" ")
        return {
            "colour": colour,
            "shape": shape,
            "count": count,
            "size": self.rng.choice(text.SIZES),
            "background": self.rng.choice(text.BACKGROUNDS),
        }

    def any_attrs(self) -> dict:
        """Attributes of a picture whose alt-text never names its class (outside the balance)."""
        return self.random_attrs(self.rng.choice(text.CLASS_NAMES))

    def _dims(self, low: int, high: int, aspect: tuple[float, float]) -> tuple[int, int]:
        short = self.rng.randint(low, high)
        long = int(round(short * self.rng.uniform(*aspect)))
        return (long, short) if self.rng.random() < 0.6 else (short, long)

    def _format(self) -> str:
        return self.rng.choices([f for f, _ in IMAGE_FORMATS], [w for _, w in IMAGE_FORMATS])[0]

    def _place(self, picture_id: str, ext: str, host: int | None = None, folder: str = "img"):
        name = hashlib.sha1(f"{self.config.seed}:{picture_id}".encode()).hexdigest()[:12]
        if host is None:
            host = 0 if self.rng.random() < 0.25 else self.rng.randint(1, self.config.n_image_hosts)
        if folder == "img" and host == 0:
            folder = "assets"
        sub = f"{name[:2]}/" if folder == "img" else ""
        return host, f"/{folder}/{sub}{name}.{ext}"

    def add_picture(self, kind: str, attrs: dict | None, dims, fmt: str, **extra) -> Picture:
        pid = self._new_id()
        width, height = dims
        spec = {
            "kind": kind,
            "seed": self._seed(1, len(self.pictures)),
            "width": width,
            "height": height,
            "format": fmt,
            **(attrs or {}),
        }
        spec.update(extra.pop("spec", {}))
        host, path = self._place(pid, fmt, extra.pop("host", None), extra.pop("folder", "img"))
        class_name = f"{attrs['colour']} {attrs['shape']}" if attrs else None
        picture = Picture(pid, spec, host, path, class_name=class_name, attrs=attrs, **extra)
        picture.store = [(host, path)]
        self.pictures.append(picture)
        return picture

    def shape_picture(self, attrs: dict | None = None, kind: str = "shape", dims=None, fmt=None):
        attrs = attrs or self.random_attrs()
        dims = dims or self._dims(self.config.min_side, self.config.max_side, (1.0, 1.5))
        return self.add_picture(kind, attrs, dims, fmt or self._format())

    def occurrence(self, picture: Picture, alt: str, caption: str, language="en", **kw) -> Img:
        img = Img(picture, picture.host, picture.path, alt, caption, language, **kw)
        self.imgs.append(img)
        return img

    # --- captions ----------------------------------------------------------------------------

    def unique(self, make, limit: int = 200, max_uses: int = 1) -> str:
        """A caption from ``make`` that at most ``max_uses`` images of the web use."""
        for _ in range(limit):
            alt = make()
            if self.alt_uses[alt] < max_uses:
                self.alt_uses[alt] += 1
                return alt
        raise RuntimeError("caption space exhausted: add templates or lower the pair count")

    def clean(self, attrs: dict, picture: Picture | None = None) -> str:
        """A unique true caption; when ``picture`` is given and its attributes have run out of
        unused captions, the picture is redrawn with other attributes."""
        for _ in range(20):
            try:
                return self.unique(lambda a=attrs: text.clean_caption(self.rng, a), limit=60)
            except RuntimeError:
                if picture is None:
                    raise
                self._redraw(picture, self.random_attrs())
                attrs = picture.attrs
        raise RuntimeError("caption space exhausted: add templates or lower the pair count")

    # --- the plan ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        n = self.config.n_pairs
        return {kind: int(round(getattr(self.config, f"rate_{kind}") * n)) for kind in NOISE_KINDS}

    def plan(self) -> None:
        self.plan_eval()
        counts = self.counts()
        for kind in NOISE_KINDS:
            getattr(self, f"plan_{kind}")(counts[kind])
        self.plan_boundary_alts()
        self.plan_download_consent()
        n_clean = max(0, self.config.n_pairs - len(self.imgs))
        n_photo = int(round(n_clean * self.config.rate_photo))
        self.plan_clean(n_clean - n_photo)
        self.plan_photos(n_photo)
        self.plan_benign_faults()
        self.repair_rare_ngrams()
        self.plan_duplicates()
        self.plan_not_emitted()
        self.plan_reserved_pages()

    def plan_eval(self) -> None:
        for class_name in text.CLASS_NAMES:
            for k in range(self.config.eval_per_class):
                self._eval_image(f"zero_shot/{class_name}/{k:04d}.jpg", class_name)
        for k in range(self.config.n_retrieval):
            item = self._eval_image(f"retrieval/images/{k:05d}.jpg", None)
            rng = random.Random(f"synthweb:{self.config.seed}:retrieval:{k}")
            captions: list[str] = []
            while len(captions) < self.config.captions_per_image:
                caption = text.clean_caption(rng, item.attrs)
                if caption not in captions:
                    captions.append(caption)
            item.captions = captions

    def _eval_image(self, name: str, class_name: str | None) -> EvalImage:
        attrs = self.random_attrs(class_name)
        width, height = self._dims(self.config.min_side, self.config.max_side, (1.0, 1.4))
        spec = {
            "kind": "shape",
            "seed": self._seed(2, len(self.eval_images)),
            "width": width,
            "height": height,
            "format": "jpg",
            **attrs,
        }
        item = EvalImage(name, spec, f"{attrs['colour']} {attrs['shape']}", attrs)
        self.eval_images.append(item)
        return item

    def plan_clean(self, n: int) -> None:
        for _ in range(n):
            picture = self.shape_picture()
            self.occurrence(picture, self.clean(picture.attrs, picture), "template")

    def plan_photos(self, n: int) -> None:
        if n <= 0:
            return
        subjects = list(text.PHOTO_SUBJECTS)[: max(1, min(len(text.PHOTO_SUBJECTS), n // 12))]
        per_subject = n // len(subjects)  # each phrase on >= 5 photos:
        self._variants = 2 if per_subject >= 30 else 1
        self._suffixes = max(1, min(len(text.PHOTO_SUFFIXES), per_subject // 12))
        for k in range(n):
            photo = subjects[k % len(subjects)]
            dims = self._dims(self.config.min_side, self.config.max_side, (1.0, 1.5))
            picture = self.add_picture("photo", None, dims, "jpg", spec={"photo": photo})
            alt = self.unique(
                lambda p=photo: text.photo_caption(self.rng, p, self._variants, self._suffixes),
                max_uses=MAX_USES["photo"],
            )
            self.occurrence(picture, alt, "photo")

    def plan_boilerplate_alt(self, n: int) -> None:
        if n <= 0:
            return
        groups = max(1, round(n / 17))
        alts = list(text.BOILERPLATE)
        self.rng.shuffle(alts)
        for g in range(groups):
            alt = alts[g % len(alts)] if g < len(alts) else f"{alts[g % len(alts)]} {g}"
            size = max(15, n // groups + (1 if g < n % groups else 0))
            for _ in range(size):
                language = None if alt in text.NON_TEXT_BOILERPLATE else "en"
                self.occurrence(
                    self.shape_picture(self.any_attrs()),
                    alt,
                    "boilerplate",
                    language,
                    noise="boilerplate_alt",
                )
            self.alt_uses[alt] += 10**6  # never handed out again

    def plan_boundary_alts(self) -> None:
        """An alt-text on exactly 10 images (kept by ALIGN) and one on 11 (dropped)."""
        if not self.config.boundary_alts or self.config.n_pairs < 300:
            return  # 21 pairs on one alt-text would swamp a tiny web
        for size, alt in text.BOUNDARY_ALTS.items():
            noise = "boilerplate_alt" if size > 10 else None
            for _ in range(size):
                self.occurrence(
                    self.shape_picture(self.any_attrs()), alt, "boundary", "en", noise=noise
                )
            self.alt_uses[alt] += 10**6  # never handed out again

    def plan_reused_image(self, n: int) -> None:
        """Logos reused under >= 25 distinct alt-texts, each at two URLs with the same bytes."""
        if n <= 0:
            return
        logos = max(1, round(n / 30))
        per_logo = max(self.config.min_alts_per_reused_image, n // logos)
        for _ in range(logos):
            side = self.rng.randint(256, 320)
            logo = self.add_picture("logo", None, (side, side), "png")
            mirror_host = 1 + (logo.host % self.config.n_image_hosts)
            mirror = (mirror_host, logo.path.replace("/assets/", "/img/logo/"))
            logo.mirrors.append(mirror)
            logo.store.append(mirror)
            for k in range(per_logo):
                alt = self.clean(self.random_attrs())
                img = self.occurrence(logo, alt, "reused", noise="reused_image")
                if k % 3 == 2:
                    img.host, img.path = mirror

    def plan_small_image(self, n: int) -> None:
        for k in range(n):
            side = 200 if k == 0 else self.rng.randint(24, 180)  # 200 px fails "> 200"
            dims = (side, side) if k == 0 else self._dims(side, side, (1.0, 1.3))
            attrs = self.random_attrs()
            attrs["count"] = 1
            fmt = self.rng.choice(("png", "gif", "jpg", "jpg"))
            picture = self.shape_picture(attrs, "icon", dims, fmt)
            self.occurrence(picture, self.clean(attrs, picture), "template", noise="small_image")

    def plan_extreme_aspect(self, n: int) -> None:
        for k in range(n):
            short = self.rng.randint(210, 300)
            ratio = 3.0 if k == 0 else self.rng.uniform(3.2, 5.0)  # 3.0 fails "< 3"
            dims = (int(round(short * ratio)), short)
            picture = self.shape_picture(self.random_attrs(), "banner", dims, "jpg")
            self.occurrence(
                picture, self.clean(picture.attrs, picture), "template", noise="extreme_aspect"
            )

    def plan_non_english(self, n: int) -> None:
        languages = list(text.FOREIGN)
        used: dict[str, int] = {}
        for k in range(n):
            language = languages[k % len(languages)]
            picture = self.shape_picture(self.any_attrs())
            for _ in range(50):
                alt = text.foreign_caption(self.rng, language, picture.attrs)
                if used.get(alt, 0) < 3:
                    break
            used[alt] = used.get(alt, 0) + 1
            self.occurrence(picture, alt, "foreign", language, noise="non_english")

    def plan_rare_token(self, n: int) -> None:
        for _ in range(n):
            picture = self.shape_picture()
            alt, token = self.with_token(self.clean(picture.attrs, picture))
            img = self.occurrence(picture, alt, "rare_token", noise="rare_token")
            img.rare = token

    def with_token(self, caption: str) -> tuple[str, str]:
        token = text.rare_token(self.rng, caption, self.rare_tokens, self.vocabulary)
        return text.with_rare_token(self.rng, caption, token), token

    def plan_too_short(self, n: int) -> None:
        """True one- or two-word alt-texts, each on as few images as the web allows (a short
        alt-text on more than 10 images would be boilerplate noise too)."""
        for _ in range(n):
            picture = self.shape_picture()
            for _ in range(50):
                alt = min(text.too_short_options(picture.attrs), key=lambda a: self.alt_uses[a])
                if self.alt_uses[alt] < MAX_USES["too_short"]:
                    break
                self._redraw(picture, self.random_attrs())
            self.alt_uses[alt] += 1
            self.occurrence(picture, alt, "too_short", noise="too_short")

    def plan_too_long(self, n: int) -> None:
        for _ in range(n):
            picture = self.shape_picture()
            alt = self.unique(lambda p=picture: text.too_long_caption(self.rng, p.attrs))
            self.occurrence(picture, alt, "too_long", noise="too_long")

    def plan_mismatched_caption(self, n: int) -> None:
        for _ in range(n):
            picture = self.shape_picture(self.any_attrs())
            other = self.random_attrs()
            while f"{other['colour']} {other['shape']}" == picture.class_name:
                other = self.random_attrs()
            self.occurrence(picture, self.clean(other), "mismatched", noise="mismatched_caption")

    def plan_eval_near_duplicate(self, n: int) -> None:
        if n <= 0 or not self.eval_images:
            return
        sources = self.rng.sample(self.eval_images, min(n, len(self.eval_images)))
        for k in range(n):
            source = sources[k % len(sources)]
            picture = self.add_picture(
                "near_dup", source.attrs, (0, 0), "jpg", spec={"source": source.spec}
            )
            for key in source.attrs:
                picture.spec.pop(key, None)
            self.occurrence(
                picture,
                self.clean(source.attrs),
                "template",
                noise="eval_near_duplicate",
                eval_match=source.name,
            )

    def plan_broken_link(self, n: int) -> None:
        faults = (["hang"] * min(self.config.n_hang, n) + [f for f, _ in BROKEN_SPLIT])[:n]
        rest = n - len(faults)  # every fault at least once, then the rest by share
        for fault, share in BROKEN_SPLIT:
            faults += [fault] * int(rest * share)
        faults += ["http_404"] * (n - len(faults))
        for fault in faults:
            picture = self.shape_picture(fmt="jpg")
            picture.fault = fault
            if fault == "http_404":
                picture.store = []
            if fault == "not_an_image":
                picture.spec = {"kind": "html", "seed": picture.spec["seed"]}
            self.occurrence(
                picture, self.clean(picture.attrs, picture), "template", noise="broken_link"
            )

    def plan_undecodable(self, n: int) -> None:
        for _ in range(n):
            picture = self.shape_picture(fmt=self.rng.choice(("jpg", "jpg", "png", "gif")))
            picture.fault = "undecodable"
            picture.spec["kind"] = "undecodable"  # rendered, then cut short
            self.occurrence(
                picture, self.clean(picture.attrs, picture), "template", noise="undecodable"
            )

    def plan_x_robots(self, n: int) -> None:
        for k in range(n):
            if k % 2 == 0:
                picture = self.shape_picture()
                picture.fault = "x_robots_tag"
                picture.route = {"x_robots_tag": X_ROBOTS_VALUES[k // 2 % len(X_ROBOTS_VALUES)]}
            else:  # under /private/ on an image host, which its robots.txt disallows
                attrs = self.random_attrs()
                dims = self._dims(self.config.min_side, self.config.max_side, (1.0, 1.5))
                picture = self.add_picture(
                    "shape",
                    attrs,
                    dims,
                    "jpg",
                    host=self.rng.randint(1, self.config.n_image_hosts),
                    folder="private",
                )
                picture.fault = "robots_disallowed"
            self.occurrence(
                picture, self.clean(picture.attrs, picture), "template", noise="x_robots"
            )

    def plan_download_consent(self) -> None:
        """Clean pictures an image host reserves: under its ai.txt's or tdmrep.json's reserved
        folder, or answered with ``tdm-reservation: 1``."""
        for signal, folder in DOWNLOAD_SIGNALS.items():
            host = {"ai_txt": 1, "tdmrep_json": min(2, self.config.n_image_hosts)}.get(signal)
            for _ in range(self.config.n_consent_images):
                attrs = self.random_attrs()
                dims = self._dims(self.config.min_side, self.config.max_side, (1.0, 1.5))
                if folder:
                    where = {"host": host, "folder": folder}
                    picture = self.add_picture("shape", attrs, dims, "jpg", **where)
                else:
                    picture = self.shape_picture(attrs, fmt="jpg")
                    picture.route = {"headers": [["tdm-reservation", "1"], ["tdm-policy", POLICY]]}
                picture.consent = signal
                img = self.occurrence(picture, self.clean(picture.attrs, picture), "template")
                img.consent = signal

    def plan_reserved_pages(self) -> None:
        """A page per RESERVED_PAGES entry, each with its own pictures, never rendered: a
        crawler that honours the page never asks for them."""
        for index, (signal, _, _) in enumerate(RESERVED_PAGES):
            for _ in range(IMGS_PER_RESERVED_PAGE):
                picture = self.shape_picture(fmt="jpg")
                picture.store = []
                img = self.occurrence(picture, self.clean(picture.attrs, picture), "template")
                img.emitted, img.consent, img.reserved_page = False, signal, index

    def plan_benign_faults(self) -> None:
        """Faults a careful downloader gets through: they land on clean pictures."""
        candidates = [
            img.picture
            for img in self.imgs
            if img.caption == "template"
            and img.noise is None
            and img.picture.fault == "none"
            and img.picture.consent is None
            and img.picture.spec["kind"] == "shape"
        ]
        self.rng.shuffle(candidates)
        for fault in BENIGN_FAULTS:
            for _ in range(getattr(self.config, f"n_{fault}")):
                if not candidates:
                    return
                picture = candidates.pop()
                picture.fault = fault
                if fault == "redirect_other_host":
                    target = 1 + (picture.host % self.config.n_image_hosts)
                    picture.route = {"target_host": host_ip(target)}
                    picture.store = [(target, picture.path)]

    # --- text repair and the rest ------------------------------------------------------------

    def _redrawable(self, img: Img) -> bool:
        """A picture only this <img> shows, not rendered yet: its class may still change."""
        picture = img.picture
        return (
            picture is not None
            and picture.attrs is not None
            and picture.spec["kind"] in ("shape", "icon", "banner", "undecodable", "html")
            and img.caption in ("template", "too_short", "too_long", "rare_token")
            and img.eval_match is None
            and self._uses[picture.id] == 1
        )

    def _remake(self, img: Img) -> tuple[str, dict | None, str | None]:
        """Another alt-text for ``img`` of the same kind, new picture attributes if the
        picture is redrawn to match it, and the alt-text's rare token if it has one."""
        attrs = img.picture.attrs if img.picture else None
        if img.caption == "photo":
            caption = text.photo_caption(
                self.rng, img.picture.spec["photo"], self._variants, self._suffixes
            )
            return caption, None, None
        if img.caption in ("reused", "mismatched") or attrs is None:
            other = self.random_attrs()
            while (
                img.caption == "mismatched"
                and other["shape"] == attrs["shape"]
                and (other["colour"] == attrs["colour"])
            ):
                other = self.random_attrs()
            return text.clean_caption(self.rng, other), None, None
        new = None
        if self._redrawable(img) and self.rng.random() < 0.5:
            new = self.random_attrs()
            new["count"] = attrs["count"] if img.picture.spec["kind"] == "icon" else new["count"]
            attrs = new
        if img.caption == "too_short":
            return text.too_short_caption(self.rng, attrs), new, None
        if img.caption == "too_long":
            return text.too_long_caption(self.rng, attrs), new, None
        caption = text.clean_caption(self.rng, attrs)
        if img.caption == "rare_token":
            alt, token = self.with_token(caption)
            return alt, new, token
        return caption, new, None

    def _redraw(self, picture: Picture, attrs: dict) -> None:
        picture.attrs = attrs
        if picture.spec["kind"] in ("shape", "icon", "banner", "undecodable"):
            picture.spec.update(attrs)
        picture.class_name = f"{attrs['colour']} {attrs['shape']}"

    def repair_rare_ngrams(self) -> None:
        """Rewrites guarded alt-texts until each of their n-grams occurs >= MIN_NGRAM_COUNT times,
        so that rare-token noise is exactly the pairs labelled so (best effort for tiny webs)."""
        guarded = [img for img in self.imgs if img.caption in GUARDED]
        self._uses = Counter(img.picture.id for img in self.imgs if img.picture)
        book = text.NgramBook(img.alt for img in self.imgs)
        for _ in range(12):
            weak = [img for img in guarded if book.weakest(img.alt, img.rare) < MIN_NGRAM_COUNT]
            if not weak:
                break
            for img in weak:
                book.remove(img.alt)
                best, best_attrs, best_token = img.alt, None, img.rare
                best_score = book.weakest(img.alt, img.rare)
                for _ in range(100):
                    candidate, attrs, token = self._remake(img)
                    if self.alt_uses[candidate] >= MAX_USES.get(img.caption, 1):
                        continue
                    score = book.weakest(candidate, token)
                    if score > best_score:
                        best, best_attrs, best_token, best_score = candidate, attrs, token, score
                    if score >= MIN_NGRAM_COUNT - 1:
                        break
                if best != img.alt:
                    self.alt_uses[img.alt] -= 1
                    self.alt_uses[best] += 1
                    img.alt, img.rare = best, best_token
                    if best_attrs:
                        self._redraw(img.picture, best_attrs)
                book.add(img.alt)

    def plan_duplicates(self) -> None:
        """The same (url, alt) on a second page, which the crawl must deduplicate."""
        clean = [
            img
            for img in self.imgs
            if img.caption == "template" and img.noise is None and img.consent is None
        ]
        for img in self.rng.sample(clean, min(len(clean), self.config.n_duplicates)):
            copy = Img(
                img.picture, img.host, img.path, img.alt, img.caption, img.language, duplicate=True
            )
            self.imgs.append(copy)

    def plan_not_emitted(self) -> None:
        """<img> tags the crawl must skip: no alt, an empty alt, a non-http(s) src."""
        n = int(round(self.config.rate_not_emitted * self.config.n_pairs))
        pictures = [img.picture for img in self.imgs if img.picture and img.noise is None]
        for k in range(n):
            picture = self.rng.choice(pictures)
            kind = k % 4
            if kind == 0:
                img = Img(
                    picture, picture.host, picture.path, "", "missing", None, alt_attribute=False
                )
            elif kind == 1:
                img = Img(picture, picture.host, picture.path, "", "empty", None)
            else:
                alt = text.clean_caption(self.rng, picture.attrs or self.any_attrs())
                raw = (
                    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
                    if kind == 2
                    else f"ftp://{host_ip(picture.host)}{picture.path}"
                )
                img = Img(None, 0, "", alt, "template", "en", raw_src=raw)
            img.emitted = False
            self.imgs.append(img)

    def check(self) -> None:
        """Invariants the rest of the project relies on."""
        seen = set()
        for img in self.imgs:
            if img.emitted and not img.duplicate:
                key = (img.host, img.path, img.alt)
                if key in seen:
                    raise AssertionError(f"(url, alt) planned twice: {key}")
                seen.add(key)


def page_count(n_imgs: int, per_page: tuple[int, int]) -> int:
    return max(1, math.ceil(n_imgs / ((per_page[0] + per_page[1]) / 2)))

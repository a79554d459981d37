"""HTML pages of the synthetic web, in the varied markup a crawler meets: every way to write a src,
entities and odd whitespace in alt-texts, uppercase tags, lazy loading, several charsets."""

from __future__ import annotations

import html
import posixpath
import random
from dataclasses import dataclass, field
from urllib.parse import urljoin

from tools.synth_plan import DECOY_SIGNALS, RESERVED_PAGES, Img, host_ip

CHARSETS = (("utf-8", 0.6), ("iso-8859-1", 0.15), ("windows-1252", 0.15), ("undeclared", 0.1))
PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
PARAGRAPHS = (
    "Welcome to our little shop of shapes – we draw them by hand every week.",
    "Our café corner sells prints and posters; prices start at 5 € or 4 £.",
    "Every picture on this page is original work, naïve or not, and free to admire.",
    "Scroll down to see the newest drawings from the studio and the archive.",
    "Questions? Write to the studio team; we answer within two days.",
)


@dataclass
class Page:
    index: int
    path: str
    imgs: list[Img]
    charset: str = "utf-8"  # the encoding of the bytes
    declared: str = "header"  # where the charset is declared: header, meta, http_equiv, both, none
    base_host: int | None = None  # <base href="http://<host>/img/"> when set
    uppercase: bool = False
    links: list[str] = field(default_factory=list)
    headers: tuple = ()  # extra response headers: (name, value), a name may repeat
    metas: tuple = ()  # <meta name content> tags: (name, content)
    consent: str | None = None  # the signal that reserves the whole page


def page_url(port: int, path: str) -> str:
    return f"http://{host_ip(0)}:{port}{path}"


def image_url(port: int, host: int, path: str) -> str:
    return f"http://{host_ip(host)}:{port}{path}"


def make_pages(imgs: list[Img], n_pages: int, rng: random.Random, config) -> list[Page]:
    """Deals the shuffled occurrences out to pages and draws each page's markup options."""
    order = list(imgs)
    rng.shuffle(order)
    pages = []
    cuts = sorted(rng.sample(range(1, len(order)), n_pages - 1)) if n_pages > 1 else []
    bounds = [0, *cuts, len(order)]
    for index in range(n_pages):
        chunk = order[bounds[index] : bounds[index + 1]]
        folder = "pages" if index % 3 else f"blog/{2019 + index % 4}/{index % 12 + 1:02d}"
        charset = rng.choices([c for c, _ in CHARSETS], [w for _, w in CHARSETS])[0]
        declared = (
            "none"
            if charset == "undeclared"
            else rng.choice(("header", "meta", "http_equiv", "both"))
        )
        page = Page(
            index,
            f"/{folder}/{index:05d}.html",
            chunk,
            charset="utf-8" if charset == "undeclared" else charset,
            declared=declared,
            base_host=rng.randint(1, config.n_image_hosts) if rng.random() < 0.15 else None,
            uppercase=rng.random() < 0.12,
        )
        pages.append(page)
    for page in pages:
        others = rng.sample(pages, min(3, len(pages)))
        page.links = [other.path for other in others if other is not page]
        if page.index % 7 == 1:  # a signal that reserves nothing for our agent
            page.headers, page.metas = DECOY_SIGNALS[page.index // 7 % len(DECOY_SIGNALS)]
    return pages


def reserved_pages(imgs: list[Img], first_index: int) -> list[Page]:
    """One page per RESERVED_PAGES entry, holding the <img> tags planned for it, with the
    entry's headers and <meta> tags."""
    pages = []
    for number, (signal, headers, metas) in enumerate(RESERVED_PAGES):
        index = first_index + number
        chunk = [img for img in imgs if img.reserved_page == number]
        page = Page(index, f"/reserved/{index:05d}.html", chunk, headers=headers, metas=metas)
        page.consent = signal
        pages.append(page)
    return pages


def content_type(page: Page) -> str:
    """The HTTP Content-Type header of a page (with a charset only when the header declares it)."""
    if page.declared in ("header", "both"):
        return f"text/html; charset={page.charset}"
    return "text/html"


def _src_forms(page: Page, url: str, port: int) -> list[str]:
    """Every way to write ``url`` in an <img src> on ``page`` that resolves back to it."""
    page_abs = page_url(port, page.path)
    base = image_url(port, page.base_host, "/img/") if page.base_host else None
    forms = [url, url.replace("http:", "", 1)]
    if base is None and url.startswith(page_url(port, "/")):
        path = url[len(page_url(port, "")) :]
        forms += [path, posixpath.relpath(path, posixpath.dirname(page.path))]
    if base is not None and url.startswith(base):
        forms += [url[len(base) :]] * 2
    resolved = base or page_abs
    return [form for form in forms if urljoin(resolved, form) == url]


def _encode_alt(alt: str, rng: random.Random) -> str:
    """The alt attribute's escaped value: sometimes with numeric entities, &nbsp; or newlines
    that decode and normalise back to ``alt``."""
    out = []
    mangle = rng.random() < 0.3
    for ch in alt:
        if ch == " " and mangle and rng.random() < 0.2:
            out.append(rng.choice(("&nbsp;", "\n  ", "  ", "\t")))
        elif mangle and ch.isalpha() and rng.random() < 0.1:
            out.append(rng.choice((f"&#{ord(ch)};", f"&#x{ord(ch):x};")))
        else:
            out.append(html.escape(ch, quote=True))
    value = "".join(out)
    if mangle and rng.random() < 0.3:
        value = f" {value}\n"
    return value


def img_tag(page: Page, img: Img, port: int, rng: random.Random) -> tuple[str, dict]:
    """The markup of one <img>, and the WAT link entry a Common Crawl WAT would list for it."""
    up = str.upper if page.uppercase else str
    attrs: list[str] = []
    if img.raw_src is not None:
        src, effective = img.raw_src, img.raw_src
        attrs.append(f'{up("src")}="{html.escape(src)}"')
    else:
        effective = image_url(port, img.host, img.path)
        src = rng.choice(_src_forms(page, effective, port))
        lazy = rng.random() < 0.08
        if lazy and rng.random() < 0.5:
            attrs.append(f'{up("data-src")}="{src}"')
        elif lazy:
            attrs += [f'{up("src")}="{PLACEHOLDER}"', f'{up("data-src")}="{src}"']
        elif rng.random() < 0.08:  # unquoted
            attrs.append(f"{up('src')}={src}")
        else:
            attrs.append(f'{up("src")}="{src}"')
        if not lazy and rng.random() < 0.1:
            attrs.append(f'{up("srcset")}="{src} 1x, {src.rsplit(".", 1)[0]}@2x.jpg 2x"')
        if rng.random() < 0.2:
            attrs.append(f'{up("loading")}="lazy"')
    link = {"path": "IMG@/src", "url": effective}
    if img.alt_attribute:
        if img.caption == "empty":
            raw = rng.choice(("", "   ", "\n"))
        else:
            raw = _encode_alt(img.alt, rng)
        quote = "'" if "'" not in raw and rng.random() < 0.2 else '"'
        attrs.append(f"{up('alt')}={quote}{raw}{quote}")
        link["alt"] = html.unescape(raw)
    if rng.random() < 0.3:
        attrs.append(f'{up("width")}="{rng.randint(100, 400)}"')
    rng.shuffle(attrs)
    return f"<{up('img')} {' '.join(attrs)}>", link


def render_page(page: Page, port: int, seed: int) -> tuple[bytes, list[dict], dict]:
    """The page's bytes, its WAT link entries and its WAT head metadata."""
    rng = random.Random(f"synthweb:{seed}:page:{page.index}")
    up = str.upper if page.uppercase else str
    title = f"Shapes and pictures, page {page.index}"
    head = [f"<{up('title')}>{title}</{up('title')}>"]
    if page.declared in ("meta", "both"):
        head.insert(0, f'<{up("meta")} {up("charset")}="{page.charset}">')
    elif page.declared == "http_equiv":
        head.insert(
            0, f'<meta http-equiv="Content-Type" content="text/html; charset={page.charset}">'
        )
    metas = [{"name": name, "content": content} for name, content in page.metas]
    for name, content in page.metas:
        head.append(f'<{up("meta")} name="{name}" content="{html.escape(content)}">')
    if page.base_host:
        base = image_url(port, page.base_host, "/img/")
        head.append(f'<{up("base")} {up("href")}="{base}">')
    links: list[dict] = []
    body = [f"<{up('h1')}>{title}</{up('h1')}>"]
    for k, img in enumerate(page.imgs):
        tag, link = img_tag(page, img, port, rng)
        links.append(link)
        if k % 3 == 0:
            body.append(f"<{up('p')}>{rng.choice(PARAGRAPHS)}</{up('p')}>")
        body.append(f"<{up('figure')}>{tag}</{up('figure')}>")
    if page.index % 5 == 0:  # a commented-out tag is no <img>: the crawl must not emit it
        body.append('<!-- <img src="/assets/old.jpg" alt="an old picture we took down"> -->')
    nav = []
    for target in page.links:
        nav.append(f'<{up("a")} {up("href")}="{target}">more pictures</{up("a")}>')
        links.append({"path": "A@/href", "url": page_url(port, target), "text": "more pictures"})
    document = (
        f'<!DOCTYPE html>\n<{up("html")} lang="en">\n<{up("head")}>\n'
        + "\n".join(head)
        + f"\n</{up('head')}>\n<{up('body')}>\n<{up('nav')}>{' '.join(nav)}</{up('nav')}>\n"
        + "\n".join(body)
        + f"\n</{up('body')}>\n</{up('html')}>\n"
    )
    head_meta = {"Title": title, "Metas": metas}
    if page.base_host:
        head_meta["Base"] = image_url(port, page.base_host, "/img/")
    return document.encode(page.charset, errors="xmlcharrefreplace"), links, head_meta

"""Specification of HTML -> (image URL, alt-text) extraction: URLs, alt-texts, charsets, caps."""

import pytest

from pipeline.crawl.extract import (
    best_srcset_candidate,
    decode_html,
    extract_pairs,
    page_pairs,
)
from pipeline.pairs import normalise_alt, resolve_url

PAGE = "http://example.com/dir/page.html"


@pytest.mark.parametrize(
    "html, expected",
    [
        ('<img src="a.jpg" alt="x">', [("http://example.com/dir/a.jpg", "x")]),
        ('<img src="/img/a.jpg" alt="x">', [("http://example.com/img/a.jpg", "x")]),
        ('<img src="../up.jpg" alt="x">', [("http://example.com/up.jpg", "x")]),
        ('<img src="//cdn.example.org/a.jpg" alt="x">', [("http://cdn.example.org/a.jpg", "x")]),
        (
            '<base href="https://static.example.net/assets/"><img src="b.png" alt="x">',
            [("https://static.example.net/assets/b.png", "x")],
        ),
        ('<base href="/x/"><img src="b.png" alt="x">', [("http://example.com/x/b.png", "x")]),
        (
            '<base href="/first/"><base href="/second/"><img src="b.png" alt="x">',
            [("http://example.com/first/b.png", "x")],
        ),
        ('<base target="_top"><img src="b.png" alt="x">', [("http://example.com/dir/b.png", "x")]),
        ('<IMG SRC="Up.JPG" ALT="Upper case">', [("http://example.com/dir/Up.JPG", "Upper case")]),
        ("<img src=a.jpg alt=unquoted>", [("http://example.com/dir/a.jpg", "unquoted")]),
        ("<img src='a.jpg' alt='say \"hi\"'>", [("http://example.com/dir/a.jpg", 'say "hi"')]),
        (
            '<img src="a.jpg" alt="Tom &amp; Jerry &eacute;t&#233; &#x263A; &lt;3">',
            [("http://example.com/dir/a.jpg", "Tom & Jerry été ☺ <3")],
        ),
        (
            '<img src="a.jpg" alt="  two \n\t words  ">',
            [("http://example.com/dir/a.jpg", "two words")],
        ),
        ('<img src="a.jpg?x=1&amp;y=2" alt="q">', [("http://example.com/dir/a.jpg?x=1&y=2", "q")]),
        ('<img src=" \n a.jpg\t" alt="x">', [("http://example.com/dir/a.jpg", "x")]),
        (
            '<img srcset="s.jpg 300w, l.jpg 1200w, m.jpg 600w" alt="x">',
            [("http://example.com/dir/l.jpg", "x")],
        ),
        ('<img srcset="one.jpg, two.jpg 2x" alt="x">', [("http://example.com/dir/two.jpg", "x")]),
        ('<img src="" data-src="lazy.jpg" alt="x">', [("http://example.com/dir/lazy.jpg", "x")]),
        (
            '<img src="data:image/gif;base64,R0lG" data-src="lazy.jpg" alt="x">',
            [("http://example.com/dir/lazy.jpg", "x")],
        ),
        ('<img src="a.jpg" alt="">', []),
        ('<img src="a.jpg" alt="   ">', []),
        ('<img src="a.jpg">', []),
        ('<img src="javascript:void(0)" alt="x">', []),
        ('<img src="ftp://example.com/a.jpg" alt="x">', []),
        ('<img src="data:image/png;base64,iVBO" alt="x">', []),
        ('<img src="http://[::1/a.jpg" alt="x">', []),
        ('<img src="http://a:99999/x.jpg" alt="x">', []),
        ('<img src="http://exa mple.com/a.jpg" alt="x">', []),
        ('<img alt="no source">', []),
        (
            "<table><tr><td><div><img src=a.jpg alt=broken></span></p></td>",
            [("http://example.com/dir/a.jpg", "broken")],
        ),
        ('<img src=a.jpg alt="x"<p>never closed', [("http://example.com/dir/a.jpg", "x")]),
        ('<img src="a.jpg" alt="a\x01b\x7fc">', [("http://example.com/dir/a.jpg", "abc")]),
        (
            '<img src="a.jpg" alt="مرحبا بالعالم">',
            [("http://example.com/dir/a.jpg", "مرحبا بالعالم")],
        ),
        (
            '<p><img src="1.jpg" alt="one"><img src="2.jpg" alt="two"></p>',
            [("http://example.com/dir/1.jpg", "one"), ("http://example.com/dir/2.jpg", "two")],
        ),
    ],
)
def test_extracts_the_pairs_a_browser_would_show(html, expected):
    assert extract_pairs(html, PAGE).pairs == expected


def test_empty_alt_images_are_emitted_only_when_asked():
    html = '<img src="a.jpg" alt=""><img src="b.jpg">'
    assert extract_pairs(html, PAGE).pairs == []
    both = extract_pairs(html, PAGE, include_empty_alt=True).pairs
    assert both == [("http://example.com/dir/a.jpg", ""), ("http://example.com/dir/b.jpg", "")]


def test_every_img_is_counted_under_one_outcome():
    html = (
        '<img src="a.jpg" alt="ok"><img src="b.jpg"><img alt="no src">'
        '<img src="mailto:x@y" alt="m"><img src="http://[x" alt="bad">'
    )
    counts = extract_pairs(html, PAGE).counts
    assert counts == {
        "img/seen": 5,
        "img/pair": 1,
        "img/empty_alt": 1,
        "img/no_src": 1,
        "img/not_http": 1,
        "img/invalid_url": 1,
    }


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("a.jpg", ("http://example.com/dir/a.jpg", "ok")),
        ("", (None, "no_src")),
        (None, (None, "no_src")),
        ("mailto:a@b", (None, "not_http")),
        ("http://[::1", (None, "invalid_url")),
        ("https:", (None, "invalid_url")),
    ],
)
def test_resolve_url_names_why_a_reference_is_unusable(reference, expected):
    assert resolve_url(PAGE, reference) == expected


def test_srcset_picks_the_widest_candidate():
    assert best_srcset_candidate("a.jpg 100w, b.jpg 900w, c.jpg 300w") == "b.jpg"
    assert best_srcset_candidate("a.jpg") == "a.jpg"
    assert best_srcset_candidate("") is None


def test_alt_keeps_long_text_whole():
    alt = "word " * 20_000  # 100 kB: the filter's length rule rejects it, the crawl keeps it
    pairs = extract_pairs(f'<img src="a.jpg" alt="{alt}">', PAGE).pairs
    assert pairs == [("http://example.com/dir/a.jpg", alt.strip())]


def test_normalise_alt_strips_controls_and_collapses_whitespace():
    assert normalise_alt("\x00 a\x1b\u200fb \u00a0\n c\x85") == "a\u200fb c"


@pytest.mark.parametrize(
    "body, content_type, text, source",
    [
        ("<p>café</p>".encode("latin-1"), "text/html; charset=ISO-8859-1", "café", "http"),
        ("<p>€ sign</p>".encode("cp1252"), 'text/html; charset="latin1"', "€ sign", "http"),
        (
            '<meta charset="windows-1251"><p>привет</p>'.encode("cp1251"),
            "text/html",
            "привет",
            "meta",
        ),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
            "<p>日本語".encode("shift_jis"),
            None,
            "日本語",
            "meta",
        ),
        (
            '<meta charset="iso-8859-1"><p>naïve</p>'.encode(),
            "text/html; charset=utf-8",
            "naïve",
            "http",
        ),
        (
            "\ufeff<p>bom wins</p>".encode("utf-16-le"),
            "text/html; charset=latin1",
            "bom wins",
            "bom",
        ),
        (
            ("<p>" + "Съешь же ещё этих мягких французских булок. " * 8).encode("cp1251"),
            "text/html",
            "Съешь же ещё",
            "detected",
        ),
        (
            b'<meta charset="bogus-label"><p>plain ascii</p>',
            None,
            "plain ascii",
            "detected",
        ),
    ],
)
def test_charset_comes_from_bom_header_meta_then_detection(body, content_type, text, source):
    decoded = decode_html(body, content_type)
    assert text in decoded.text and decoded.source == source and not decoded.had_errors


def test_undecodable_bytes_become_replacement_characters_and_are_counted():
    body = b'<img src="a.jpg" alt="ok \xff\xfe bytes">'
    scan = page_pairs(body, "text/html; charset=utf-8", PAGE)
    assert scan.pairs == [("http://example.com/dir/a.jpg", "ok \ufffd\ufffd bytes")]
    assert scan.counts["charset/decode_errors"] == 1


def test_pages_above_the_cap_are_truncated_not_dropped():
    head = b'<img src="early.jpg" alt="early">'
    body = head + b"<p>filler</p>" * 1000 + b'<img src="late.jpg" alt="late">'
    scan = page_pairs(body, "text/html", PAGE, max_page_bytes=len(head) + 100)
    assert scan.pairs == [("http://example.com/dir/early.jpg", "early")]
    assert scan.counts["pages/truncated"] == 1

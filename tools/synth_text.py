"""Alt-texts of the synthetic web: clean captions from templates and every kind of textual noise.

Clean captions use a small closed vocabulary (templates x class words), so every unigram and
bigram of a clean caption is frequent in even a few hundred pairs; noise is made on purpose:
unique rare tokens, 1-2 word and 21+ word alt-texts, boilerplate, non-English sentences.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable

COLOURS = ("red", "green", "blue", "yellow", "purple")
SHAPES = ("circle", "square", "triangle", "star", "cross")
PLURALS = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "star": "stars",
    "cross": "crosses",
}
BACKGROUNDS = ("plain", "striped", "dotted", "checkered", "gradient", "grainy")
SIZES = ("small", "medium", "large")
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
CLASS_NAMES = tuple(f"{colour} {shape}" for colour in COLOURS for shape in SHAPES)

# Templates of a clean English caption: {np} is the noun phrase, {bg} the background phrase.
TEMPLATES = (
    "a photo of {np}",
    "a photo of {np} {bg}",
    "a picture of {np} {bg}",
    "{np} {bg}",
    "an image showing {np} {bg}",
    "an image showing {np}",
    "this is {np} {bg}",
    "here you can see {np}",
    "here you can see {np} {bg}",
    "a simple drawing of {np} {bg}",
    "a close up photo of {np}",
    "our new poster with {np}",
    "our new poster with {np} {bg}",
    "a bright illustration of {np} {bg}",
    "a nice print of {np}",
    "a nice print of {np} {bg}",
    "a picture of {np}",
    "this is {np}",
    "a simple drawing of {np}",
    "a bright illustration of {np}",
    "the drawing shows {np}",
    "the drawing shows {np} {bg}",
    "a sticker with {np}",
    "a sticker with {np} {bg}",
)
SIZE_WORDS = {"small": ("small", "tiny"), "medium": ("",), "large": ("large", "big")}

# Photographs from scikit-image: name -> subject phrases (each a noun phrase).
PHOTO_SUBJECTS = {
    "astronaut": ("an astronaut in a white space suit", "a smiling astronaut"),
    "coffee": ("a cup of coffee", "a cup of coffee on a saucer"),
    "chelsea": ("a ginger cat", "a ginger cat looking at the camera"),
    "rocket": ("a rocket on the launch pad", "a big rocket"),
    "hubble_deep_field": ("distant galaxies in deep space", "a view of deep space"),
    "camera": ("a man with an old camera", "a man holding a camera"),
    "coins": ("a set of old coins", "old coins on a dark table"),
    "immunohistochemistry": ("cells under a microscope", "a slide of stained cells"),
}
PHOTO_PREFIXES = (
    "a photo of",
    "a picture of",
    "a close up photo of",
    "here you can see",
    "an image showing",
    "this is",
    "a nice print of",
    "our new poster with",
)
PHOTO_SUFFIXES = (
    "",
    "from our collection",
    "from the archive",
    "in high quality",
    "for the new catalogue",
    "from the gallery",
    "on our website",
    "for sale",
)

# Alt-texts shared by many unrelated images ("> 10 images per alt-text" in ALIGN).
BOILERPLATE = (
    "image",
    "logo",
    "IMG_2031.JPG",
    "1920x1080",
    "click to enlarge",
    "product image",
    "photo",
    "thumbnail",
    "DSC00042.jpg",
    "view larger image",
    "no image available",
    "banner",
)
NON_TEXT_BOILERPLATE = {"IMG_2031.JPG", "1920x1080", "DSC00042.jpg"}
BOUNDARY_ALTS = {
    10: "a picture from our spring catalogue",
    11: "a picture from our summer catalogue",
}
TOO_LONG_TAIL = "and this is {np} {bg} and we like it a lot"

# Non-English sentences: language -> (templates over {np}, noun phrase builder).
_DE_ADJ = {
    "red": "roten",
    "green": "grünen",
    "blue": "blauen",
    "yellow": "gelben",
    "purple": "lila",
}
_DE_NOUN = {
    "circle": "Kreis",
    "square": "Quadrat",
    "triangle": "Dreieck",
    "star": "Stern",
    "cross": "Kreuz",
}
_FR_NOUN = {
    "circle": ("un", "cercle"),
    "square": ("un", "carré"),
    "triangle": ("un", "triangle"),
    "star": ("une", "étoile"),
    "cross": ("une", "croix"),
}
_FR_ADJ = {
    "red": ("rouge", "rouge"),
    "green": ("vert", "verte"),
    "blue": ("bleu", "bleue"),
    "yellow": ("jaune", "jaune"),
    "purple": ("violet", "violette"),
}
_ES_NOUN = {
    "circle": ("un", "círculo"),
    "square": ("un", "cuadrado"),
    "triangle": ("un", "triángulo"),
    "star": ("una", "estrella"),
    "cross": ("una", "cruz"),
}
_ES_ADJ = {
    "red": ("rojo", "roja"),
    "green": ("verde", "verde"),
    "blue": ("azul", "azul"),
    "yellow": ("amarillo", "amarilla"),
    "purple": ("morado", "morada"),
}
_IT_NOUN = {
    "circle": ("un", "cerchio"),
    "square": ("un", "quadrato"),
    "triangle": ("un", "triangolo"),
    "star": ("una", "stella"),
    "cross": ("una", "croce"),
}
_IT_ADJ = {
    "red": ("rosso", "rossa"),
    "green": ("verde", "verde"),
    "blue": ("blu", "blu"),
    "yellow": ("giallo", "gialla"),
    "purple": ("viola", "viola"),
}


def _de(colour: str, shape: str) -> str:
    return f"einem {_DE_ADJ[colour]} {_DE_NOUN[shape]}"


def _romance(nouns: dict, adjectives: dict) -> Callable[[str, str], str]:
    def phrase(colour: str, shape: str) -> str:
        article, noun = nouns[shape]
        adjective = adjectives[colour][0 if article == "un" else 1]
        return f"{article} {noun} {adjective}"

    return phrase


FOREIGN = {
    "de": (
        (
            "Das ist ein schönes Bild mit {np} in der Mitte",
            "Hier sieht man ein Foto von {np} auf weißem Hintergrund",
            "Ein einfaches Bild mit {np} für unsere Kunden",
            "Wir zeigen Ihnen hier ein Bild mit {np}",
            "Auf diesem Foto sieht man {np} und sonst nichts",
            "Ein neues Plakat mit {np} für die Küche",
        ),
        _de,
    ),
    "fr": (
        (
            "Voici une belle image avec {np} au milieu de la page",
            "C'est une photo avec {np} sur un fond très simple",
            "Nous avons dessiné {np} pour notre nouvelle affiche",
            "Une image très simple qui montre {np} sur le fond",
            "Sur cette photo on voit {np} et rien de plus",
            "Une nouvelle affiche avec {np} pour la cuisine",
        ),
        _romance(_FR_NOUN, _FR_ADJ),
    ),
    "es": (
        (
            "Esta es una imagen bonita con {np} en el centro",
            "Aquí puedes ver una foto de {np} sobre el fondo",
            "Hemos dibujado {np} para nuestro nuevo cartel",
            "Una imagen muy sencilla que muestra {np} en la página",
            "En esta foto se ve {np} y nada más",
            "Un cartel nuevo con {np} para la cocina",
        ),
        _romance(_ES_NOUN, _ES_ADJ),
    ),
    "it": (
        (
            "Questa è una bella immagine con {np} al centro della pagina",
            "Qui puoi vedere una foto di {np} sullo sfondo",
            "Abbiamo disegnato {np} per il nostro nuovo manifesto",
            "Una immagine molto semplice che mostra {np} sulla pagina",
            "In questa foto si vede {np} e niente altro",
            "Un nuovo manifesto con {np} per la cucina",
        ),
        _romance(_IT_NOUN, _IT_ADJ),
    ),
}

_TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*")  # the tokens filters/text.py counts


def ngrams(text: str) -> list[str]:
    """Lower-cased unigrams and bigrams (as "a b") of a text: what a rare-token rule counts."""
    words = _TOKEN.findall(text.casefold())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def noun_phrase(rng: random.Random, colour: str, shape: str, count: int, size: str) -> str:
    """An English noun phrase for ``count`` objects of one class, with an optional size word."""
    size_word = rng.choice(SIZE_WORDS[size]) if rng.random() < 0.5 else ""
    adjectives = " ".join(word for word in (size_word, colour) if word)
    if count == 1:
        article = rng.choice(("a", "a", "one", "a single"))
        return f"{article} {adjectives} {shape}"
    head = rng.choice((COUNT_WORDS[count], COUNT_WORDS[count], f"a group of {COUNT_WORDS[count]}"))
    return f"{head} {adjectives} {PLURALS[shape]}"


def background_phrase(background: str) -> str:
    return f"on a {background} background"


def clean_caption(rng: random.Random, attrs: dict) -> str:
    """A caption that describes a rendered picture: its colour, shape, count, size, background."""
    template = rng.choice(TEMPLATES)
    np_ = noun_phrase(rng, attrs["colour"], attrs["shape"], attrs["count"], attrs["size"])
    return template.format(np=np_, bg=background_phrase(attrs["background"]))


def photo_caption(rng: random.Random, photo: str, variants: int = 2, suffixes: int = 8) -> str:
    """A caption of a photograph; fewer phrasings for fewer photos keeps every phrase frequent."""
    subject = rng.choice(PHOTO_SUBJECTS[photo][:variants])
    parts = (rng.choice(PHOTO_PREFIXES), subject, rng.choice(PHOTO_SUFFIXES[:suffixes]))
    return " ".join(part for part in parts if part)


def too_short_options(attrs: dict) -> list[str]:
    """Every one- or two-word alt-text that is true of a picture."""
    shape, plural = attrs["shape"], PLURALS[attrs["shape"]]
    noun = shape if attrs["count"] == 1 else plural
    options = [noun, f"{attrs['colour']} {noun}"]
    options += [f"{word} {noun}" for word in SIZE_WORDS[attrs["size"]] if word]
    if attrs["count"] > 1:
        options.append(f"{COUNT_WORDS[attrs['count']]} {plural}")
    return options


def too_short_caption(rng: random.Random, attrs: dict) -> str:
    """One or two words naming the class: true, but under ALIGN's 3-word minimum."""
    return rng.choice(too_short_options(attrs))


def too_long_caption(rng: random.Random, attrs: dict) -> str:
    """A true description padded past ALIGN's 20-word maximum with frequent words only."""
    head = rng.choice([t for t in TEMPLATES if t.endswith("{bg}")])
    bg = background_phrase(attrs["background"])
    first = noun_phrase(rng, attrs["colour"], attrs["shape"], attrs["count"], attrs["size"])
    second = noun_phrase(rng, attrs["colour"], attrs["shape"], attrs["count"], attrs["size"])
    text = f"{head.format(np=first, bg=bg)} {TOO_LONG_TAIL.format(np=second, bg=bg)}"
    return " ".join(text.split())


def foreign_caption(rng: random.Random, language: str, attrs: dict) -> str:
    templates, phrase = FOREIGN[language]
    return rng.choice(templates).format(np=phrase(attrs["colour"], attrs["shape"]))


_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def rare_token(rng: random.Random, caption: str, taken: set[str], vocabulary: set[str]) -> str:
    """A token that occurs nowhere else: an SKU code, a hash or a typo of a caption word."""
    while True:
        kind = rng.choice(("sku", "hash", "typo", "model"))
        if kind == "sku":
            token = "SKU" + "".join(rng.choice(_ALNUM) for _ in range(7))
        elif kind == "hash":
            token = "".join(rng.choice("0123456789abcdef") for _ in range(10))
        elif kind == "model":
            token = "XR" + "".join(rng.choice("0123456789") for _ in range(5))
        else:
            words = [w for w in caption.split() if len(w) >= 4 and w.isalpha()]
            token = _typo(rng, rng.choice(words)) if words else ""
        if token and token.lower() not in vocabulary and token.lower() not in taken:
            taken.add(token.lower())
            return token


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 1)
    edit = rng.choice(("swap", "drop", "double", "replace"))
    if edit == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "drop":
        return word[:i] + word[i + 1 :]
    if edit == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("qxzjkvw") + word[i + 1 :]


def with_rare_token(rng: random.Random, caption: str, token: str) -> str:
    words = caption.split()
    if token.isalpha():  # a typo replaces the word it misspells
        for i, word in enumerate(words):
            if _close(word, token):
                words[i] = token
                return " ".join(words)
    words.insert(rng.randrange(len(words) + 1), token)
    return " ".join(words)


def _close(word: str, typo: str) -> bool:
    return abs(len(word) - len(typo)) <= 1 and word[0] == typo[0] and word != typo


class NgramBook:
    """Counts of every unigram and bigram over the web's alt-texts, kept up to date on edits."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.counts: Counter[str] = Counter()
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        self.counts.update(ngrams(text))

    def remove(self, text: str) -> None:
        self.counts.subtract(ngrams(text))

    def weakest(self, text: str, ignore: str | None = None) -> int:
        """The count of the rarest n-gram of ``text``, leaving out those holding ``ignore``
        (a rare token put there on purpose)."""
        ignored = ignore.casefold() if ignore else None
        grams = [g for g in ngrams(text) if ignored is None or ignored not in g.split(" ")]
        return min((self.counts[g] for g in grams), default=0)


def vocabulary() -> set[str]:
    """Every word a clean caption may use; rare tokens and typos are chosen outside it."""
    words: set[str] = set(COLOURS) | set(SHAPES) | set(PLURALS.values()) | set(BACKGROUNDS)
    texts = list(TEMPLATES) + list(PHOTO_PREFIXES) + list(PHOTO_SUFFIXES) + [TOO_LONG_TAIL]
    texts += [p for phrases in PHOTO_SUBJECTS.values() for p in phrases] + list(BOILERPLATE)
    texts += list(BOUNDARY_ALTS.values()) + ["a one single group of two three tiny large big small"]
    texts += ["on background"]
    for text in texts:
        words.update(w for w in ngrams(text) if " " not in w)
    for templates, _ in FOREIGN.values():
        for text in templates:
            words.update(w for w in ngrams(text) if " " not in w)
    return words

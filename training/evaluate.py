"""align-eval: zero-shot classification and image-text retrieval from an export alone.

The export's SavedModel takes the texts and the image files' bytes (training.encoders), so
evaluation preprocesses exactly as the trainer and every other user of the export. Texts
(class prompts, captions) are embedded first; images then stream through in chunks, so memory
holds N x D embeddings at most, never an N x M similarity matrix (scores are computed in
blocks by ``training.metrics``). Both tasks print a table with the chance level beside each
figure and can write the metrics as JSON. The command line is training/cli/evaluate.py.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf

from training import metrics
from training.config import UsageError
from training.encoders import DEFAULT_BATCH_SIZE, Encoders, ExportError, ImageDecodeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Prompt ensemble (CLIP's ImageNet templates, as ALIGN used for zero-shot): class embeddings are
# the re-normalised mean of the prompts' embeddings.
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a drawing of a {}.",
    "itap of a {}.",
    "a {}.",
)
IMAGE_CHUNK = 1024  # images per embedding call: bounds decoded pixels held at once
TEXT_CHUNK = 8192
MEMMAP_BYTES = 1 << 30  # embeddings larger than this go to a temporary memmap


class ImageTextEncoders(Protocol):
    """What evaluation needs: Encoders, or a live model wrapped by the trainer."""

    def embed_images(self, images) -> np.ndarray: ...

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ZeroShotSet:
    class_names: list[str]
    images: list[str]
    labels: list[int]


@dataclass(frozen=True)
class RetrievalSet:
    images: list[str]
    captions: list[str]
    text_image: list[int]  # caption index -> image index


# --- datasets ------------------------------------------------------------------------------


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _read_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "r") as handle:
        return handle.read()


def _read_class_names(path: str) -> list[str]:
    names = [line.strip() for line in _read_text(path).splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"{path} repeats class {duplicates[0]!r}")
    return names


def load_zero_shot(path: str) -> ZeroShotSet:
    """A class-per-folder tree (``root/<class>/*.jpg``) or a CSV of ``path,label`` rows.

    Class names come from ``classes.txt`` beside them (one per line; a folder matches a line
    equal to its name or to its name with ``_`` read as a space), else from the folder names
    (or CSV labels) with ``_`` read as a space. Classes listed without images still compete.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"zero-shot set {path} does not exist")
    if path.lower().endswith(".csv"):
        return _zero_shot_from_csv(path)
    folders = sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(path)
        if tf.io.gfile.isdir(os.path.join(path, name))
    )
    files = {
        f: sorted(n for n in tf.io.gfile.listdir(os.path.join(path, f)) if _is_image(n))
        for f in folders
    }
    folders = [f for f in folders if files[f]]
    classes_txt = os.path.join(path, "classes.txt")
    if tf.io.gfile.exists(classes_txt):
        class_names = _read_class_names(classes_txt)
    else:
        class_names = [f.replace("_", " ") for f in folders]
    index = _class_index(class_names, classes_txt)
    images, labels = [], []
    for folder in folders:
        label = index.get(folder, index.get(folder.replace("_", " ")))
        if label is None:
            raise UsageError(f"folder {folder!r} of {path} is not a class in {classes_txt}")
        images += [os.path.join(path, folder, name) for name in files[folder]]
        labels += [label] * len(files[folder])
    return _checked(ZeroShotSet(class_names, images, labels), path)


def _class_index(class_names: list[str], source: str) -> dict[str, int]:
    index = {}
    for i, name in enumerate(class_names):
        if name in index:
            raise UsageError(f"class {name!r} appears twice in {source}")
        index[name] = i
    return index


def _zero_shot_from_csv(path: str) -> ZeroShotSet:
    root = os.path.dirname(path)
    rows = [row for row in csv.reader(io.StringIO(_read_text(path))) if row]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    bad = next((n for n, row in enumerate(rows, 1) if len(row) != 2), None)
    if bad is not None:
        raise UsageError(f"{path}: row {bad} is not 'path,label'")
    classes_txt = os.path.join(root, "classes.txt")
    if tf.io.gfile.exists(classes_txt):
        class_names = _read_class_names(classes_txt)
    else:
        class_names = sorted({label.strip().replace("_", " ") for _, label in rows})
    index = _class_index(class_names, classes_txt)
    images, labels = [], []
    for name, label in rows:
        label = label.strip()
        found = index.get(label, index.get(label.replace("_", " ")))
        if found is None:
            raise UsageError(f"{path}: label {label!r} is not a class in {classes_txt}")
        images.append(name if "://" in name or os.path.isabs(name) else os.path.join(root, name))
        labels.append(found)
    return _checked(ZeroShotSet(class_names, images, labels), path)


def _checked(dataset: ZeroShotSet, path: str) -> ZeroShotSet:
    if not dataset.images:
        raise UsageError(f"zero-shot set {path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    if len(dataset.class_names) < 2:
        raise UsageError(f"zero-shot set {path} needs at least 2 classes")
    return dataset


def load_retrieval(path: str, split: str = "test", captions: str | None = None) -> RetrievalSet:
    """A Karpathy-split JSON (``captions.json``) and its images (``images/`` beside it).

    ``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"} | {"tokens"}]}]}``;
    ``split`` "all" keeps every image. An image's file is ``<root>/[filepath/]filename``.
    """
    if captions is None:
        captions = path if path.lower().endswith(".json") else os.path.join(path, "captions.json")
        folder = os.path.dirname(captions)
    else:
        folder = path
    if not tf.io.gfile.exists(captions):
        raise FileNotFoundError(f"retrieval captions {captions} do not exist")
    try:
        entries = json.loads(_read_text(captions))["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UsageError(f"{captions} is not a Karpathy-style captions file: {error}") from None
    root = os.path.join(folder, "images")
    root = root if tf.io.gfile.isdir(root) else folder
    chosen = [e for e in entries if split == "all" or e.get("split") == split]
    if not chosen:
        splits = sorted({str(e.get("split")) for e in entries})
        raise UsageError(f"{captions} has no images in split {split!r} (it has {splits})")
    images, texts, text_image = [], [], []
    for index, entry in enumerate(chosen):
        sentences = [_sentence(s) for s in entry.get("sentences", [])]
        sentences = [s for s in sentences if s]
        if not sentences:
            raise UsageError(f"{captions}: image {entry.get('filename')!r} has no caption")
        images.append(os.path.join(root, entry.get("filepath", ""), entry["filename"]))
        texts += sentences
        text_image += [index] * len(sentences)
    return RetrievalSet(images, texts, text_image)


def _sentence(sentence: dict) -> str:
    return (sentence.get("raw") or " ".join(sentence.get("tokens", []))).strip()


def load_templates(path: str) -> list[str]:
    templates = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    for template in templates:
        if template.count("{}") != 1:
            raise UsageError(f"{path}: template {template!r} must hold exactly one '{{}}'")
    if not templates:
        raise UsageError(f"{path} holds no templates")
    return templates


# --- evaluation ----------------------------------------------------------------------------


def class_embeddings(
    encoders: ImageTextEncoders, class_names: Sequence[str], templates: Sequence[str]
) -> np.ndarray:
    """Each class: the mean of its prompts' unit embeddings, re-normalised."""
    prompts = [template.format(name) for name in class_names for template in templates]
    embedded = _unit(encoders.embed_texts(prompts))
    mean = embedded.reshape(len(class_names), len(templates), -1).mean(axis=1)
    return _unit(mean)


def _unit(embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)


def stream_image_embeddings(
    encoders: ImageTextEncoders, images: Sequence, chunk: int = IMAGE_CHUNK
) -> Iterator[np.ndarray]:
    """Unit image embeddings, chunk by chunk, in order (paths, bytes or preprocessed pixels)."""
    for start in range(0, len(images), chunk):
        yield _unit(encoders.embed_images(images[start : start + chunk]))


def evaluate_zero_shot(
    encoders: ImageTextEncoders,
    dataset: ZeroShotSet,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    images: Sequence | None = None,
    top_confusions: int = 10,
    attributes: Sequence[str] = (),
) -> dict:
    """Top-1/top-5, per-class accuracy and most confused pairs; ``images`` overrides paths.

    ``attributes`` ("colour", "shape") adds each word's own top-1 for compositional classes.
    """
    accumulator = metrics.ZeroShotAccumulator(
        class_embeddings(encoders, dataset.class_names, templates), dataset.class_names
    )
    labels = np.asarray(dataset.labels)
    start = 0
    for batch in stream_image_embeddings(encoders, dataset.images if images is None else images):
        accumulator.update(batch, labels[start : start + len(batch)])
        start += len(batch)
    result = accumulator.result(ks=(1, 5), top_confusions=top_confusions, attributes=attributes)
    result["templates"] = len(templates)
    return result


def evaluate_retrieval(
    encoders: ImageTextEncoders, dataset: RetrievalSet, images: Sequence | None = None
) -> dict:
    """Image->text and text->image R@1/5/10 and mean/median rank, with chance levels."""
    images = dataset.images if images is None else images
    with tempfile.TemporaryDirectory(prefix="align-eval-") as scratch:
        texts = _fill(
            (
                _unit(encoders.embed_texts(dataset.captions[s : s + TEXT_CHUNK]))
                for s in range(0, len(dataset.captions), TEXT_CHUNK)
            ),
            len(dataset.captions),
            os.path.join(scratch, "texts.npy"),
        )
        image_embeddings = _fill(
            stream_image_embeddings(encoders, images),
            len(images),
            os.path.join(scratch, "images.npy"),
        )
        return metrics.retrieval_metrics(image_embeddings, texts, dataset.text_image)


def _fill(batches: Iterator[np.ndarray], rows: int, scratch: str) -> np.ndarray:
    """Stacks embedding batches into one [rows, D] array, a memmap when it is large."""
    out, filled = None, 0
    for batch in batches:
        if out is None:
            shape = (rows, batch.shape[1])
            large = rows * batch.shape[1] * 4 > MEMMAP_BYTES
            out = (
                np.lib.format.open_memmap(scratch, "w+", np.float32, shape)
                if large
                else np.empty(shape, np.float32)
            )
        out[filled : filled + len(batch)] = batch
        filled += len(batch)
    if filled != rows:
        raise ValueError(f"encoder returned {filled} embeddings for {rows} inputs")
    return out


# --- reporting -----------------------------------------------------------------------------


def _row(name: str, value: float, chance: float | None, percent: bool = True) -> str:
    show = metrics.format_percent if percent else (lambda v: f"{v:7.2f}")
    chance_text = show(chance) if chance is not None else "      -"
    return f"  {name:<28}{show(value):>10}{chance_text:>12}"


def format_zero_shot(result: dict) -> str:
    lines = [
        f"zero-shot: {result['images']} images, {result['classes']} classes, "
        f"{result['templates']} prompt templates",
        f"  {'metric':<28}{'value':>10}{'chance':>12}",
        _row("top-1", result["top1"], result["chance"]["top1"]),
        _row("top-5", result["top5"], result["chance"]["top5"]),
        _row(
            "mean per-class top-1",
            result["mean_per_class_top1"],
            result["chance"]["mean_per_class_top1"],
        ),
    ]
    for name, part in result.get("attributes", {}).items():
        lines.append(_row(f"{name} top-1", part["top1"], part["chance"]))
    for pair in result["confusions"][:5]:
        lines.append(f"  confused: {pair['true']} -> {pair['predicted']} ({pair['count']})")
    lines.append("  chance: top-k = min(k, classes) / classes")
    return "\n".join(lines)


def format_retrieval(result: dict) -> str:
    lines = [
        f"retrieval: {result['images']} images, {result['texts']} captions",
        f"  {'metric':<28}{'value':>10}{'chance':>12}",
    ]
    for key, label in (("image_to_text", "image->text"), ("text_to_image", "text->image")):
        part = result[key]
        for k in (1, 5, 10):
            lines.append(_row(f"{label} R@{k}", part[f"R@{k}"], part["chance"][f"R@{k}"]))
        lines.append(
            _row(
                f"{label} mean rank", part["mean_rank"], part["chance"]["mean_rank"], percent=False
            )
        )
        lines.append(_row(f"{label} median rank", part["median_rank"], None, percent=False))
    lines.append(
        "  chance: a uniformly random ranking; image->text R@K = mean of 1 - C(M-c,K)/C(M,K) "
        "over images with c of the M captions, text->image R@K = K/N"
    )
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------


def evaluate(args: argparse.Namespace) -> dict:
    """align-eval's work (its flags: training/cli/evaluate.py): evaluates, prints the tables
    and returns the metrics (what ``--output`` holds)."""
    try:
        results = _evaluate(args)
    except (ExportError, ImageDecodeError) as error:
        raise UsageError(str(error)) from None
    result = results[0][1] if len(results) == 1 else dict(results)
    if args.output:
        _write_json(args.output, result)
    return result


def _evaluate(args: argparse.Namespace) -> list[tuple[str, dict]]:
    templates = load_templates(args.templates) if args.templates else list(DEFAULT_TEMPLATES)
    zero_shot = load_zero_shot(args.zero_shot) if args.zero_shot else None
    attributes = parse_attributes(args.attributes, zero_shot)
    retrieval = (
        load_retrieval(args.retrieval, args.split, args.captions) if args.retrieval else None
    )
    encoders = Encoders.load(args.model_dir, batch_size=args.batch_size or DEFAULT_BATCH_SIZE)
    results = []
    if zero_shot is not None:
        result = evaluate_zero_shot(
            encoders,
            zero_shot,
            templates,
            top_confusions=args.top_confusions,
            attributes=attributes,
        )
        print(format_zero_shot(result), flush=True)
        results.append(("zero_shot", result))
    if retrieval is not None:
        result = evaluate_retrieval(encoders, retrieval)
        result["split"] = args.split
        print(format_retrieval(result), flush=True)
        results.append(("retrieval", result))
    return results


def split_attributes(value: str | None) -> list[str]:
    """'colour,shape' -> ["colour", "shape"]; None or '' -> []."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def parse_attributes(value: str | None, dataset: ZeroShotSet | None) -> list[str]:
    """--attributes, checked against the zero-shot set's class names."""
    attributes = split_attributes(value)
    if not attributes:
        return []
    if dataset is None:
        raise UsageError("--attributes needs --zero-shot")
    try:
        metrics.class_attributes(dataset.class_names, attributes)
    except ValueError as error:
        raise UsageError(f"--attributes: {error}") from None
    return attributes


def _write_json(path: str, result: dict) -> None:
    folder = os.path.dirname(path)
    if folder:
        tf.io.gfile.makedirs(folder)
    temporary = path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tf.io.gfile.rename(temporary, path, overwrite=True)

"""Images/s per CPU core of the trainer's input pipeline at ALIGN's sizes (resize 346, crop 289).

    nice -n 10 python bench/input_pipeline.py [--records 512] [--images 1500] [--cores 1,2]

Writes TFRecord shards the way the curation does (pipeline/download/imaging.py resizes each
photograph to a shorter side of 346 as a quality-95 JPEG; pipeline/filter/tfrecord.py frames
the Example), then times ``training.data.make_dataset`` (read, parse, decode, random resize +
crop + flip, batch, tokenise) with tf.data limited to N threads, and the same stages cut
short (read + parse; + decode; + resize/crop/flip), so the table says where a core's time goes.
The floor is the decode alone: no pipeline can beat libjpeg decoding every pixel it stores.
Ends with how many host cores one accelerator needs at a few step rates.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.download.imaging import process_image  # noqa: E402
from pipeline.filter.tfrecord import example_of, frame_record  # noqa: E402
from training.config import load_config  # noqa: E402
from training.data import FEATURES, list_shards, make_dataset  # noqa: E402
from training.preprocess import decode_image, resize_and_crop, resize_shorter_side  # noqa: E402
from training.tokenize import AlignTokenizer  # noqa: E402
from training.vocab import learn_vocabulary, text_files  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")
ASPECTS = (1.0, 4 / 3, 3 / 4, 3 / 2, 16 / 9)  # width / height, as web photographs come
WORDS = (
    "a photo of the red old city street at night with people walking near small shop "
    "dog cat on sofa beach sunset over blue sea mountain lake forest in autumn light"
).split()


def web_photo(rng: random.Random) -> bytes:
    """A random crop (aspect of a web photo, shorter side 200-1000 px) of a real photograph,
    as the JPEG a site would serve."""
    photo = Image.fromarray(getattr(skimage.data, rng.choice(PHOTOS))()).convert("RGB")
    aspect, short = rng.choice(ASPECTS), rng.randint(200, 1000)
    width, height = (
        (round(short * aspect), short) if aspect >= 1 else (short, round(short / aspect))
    )
    scale = max(width / photo.width, height / photo.height, 1.0)
    photo = photo.resize((round(photo.width * scale) + 1, round(photo.height * scale) + 1))
    left, top = rng.randint(0, photo.width - width), rng.randint(0, photo.height - height)
    buffer = io.BytesIO()
    photo.crop((left, top, left + width, top + height)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_bench_shards(directory: Path, records: int, shards: int = 4, seed: int = 0) -> str:
    """``records`` image-text Examples in ``shards`` files, images as the download stage keeps
    them (shorter side 346, smaller ones as they are); returns the glob."""
    rng = random.Random(seed)
    handles = [open(directory / f"bench-{k:05d}.tfrecord", "wb") for k in range(shards)]
    try:
        for index in range(records):
            image = process_image(web_photo(rng))
            row = {
                "image": image.image,
                "mime": "image/jpeg",
                "width": image.width,
                "height": image.height,
                "alt": " ".join(rng.choices(WORDS, k=rng.randint(4, 24))),
                "uid": f"{index:016d}",
                "url": f"http://127.0.0.2/{index}.jpg",
            }
            handles[index % shards].write(frame_record(example_of(row)))
    finally:
        for handle in handles:
            handle.close()
    return str(directory / "bench-*.tfrecord")


def limited(dataset: tf.data.Dataset, cores: int) -> tf.data.Dataset:
    """The dataset run by ``cores`` threads, each op single-threaded: the work of N cores."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def stages(shards: str, config, seed: int = 0) -> dict[str, tf.data.Dataset]:
    """The trainer's per-image work cut after each stage, same functions as training.data."""
    records = tf.data.TFRecordDataset(list_shards(shards)).repeat()
    parse = records.map(lambda r: tf.io.parse_single_example(r, FEATURES))
    decoded = parse.map(lambda e: decode_image(e["image/encoded"]), tf.data.AUTOTUNE)

    def crop(index, image):
        element_seed = tf.stack([tf.constant(seed, tf.int64), index])
        size = (config.image_size, config.resize_size)
        return resize_and_crop(image, *size, training=True, seed=element_seed)

    def resize_always(index, image):  # the peer: every image resized, as before the skip
        image = resize_shorter_side(image, config.resize_size)
        return crop(index, image)

    return {
        "read + parse": parse,
        "+ decode (the floor)": decoded,
        "+ resize, crop, flip": decoded.enumerate().map(crop, tf.data.AUTOTUNE),
        "+ resize, crop, flip, resizing every image (peer)": decoded.enumerate().map(
            resize_always, tf.data.AUTOTUNE
        ),
    }


def images_per_second(dataset: tf.data.Dataset, images: int, per_element: int = 1) -> float:
    iterator = iter(dataset)
    for _ in range(max(1, 64 // per_element)):  # warm up: threads, caches, shuffle buffer
        next(iterator)
    elements = max(1, images // per_element)
    start = time.perf_counter()
    for _ in range(elements):
        next(iterator)
    return elements * per_element / (time.perf_counter() - start)


TRAINER = "trainer: + batch, tokenise (training.data.make_dataset)"


def measure(shards: str, config, tokenizer, images: int, cores: int, rounds: int = 3) -> dict:
    """Best of ``rounds`` interleaved timings per pipeline (the machine may be shared)."""
    batch = 64
    pipelines = {name: (d, 1) for name, d in stages(shards, config).items()}
    pipelines[TRAINER] = (make_dataset(shards, config, tokenizer, batch), batch)
    rates = dict.fromkeys(pipelines, 0.0)
    for _ in range(rounds):
        for name, (dataset, per_element) in pipelines.items():
            rate = images_per_second(limited(dataset, cores), images, per_element)
            rates[name] = max(rates[name], rate)
    return rates


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=512, help="distinct Examples written")
    parser.add_argument("--images", type=int, default=1500, help="images timed per figure")
    parser.add_argument("--cores", default="1,2", help="tf.data thread counts to time")
    args = parser.parse_args(argv)
    config = load_config("align", shuffle_buffer=256)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        shards = write_bench_shards(Path(scratch), args.records)
        vocabulary = learn_vocabulary(text_files(shards), 200)
        tokenizer = AlignTokenizer(vocabulary, config.lowercase, config.max_tokens)
        sizes = [
            tuple(tf.shape(decode_image(e["image/encoded"]))[:2].numpy())
            for e in stages(shards, config)["read + parse"].take(64)
        ]
        print(
            f"{args.records} records written in {time.perf_counter() - started:.0f} s; stored "
            f"shorter side: median {int(np.median([min(s) for s in sizes]))} px; crop "
            f"{config.image_size} from {config.resize_size}, {config.max_tokens} tokens"
        )
        table = {
            c: measure(shards, config, tokenizer, args.images, int(c))
            for c in args.cores.split(",")
        }
    print(f"\n{'images/s':56s}" + "".join(f"{c + ' core(s)':>12s}" for c in table))
    for name in next(iter(table.values())):
        print(f"{name:56s}" + "".join(f"{rates[name]:12.1f}" for rates in table.values()))
    one = next(iter(table.values()))
    full, peer = one[TRAINER], one["+ resize, crop, flip, resizing every image (peer)"]
    print(
        f"\ntrainer / decode alone (the floor), one core: {full / one['+ decode (the floor)']:.2f}x"
    )
    print(
        f"resize, crop, flip / the same resizing every image (peer): "
        f"{one['+ resize, crop, flip'] / peer:.2f}x"
    )
    print(f"per core: {full:.0f} images/s through the whole pipeline")
    print("host cores one accelerator needs (images/s per accelerator / per-core rate):")
    for rate in (250, 500, 1000, 2000, 4000):
        print(f"  {rate:5d} images/s -> {rate / full:5.1f} cores")


if __name__ == "__main__":
    main()

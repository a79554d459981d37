"""The main job: ALIGN's whole recipe on the embedded synthetic web, end to end, on one machine.

Each stage is the same console script a user runs on real data, started as a subprocess
with its log in ``<run>/logs``, so the demo shows exactly the commands that scale to
Dataflow and a TPU, and a stage's crash is reported with the tail of its own log.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from commandline.flags import UsageError
from tools import demo_score
from tools.stage_progress import StageProgress, format_seconds
from tools.webserver import serve

# The small config crosses from "colour only" to colour and shape near step 500 (probes: 60-64%
# top-1 at 600 steps, two seeds); 1500 leaves margin and, at bench/train.py's 0.35 s/step on a
# busy 2-core machine, keeps training under 9 minutes of the demo's 15.
DEMO_STEPS = 1500
EXPERIMENT_STEPS = 1000
PACKAGES = ("apache-beam", "tensorflow", "keras", "keras-hub", "pyarrow", "pillow", "numpy")


@dataclass
class Stage:
    name: str
    command: list[str]
    output: Path | None = None  # where its stats.json lands, if it is a Beam job
    summary: str = ""
    describe: Callable[[Path], str] | None = None  # summary of a non-Beam stage, from its log
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align-demo",
        description="Run crawl -> text filter -> download -> filter -> vocab -> train -> eval "
        "on a seeded synthetic web served on 127.0.0.1. --experiment: train every curation arm "
        "over several seeds and compare them.",
    )
    parser.add_argument(
        "--run-dir",
        help="folder of this run (runs/demo, runs/experiment); an earlier run there is replaced",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace --run-dir even if it is not an earlier run"
    )
    parser.add_argument("--pairs", type=int, default=6000, help="size of the synthetic web")
    parser.add_argument(
        "--seed", type=int, default=0, help="the web's seed and the first training seed"
    )
    parser.add_argument(
        "--steps",
        type=int,
        help=f"training steps per model (demo {DEMO_STEPS}, experiment {EXPERIMENT_STEPS})",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--train-image-size", type=int, help="training crop size (default: small.yaml's)"
    )
    parser.add_argument("--download-image-size", type=int, default=96, help="stored shorter side")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument(
        "--workers", type=int, help="each job's local worker processes (default: the jobs')"
    )
    parser.add_argument(
        "--eval-every", type=int, default=500, help="held-out eval to TensorBoard every N steps"
    )
    parser.add_argument(
        "--with-unfiltered",
        action="store_true",
        help="also train one seed on the unfiltered data (one seed is anecdote: see --experiment)",
    )
    # The old switch, now the default; accepted so existing command lines keep working.
    parser.add_argument("--skip-unfiltered", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--score-steps",
        type=int,
        default=demo_score.SCORE_STEPS,
        help="steps of each uid-half model that scores the curated pairs (0: no score rule)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=demo_score.DEMO_MIN_SCORE,
        help="the score rule's floor: image-text cosine below it is removed",
    )
    experiment = parser.add_argument_group("curation experiment")
    experiment.add_argument(
        "--experiment",
        action="store_true",
        help="eval dedup only / all rules / uncurated at --scale x pairs / rules + score, and "
        "eval dedup at the large arm's epochs; --seeds seeds each, equal steps",
    )
    experiment.add_argument(
        "--seeds", type=int, default=4, help="training seeds per arm ((e): each its own scorers)"
    )
    experiment.add_argument("--scale", type=int, default=3, help="the uncurated arm's web size")
    return parser


def script(name: str) -> str:
    """The console script of this installation (the same venv as the demo itself)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def beam_flags(workers: int | None) -> list[str]:
    """The jobs' --workers, when the demo is given one (else each job's default: every core)."""
    return [] if workers is None else ["--workers", str(workers)]


def package_config(package: str, name: str) -> str:
    return str(resources.files(package).joinpath("configs", name))


def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["python"] = sys.version.split()[0]
    return versions


def run_stage(stage: Stage, logs: Path) -> dict:
    """Runs a stage's command, its output to a log; a failure raises with the log's tail."""
    log_path = log_path_of(logs, stage)
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(stage.command) + "\n")
        log.flush()
        completed = subprocess.run(stage.command, stdout=log, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-25:])
        raise RuntimeError(f"stage '{stage.name}' failed (exit {completed.returncode}):\n{tail}")
    if stage.output and (stage.output / "stats.json").exists():
        stage.stats = json.loads((stage.output / "stats.json").read_text())
        unit = unit_of(stage.name)
        stage.summary = f"in {stage.stats['in']:>7,} {unit:<7}  kept {stage.stats['kept']:>7,}"
    elif stage.describe:
        stage.summary = stage.describe(log_path)
    return {"summary": stage.summary or "done"}


def log_path_of(logs: Path, stage: Stage) -> Path:
    """A name a shell takes as it is: "train (filtered)" -> train_filtered.log."""
    return logs / f"{re.sub(r'[^a-z0-9]+', '_', stage.name.lower()).strip('_')}.log"


def unit_of(stage_name: str) -> str:
    """What a Beam stage's in/kept count: WARC records for the crawl, pairs after it."""
    return "records" if stage_name == "crawl" else "pairs"


def not_downloaded(stats: dict) -> int:
    """Records a filter run rejected because align-download got no image: counted once, at
    the download stage, not again as rules' rejections."""
    return sum(
        n for reason, n in stats.get("rejected", {}).items() if reason.startswith("download_")
    )


def last_report_line(log_path: Path) -> str:
    """The job's own closing line, e.g. 'align-vocab: 133 pieces from 4 files -> ...'."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if ": " in line]
    mine = [line for line in lines if line.startswith("align-")]
    return mine[-1].split(": ", 1)[1].split(" -> ")[0][:44] if mine else "done"


def training_step(log_path: Path) -> str:
    """The trainer's last progress line in the log (``align-train:  40% 400/1000 [...``), or
    its closing ``align-train: step 1000, exported ...``, as a global step."""
    if not log_path.exists():
        return "starting"
    text = log_path.read_text(errors="replace")
    steps = re.findall(r"^align-train: (?:\s*\d+% (\d+)/\d+ \[|step (\d+), exported)", text, re.M)
    if not steps:
        return "starting"
    return f"step {int(''.join(steps[-1])):,}"


def metric_line(path: Path, kind: str) -> str:
    """A stage's summary from align-eval's JSON: kind "zero_shot", "retrieval" or "both"."""
    if not path.exists():
        return "done"
    metrics = json.loads(path.read_text())
    if kind == "both":
        return (
            f"top-1 {cell(metrics['zero_shot'], 'top1')}, "
            f"R@1 {cell(metrics['retrieval']['image_to_text'], 'R@1', False)} / "
            f"{cell(metrics['retrieval']['text_to_image'], 'R@1', False)}"
        )
    if kind == "zero_shot":
        attributes = metrics.get("attributes", {})
        parts = [f"top-1 {cell(metrics, 'top1')}"]
        parts += [f"{name} {100 * part['top1']:.1f}%" for name, part in attributes.items()]
        return ", ".join(parts)
    return (
        f"i->t R@1 {cell(metrics.get('image_to_text', {}), 'R@1')}, "
        f"t->i {cell(metrics.get('text_to_image', {}), 'R@1')}"
    )


def cli(program: str, *switches: str, **flags) -> list[str]:
    """cli("align-vocab", output=p, vocab_size=9) -> [align-vocab, --output, p, --vocab-size, 9]."""
    command = [script(program), *switches]
    for name, value in flags.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def vocab_stage(args, name: str, shards_dir: Path, vocab: Path) -> Stage:
    shards = str(shards_dir / "shards" / "*.tfrecord")
    return Stage(
        name,
        cli("align-vocab", shards=shards, output=vocab, vocab_size=args.vocab_size),
        describe=last_report_line,
    )


def train_stage(
    args, name: str, shards_dir: Path, vocab: Path, model_dir: Path, web: Path, seed: int
) -> Stage:
    """align-train with the small config; held-out zero-shot and retrieval every N steps go to
    TensorBoard (the learning curves)."""
    sizes, evaluation = {}, {}
    if args.train_image_size:  # the crop, and the resize before it in small.yaml's ratio
        # The trainer's package needs the train extra: imported here, after run_demo's check.
        from training.config import load_config  # noqa: PLC0415

        small = load_config("small")
        ratio = small.resize_size / small.image_size
        sizes = dict(
            image_size=args.train_image_size,
            resize_size=round(args.train_image_size * ratio),
        )
    if args.eval_every > 0:
        evaluation = dict(
            eval_zero_shot=web / "eval" / "zero_shot",
            eval_retrieval=web / "eval" / "retrieval",
            eval_every=args.eval_every,
            eval_attributes="colour,shape",
        )
    return Stage(
        name,
        cli(
            "align-train",
            shards=str(shards_dir / "shards" / "*.tfrecord"),
            vocab=vocab,
            model_dir=model_dir,
            config=package_config("training", "small.yaml"),
            steps=args.steps,
            batch_size=args.batch_size,
            seed=seed,
            **sizes,
            **evaluation,
        ),
        describe=training_step,
    )


def train_eval_stages(args, run: Path, name: str, shards_dir: Path, web: Path) -> list[Stage]:
    """Vocabulary, training and evaluation of one arm (filtered or unfiltered)."""
    arm, eval_dir = run / name, web / "eval"
    vocab, model_dir = arm / "vocab.txt", arm / "model"
    zero_shot, retrieval = arm / "zero_shot.json", arm / "retrieval.json"
    return [
        vocab_stage(args, f"vocab ({name})", shards_dir, vocab),
        train_stage(args, f"train ({name})", shards_dir, vocab, model_dir, web, args.seed),
        Stage(
            f"eval zero-shot ({name})",
            cli(
                "align-eval",
                model_dir=model_dir,
                zero_shot=eval_dir / "zero_shot",
                attributes="colour,shape",
                output=zero_shot,
            ),
            describe=lambda log: metric_line(zero_shot, "zero_shot"),
        ),
        Stage(
            f"eval retrieval ({name})",
            cli(
                "align-eval",
                model_dir=model_dir,
                retrieval=eval_dir / "retrieval",
                output=retrieval,
            ),
            describe=lambda log: metric_line(retrieval, "retrieval"),
        ),
    ]


def eval_set_flags(web: Path) -> list[str]:
    """--eval-images for both evaluation sets: their near-duplicates leave the training data."""
    zero_shot_images = web / "eval" / "zero_shot" / "*" / "*.jpg"
    retrieval_images = web / "eval" / "retrieval" / "images" / "*.jpg"
    return [
        "--eval-images",
        f"zero_shot={zero_shot_images}",
        "--eval-images",
        f"retrieval={retrieval_images}",
    ]


def download_settings(args) -> dict:
    """align-download's flags for the local synthetic web.

    The synthetic web's "hang" fault holds a response for a minute: shorter timeouts than the
    open web's defaults keep the demo quick, and those URLs still end as "timeout". The
    per-host caps are lifted because the hosts are our own server on loopback: the open web's
    politeness (4 connections, 8 requests/s per host) would only make the demo wait.
    """
    return dict(
        image_size=args.download_image_size,
        connect_timeout=5,
        read_timeout=5,
        total_timeout=10,
        per_host_concurrency=32,
        per_host_rate=1000,
    )


def data_stages(args, run: Path, web: Path) -> list[Stage]:
    """Crawl, text filter, download and the full filter (plus the unfiltered baseline)."""
    stages = curation_stages(args, run, web)
    if args.with_unfiltered or args.experiment:
        stages += unfiltered_stages(args, run)
    return stages


def curation_stages(args, run: Path, web: Path) -> list[Stage]:
    """The recipe: crawl -> filter --rules text -> download -> filter --rules all (shards)."""
    beam, small_filter = beam_flags(args.workers), package_config("filters", "small.yaml")
    return [
        Stage(
            "crawl",
            cli("align-crawl", *beam, input=web / "warc" / "*.warc.gz", output=run / "crawl"),
            run / "crawl",
        ),
        Stage(
            "filter text",
            cli(
                "align-filter",
                *beam,
                rules="text",
                input=run / "crawl",
                output=run / "text_filter",
                config=small_filter,
            ),
            run / "text_filter",
        ),
        download_stage(args, "download", run / "text_filter", run / "download"),
        Stage(
            "filter all",
            cli(
                "align-filter",
                "--stats",
                *eval_set_flags(web),
                *beam,
                rules="all",
                input=run / "download",
                output=run / "filter",
                config=small_filter,
                # The web labels each pair's noise: the report scores every rule against it.
                ground_truth=web / "ground_truth.parquet",
            ),
            run / "filter",
        ),
    ]


def unfiltered_stages(args, run: Path) -> list[Stage]:
    """The baseline: every crawled pair downloaded and sharded with no rule applied."""
    shards = cli(
        "align-filter",
        *beam_flags(args.workers),
        rules="none",
        input=run / "download_unfiltered",
        output=run / "unfiltered",
    )
    return [
        download_stage(args, "download unfiltered", run / "crawl", run / "download_unfiltered"),
        Stage("shards unfiltered", shards, run / "unfiltered"),
    ]


def download_stage(args, name: str, pairs: Path, output: Path) -> Stage:
    """align-download of ``pairs`` from the synthetic web on loopback (private addresses)."""
    command = cli(
        "align-download",
        "--allow-private-networks",
        *beam_flags(args.workers),
        input=pairs,
        output=output,
        **download_settings(args),
    )
    return Stage(name, command, output)


def read_metrics(arm: Path) -> dict:
    metrics = {}
    for name in ("zero_shot", "retrieval"):
        path = arm / f"{name}.json"
        if path.exists():
            metrics[name] = json.loads(path.read_text())
    return metrics


def summary_table(run: Path, stages: list[Stage], arms: list[str]) -> str:
    header = f"  {'stage':<22}{'unit':<9}{'in':>9}{'kept':>9}{'rejected':>10}"
    lines = ["", "Counts per stage", header]
    for stage in stages:
        if stage.stats:
            failed = not_downloaded(stage.stats)
            rejected = sum(stage.stats.get("rejected", {}).values()) - failed
            line = (
                f"  {stage.name:<22}{unit_of(stage.name):<9}{stage.stats['in']:>9,}"
                f"{stage.stats['kept']:>9,}{rejected:>10,}"
            )
            if failed:
                line += f"   (+{failed:,} not downloaded, counted at download)"
            lines.append(line)
    lines += ["", "Held-out evaluation (chance level in brackets)"]
    columns = ("zero-shot top-1", "colour", "shape", "image->text R@1", "text->image R@1")
    lines.append(f"  {'model':<22}" + "".join(f"{name:>18}" for name in columns))
    for arm in arms:
        metrics = read_metrics(run / arm)
        zero_shot = metrics.get("zero_shot", {})
        attributes = zero_shot.get("attributes", {})
        retrieval = metrics.get("retrieval", {})
        label = arm if arm == "filtered" else f"{arm} (1 seed)"
        lines.append(
            f"  {label:<22}"
            f"{cell(zero_shot, 'top1'):>18}"
            f"{attribute_cell(attributes.get('colour')):>18}"
            f"{attribute_cell(attributes.get('shape')):>18}"
            f"{cell(retrieval.get('image_to_text', {}), 'R@1'):>18}"
            f"{cell(retrieval.get('text_to_image', {}), 'R@1'):>18}"
        )
    if len(arms) > 1:
        lines.append(
            "  One seed each: the difference between two rows may be noise. "
            "`align-demo --experiment` compares the arms over seeds."
        )
    report = run / "filter" / "report" / "report.html"
    lines += [
        "",
        f"Filter report: {report}",
        f"Manifest:      {run / 'manifest.json'}",
        f"TensorBoard:   tensorboard --logdir {run}   (learning curves: eval/zero_shot/*)",
    ]
    return "\n".join(lines)


def cell(metrics: dict, key: str, with_chance: bool = True) -> str:
    if key not in metrics:
        return "n/a"
    chance = metrics.get("chance", {}).get(key) if with_chance else None
    chance_text = f" [{100 * chance:.1f}%]" if chance is not None else ""
    return f"{100 * metrics[key]:.1f}%{chance_text}"


def attribute_cell(part: dict | None) -> str:
    """An attribute's top-1 with its chance: {"top1": .9, "chance": .2} -> 90.0% [20.0%]."""
    if not part:
        return "n/a"
    return f"{100 * part['top1']:.1f}% [{100 * part['chance']:.1f}%]"


def make_web(web: Path, config, server) -> dict:
    """Generates the web into the folder the server already serves, then reloads its faults."""
    from tools.synthweb import generate  # noqa: PLC0415 - see run()

    counts = generate(str(web), config)["counts"]
    server.reload()
    return {"summary": f"{counts['pairs']:,} pairs on {counts['pages']:,} pages"}


def clear_run_dir(run_dir: Path, force: bool) -> None:
    """Replaces an earlier run (it has a manifest.json); refuses any other non-empty folder
    unless ``force``: the demo must not delete a user's files by a mistyped --run-dir."""
    if not run_dir.exists():
        return
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        return
    earlier = (run_dir / "manifest.json").exists() or (run_dir / "logs").is_dir()
    if not (earlier or force):
        raise UsageError(
            f"--run-dir {run_dir} exists and is not an earlier demo run: choose another folder, "
            "or pass --force to replace it"
        )
    print(f"align-demo: replacing {run_dir}", file=sys.stderr, flush=True)
    shutil.rmtree(run_dir)


def run_with_progress(progress: StageProgress, stage: Stage, logs: Path) -> None:
    """Runs a stage under the progress line; a training stage shows its live step."""
    live = log_path_of(logs, stage) if stage.describe is training_step else None
    outcome = progress.run(
        stage.name,
        lambda: run_stage(stage, logs),
        records=(lambda: training_step(live)) if live else None,
    )
    stage.seconds = outcome["seconds"]


def run_demo(args: argparse.Namespace) -> dict:
    """The demo, its flags parsed (tools/demo_cli.py): every stage, then the summary."""
    args.run_dir = args.run_dir or "runs/demo"
    args.steps = args.steps or DEMO_STEPS
    run_dir = Path(args.run_dir).resolve()
    clear_run_dir(run_dir, args.force)
    logs = run_dir / "logs"
    logs.mkdir(parents=True)
    web = run_dir / "web"
    started = time.monotonic()

    # Imported after parsing: tools.synthweb (pyarrow, Pillow, scikit-image, warcio) takes
    # ~0.6 s to import, four times all of `align-demo --help` (0.15 s; busy 2-core machine,
    # `python -X importtime -c "import tools.synthweb"`).
    from tools.synthweb import WebConfig  # noqa: PLC0415

    arms = ["filtered", "unfiltered"] if args.with_unfiltered else ["filtered"]
    scoring = args.score_steps > 0
    stages_total = 1 + 4 + (2 if len(arms) == 2 else 0) + 4 * len(arms) + 3 * scoring
    progress = StageProgress(stages_total)
    with serve(web / "site", port=0) as server:
        config = WebConfig(n_pairs=args.pairs, seed=args.seed, port=server.port)
        generated = progress.run("synthetic web", lambda: make_web(web, config, server))
        stages = data_stages(args, run_dir, web)
        for stage in stages:
            run_with_progress(progress, stage, logs)
    arm_sources = {"filtered": run_dir / "filter", "unfiltered": run_dir / "unfiltered"}
    for arm in arms:
        for stage in train_eval_stages(args, run_dir, arm, arm_sources[arm], web):
            run_with_progress(progress, stage, logs)
            stages.append(stage)
    quality = None
    if scoring:  # the curated model's recipe as curator: two uid halves, cross-fitted
        this_demo = sys.modules[__name__]  # its helpers build the stages (no import back)
        for stage in demo_score.score_stages(args, run_dir, web, this_demo):
            run_with_progress(progress, stage, logs)
            stages.append(stage)
        quality = demo_score.score_quality(run_dir, web)

    manifest = {
        "arguments": vars(args),
        "web": json.loads((web / "web.json").read_text()) if (web / "web.json").exists() else {},
        "versions": package_versions(),
        "stages": [
            {"name": s.name, "command": s.command, "seconds": s.seconds, "stats": s.stats}
            for s in stages
        ],
        "synthetic_web_seconds": generated["seconds"],
        "metrics": {arm: read_metrics(run_dir / arm) for arm in arms},
        "score_rule": demo_score.quality_dict(quality),
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    print(summary_table(run_dir, stages, arms))
    print("\n".join(demo_score.quality_lines(quality)))
    print(f"\nFinished in {format_seconds(manifest['total_seconds'])}.")
    return manifest

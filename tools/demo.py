"""The main job: ALIGN's whole recipe on the embedded synthetic web, end to end, on one machine.

Each stage is the same console script a user runs on real data, started as a subprocess
with its log in ``<run>/logs``, so the demo shows exactly the commands that scale to
Dataflow and a TPU, and a stage's crash is reported with the tail of its own log.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from tools.progress import StageProgress, format_seconds

PACKAGES = ("apache-beam", "tensorflow", "keras", "keras-hub", "pyarrow", "pillow", "numpy")


@dataclass
class Stage:
    name: str
    command: list[str]
    output: Path | None = None  # where its stats.json lands, if it is a Beam job
    summary: str = ""
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align-demo",
        description="Run crawl -> text filter -> download -> filter -> vocab -> train -> eval "
        "on a seeded synthetic web served on 127.0.0.1, filtered and unfiltered side by side.",
    )
    parser.add_argument("--run-dir", default="runs/demo", help="folder of this run (replaced)")
    parser.add_argument("--pairs", type=int, default=6000, help="size of the synthetic web")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600, help="training steps per model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-image-size", type=int, default=64, help="training crop size")
    parser.add_argument("--download-image-size", type=int, default=96, help="stored shorter side")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="DirectRunner workers")
    parser.add_argument(
        "--skip-unfiltered", action="store_true", help="train only on the filtered data"
    )
    return parser


def script(name: str) -> str:
    """The console script of this installation (the same venv as the demo itself)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def beam_flags(workers: int) -> list[str]:
    if workers <= 1:
        return []
    return ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]


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
    log_path = logs / f"{stage.name.replace(' ', '_')}.log"
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(stage.command) + "\n")
        log.flush()
        completed = subprocess.run(stage.command, stdout=log, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-25:])
        raise RuntimeError(f"stage '{stage.name}' failed (exit {completed.returncode}):\n{tail}")
    if stage.output and (stage.output / "stats.json").exists():
        stage.stats = json.loads((stage.output / "stats.json").read_text())
        stage.summary = f"in {stage.stats['in']:>7,}  kept {stage.stats['kept']:>7,}"
    return {"summary": stage.summary or "done"}


def train_eval_stages(args, run: Path, name: str, shards_dir: Path, web: Path) -> list[Stage]:
    """Vocabulary, training and evaluation of one arm (filtered or unfiltered)."""
    arm = run / name
    shards = str(shards_dir / "shards" / "*.tfrecord")
    vocab = arm / "vocab.txt"
    model_dir = arm / "model"
    eval_dir = web / "eval"
    return [
        Stage(
            f"vocab ({name})",
            [
                script("align-vocab"),
                "--shards",
                shards,
                "--output",
                str(vocab),
                "--vocab-size",
                str(args.vocab_size),
            ],
        ),
        Stage(
            f"train ({name})",
            [
                script("align-train"),
                "--shards",
                shards,
                "--vocab",
                str(vocab),
                "--model-dir",
                str(model_dir),
                "--config",
                package_config("training", "small.yaml"),
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--image-size",
                str(args.train_image_size),
                "--seed",
                str(args.seed),
            ],
        ),
        Stage(
            f"eval zero-shot ({name})",
            [
                script("align-eval"),
                "--model-dir",
                str(model_dir),
                "--zero-shot",
                str(eval_dir / "zero_shot"),
                "--output",
                str(arm / "zero_shot.json"),
            ],
        ),
        Stage(
            f"eval retrieval ({name})",
            [
                script("align-eval"),
                "--model-dir",
                str(model_dir),
                "--retrieval",
                str(eval_dir / "retrieval"),
                "--output",
                str(arm / "retrieval.json"),
            ],
        ),
    ]


def data_stages(args, run: Path, web: Path) -> list[Stage]:
    """Crawl, text filter, download and the full filter (plus the unfiltered baseline)."""
    beam = beam_flags(args.workers)
    small_filter = package_config("filters", "small.yaml")
    eval_sets = [
        "--eval-images",
        f"zero_shot={web / 'eval' / 'zero_shot' / '*' / '*.jpg'}",
        "--eval-images",
        f"retrieval={web / 'eval' / 'retrieval' / 'images' / '*.jpg'}",
    ]
    # The synthetic web's "hang" fault holds a response for a minute: shorter timeouts than
    # the open web's defaults keep the demo quick, and those URLs still end as "timeout".
    download_flags = [
        "--image-size",
        str(args.download_image_size),
        "--allow-private-networks",
        "--connect-timeout",
        "5",
        "--read-timeout",
        "5",
        "--total-timeout",
        "10",
    ]
    stages = [
        Stage(
            "crawl",
            [
                script("align-crawl"),
                "--input",
                str(web / "warc" / "*.warc.gz"),
                "--output",
                str(run / "crawl"),
                *beam,
            ],
            run / "crawl",
        ),
        Stage(
            "filter text",
            [
                script("align-filter"),
                "--rules",
                "text",
                "--input",
                str(run / "crawl"),
                "--output",
                str(run / "text_filter"),
                "--config",
                small_filter,
                *beam,
            ],
            run / "text_filter",
        ),
        Stage(
            "download",
            [
                script("align-download"),
                "--input",
                str(run / "text_filter"),
                "--output",
                str(run / "download"),
                *download_flags,
                *beam,
            ],
            run / "download",
        ),
        Stage(
            "filter all",
            [
                script("align-filter"),
                "--rules",
                "all",
                "--input",
                str(run / "download"),
                "--output",
                str(run / "filter"),
                "--config",
                small_filter,
                *eval_sets,
                "--stats",
                *beam,
            ],
            run / "filter",
        ),
    ]
    if not args.skip_unfiltered:
        stages += [
            Stage(
                "download unfiltered",
                [
                    script("align-download"),
                    "--input",
                    str(run / "crawl"),
                    "--output",
                    str(run / "download_unfiltered"),
                    *download_flags,
                    *beam,
                ],
                run / "download_unfiltered",
            ),
            Stage(
                "shards unfiltered",
                [
                    script("align-filter"),
                    "--rules",
                    "none",
                    "--input",
                    str(run / "download_unfiltered"),
                    "--output",
                    str(run / "unfiltered"),
                    *beam,
                ],
                run / "unfiltered",
            ),
        ]
    return stages


def read_metrics(arm: Path) -> dict:
    metrics = {}
    for name in ("zero_shot", "retrieval"):
        path = arm / f"{name}.json"
        if path.exists():
            metrics[name] = json.loads(path.read_text())
    return metrics


def summary_table(run: Path, stages: list[Stage], arms: list[str]) -> str:
    lines = ["", "Counts per stage", f"  {'stage':<22}{'in':>10}{'kept':>10}{'rejected':>10}"]
    for stage in stages:
        if stage.stats:
            rejected = sum(stage.stats.get("rejected", {}).values())
            lines.append(
                f"  {stage.name:<22}{stage.stats['in']:>10,}{stage.stats['kept']:>10,}"
                f"{rejected:>10,}"
            )
    lines += ["", "Held-out evaluation (chance level in brackets)"]
    lines.append(
        f"  {'model':<12}{'zero-shot top-1':>24}{'image->text R@1':>24}{'text->image R@1':>24}"
    )
    for arm in arms:
        metrics = read_metrics(run / arm)
        zero_shot = metrics.get("zero_shot", {})
        retrieval = metrics.get("retrieval", {})
        lines.append(
            f"  {arm:<12}"
            f"{cell(zero_shot, 'top1'):>24}"
            f"{cell(retrieval.get('image_to_text', {}), 'R@1'):>24}"
            f"{cell(retrieval.get('text_to_image', {}), 'R@1'):>24}"
        )
    report = run / "filter" / "report" / "report.html"
    lines += [
        "",
        f"Filter report: {report}",
        f"Manifest:      {run / 'manifest.json'}",
        f"TensorBoard:   tensorboard --logdir {run}",
    ]
    return "\n".join(lines)


def cell(metrics: dict, key: str) -> str:
    if key not in metrics:
        return "n/a"
    chance = metrics.get("chance", {}).get(key)
    chance_text = f" [{100 * chance:.1f}%]" if chance is not None else ""
    return f"{100 * metrics[key]:.1f}%{chance_text}"


def make_web(web: Path, config, server) -> dict:
    """Generates the web into the folder the server already serves, then reloads its faults."""
    from tools.synthweb import generate

    counts = generate(str(web), config)["counts"]
    server.reload()
    return {"summary": f"{counts['pairs']:,} pairs on {counts['pages']:,} pages"}


def run(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    logs = run_dir / "logs"
    logs.mkdir(parents=True)
    web = run_dir / "web"
    started = time.monotonic()

    from tools.synthweb import WebConfig
    from tools.webserver import serve

    arms = ["filtered"] if args.skip_unfiltered else ["filtered", "unfiltered"]
    stages_total = 1 + 4 + (2 if len(arms) == 2 else 0) + 4 * len(arms)
    progress = StageProgress(stages_total)
    with serve(web / "site", port=0) as server:
        config = WebConfig(n_pairs=args.pairs, seed=args.seed, port=server.port)
        generated = progress.run("synthetic web", lambda: make_web(web, config, server))
        stages = data_stages(args, run_dir, web)
        for stage in stages:
            outcome = progress.run(stage.name, lambda stage=stage: run_stage(stage, logs))
            stage.seconds = outcome["seconds"]
    arm_sources = {"filtered": run_dir / "filter", "unfiltered": run_dir / "unfiltered"}
    for arm in arms:
        for stage in train_eval_stages(args, run_dir, arm, arm_sources[arm], web):
            outcome = progress.run(stage.name, lambda stage=stage: run_stage(stage, logs))
            stage.seconds = outcome["seconds"]
            stages.append(stage)

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
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    print(summary_table(run_dir, stages, arms))
    print(f"\nFinished in {format_seconds(manifest['total_seconds'])}.")
    return manifest


def main() -> None:
    try:
        run()
    except RuntimeError as error:
        print(f"align-demo: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""align-demo --experiment: does curation help the model? ALIGN's claims on the synthetic web.

Arms of the same synthetic web, each trained for the same number of steps over several seeds
and evaluated on the same held-out sets:

  (b) eval dedup      every crawled pair that downloads, minus near-duplicates of the
                      evaluation images, so test leakage is credited to no arm
  (c) all rules       ALIGN's text and image rules and eval dedup: the demo's curated data
  (d) uncurated x N   a web N times larger, eval dedup only: the paper's "scale beats noise"
  (e) rules + score   (c) minus the pairs the cross-fitted image-text score rule removes: two
                      short models, one per uid half of (c), each scoring the other half. Each
                      seed has its own pair of scorers, so (e)'s spread holds the scorers' too
                      and the score rule's precision and recall are a mean over seeds
  (b) equal epochs    (b) trained for (d)'s number of epochs instead of its number of steps
                      (steps x (b)'s pairs / (d)'s pairs): scale at equal passes over the data

Arm (a) of earlier runs, every download with eval near-duplicates kept, is gone from the plan:
two full runs found no test leakage ((a) vs (b), p = 0.39) and its trials paid for (e)'s
per-seed scorers.

Each arm learns its own vocabulary (as ALIGN does from its data). Seeds vary the training
(initialisation, order, crops), not the web; a seed is the same in every arm, so differences
are seed-paired (tools/experiment_stats.py: paired t-test and 95% interval). Figures are
mean ± standard deviation over the seeds, chance beside each.

The plan is fixed before any result, from the budget (90 minutes on 2 cores, ``make
experiment``): ``--seeds`` (4) seeds of demo.EXPERIMENT_STEPS (1000) steps for every arm, and
for each seed two scorers of demo_score.SCORE_STEPS (700) steps.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools import demo, demo_score
from tools.experiment_curve import curve_text
from tools.experiment_stats import comparison_table, paired
from tools.stage_progress import StageProgress, format_seconds
from tools.webserver import serve

SCORE_SEEDS = "score_seeds"  # run/score_seeds/seed<N>/: that seed's scorers and scored filter

# Every ALIGN rule switched off; only eval-set dedup (and failed downloads) removes pairs.
EVAL_DEDUP_ONLY = {
    "min_unigrams": 0,
    "max_unigrams": 1_000_000,
    "max_images_per_alt": 1_000_000_000,
    "max_alts_per_image": 1_000_000_000,
    "rare_token_min_count": 1,
    "min_shorter_side": 0,
    "max_aspect_ratio": 1_000_000.0,
    "languages": "all",
    "eval_max_hamming": 8,  # as filters/configs/small.yaml
}
METRICS = (
    ("zero-shot top-1", ("zero_shot", "top1")),
    ("colour", ("zero_shot", "attributes", "colour")),
    ("shape", ("zero_shot", "attributes", "shape")),
    ("i->t R@1", ("retrieval", "image_to_text", "R@1")),
    ("t->i R@1", ("retrieval", "text_to_image", "R@1")),
)


# The budget's plan (see the module docstring and `make experiment`): a trial of 1000 steps
# with its evaluation takes ~3.3 minutes on a quiet 2-core machine (the 4-arm run: 12 trials
# and the data stages in 45 min 45 s), a pair of 700-step scorers and their filter ~5.7. So
# 16 compared trials (--seeds, default 4), 4 equal-epoch trials of ~1/3 the steps, 4 pairs of
# scorers and the data stages (~8 minutes, both webs) come to ~88 minutes: inside 90. The
# first run of this plan took 65 min 28 s (docs/model.md).
CURVE_STEP = 500  # the learning-curve check: the comparisons again at this step (--eval-every)
COMPARISONS = (  # (first, second, label): first minus second, seed-paired
    ("score", "all_rules", "(e) rules+score vs (c) rules"),
    ("uncurated_large", "eval_dedup", "(d) 3x uncurated vs (b), equal steps"),
    ("uncurated_large", "eval_dedup_epochs", "(d) 3x uncurated vs (b), equal epochs"),
    ("all_rules", "eval_dedup", "(c) rules vs (b) dedup only"),
)


@dataclass(frozen=True)
class Arm:
    key: str
    label: str
    shards: Path  # an align-filter output folder, or with per_seed a folder of seed<N>/ ones
    equal_epochs_to: str | None = None  # trained for this arm's epochs, not its steps
    per_seed: bool = False  # each seed trains on its own shards (its own scorers' cut)

    def shards_for(self, seed: int) -> Path:
        if not self.per_seed:
            return self.shards
        return self.shards / f"seed{seed}" / demo_score.SCORE_FILTER


def arms_of(run: Path, scale: int) -> list[Arm]:
    return [
        Arm("eval_dedup", "(b) eval dedup only", run / "eval_dedup"),
        Arm("all_rules", "(c) all ALIGN rules", run / "filter"),
        Arm("uncurated_large", f"(d) uncurated, {scale}x pairs", run / "large" / "eval_dedup"),
        Arm("score", "(e) ALIGN rules + score", run / SCORE_SEEDS, per_seed=True),
        Arm(
            "eval_dedup_epochs",
            "(b) at (d)'s epochs",
            run / "eval_dedup",
            equal_epochs_to="uncurated_large",
        ),
    ]


def seeds_of(args) -> list[int]:
    return list(range(args.seed, args.seed + args.seeds))


def steps_of(args, arm: Arm, pairs: dict[str, int]) -> int:
    """The arm's training steps: the plan's, or as many epochs as ``equal_epochs_to`` gets."""
    if arm.equal_epochs_to is None:
        return args.steps
    return max(1, round(args.steps * pairs[arm.key] / max(pairs[arm.equal_epochs_to], 1)))


def dedup_only_stage(args, source: Path, output: Path, web: Path, name: str) -> demo.Stage:
    """align-filter --rules all with every rule off but eval dedup (a config, no new code)."""
    return demo.Stage(
        name,
        demo.cli(
            "align-filter",
            *demo.eval_set_flags(web),
            *demo.beam_flags(args.workers),
            rules="all",
            input=source,
            output=output,
            config=args.run_dir_path / "eval_dedup_only.yaml",
        ),
        output,
    )


def large_web_stages(args, run: Path, web: Path, large_web: Path) -> list[demo.Stage]:
    """The bigger web: crawl, download everything, drop only eval near-duplicates."""
    beam = demo.beam_flags(args.workers)
    large = run / "large"
    crawl = demo.Stage(
        "crawl (large)",
        demo.cli(
            "align-crawl", *beam, input=large_web / "warc" / "*.warc.gz", output=large / "crawl"
        ),
        large / "crawl",
    )
    download = demo.Stage(
        "download (large)",
        demo.cli(
            "align-download",
            "--allow-private-networks",
            *beam,
            input=large / "crawl",
            output=large / "download",
            **demo.download_settings(args),
        ),
        large / "download",
    )
    dedup = dedup_only_stage(
        args, large / "download", large / "eval_dedup", web, "eval dedup (large)"
    )
    return [crawl, download, dedup]


def eval_fingerprint(web: Path) -> str:
    """A digest of the evaluation sets: every arm must be scored on the same images."""
    digest = hashlib.sha256()
    for path in sorted((web / "eval").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(web)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def trial_stages(
    args, run: Path, arm: Arm, web: Path, seed: int, steps: int | None = None
) -> list[demo.Stage]:
    """Training and evaluation of one arm with one seed (its vocabulary is made once)."""
    folder = run / "trials" / arm.key
    model_dir = folder / f"seed{seed}"
    metrics = model_dir / "metrics.json"
    train = demo.train_stage(
        args, f"train {arm.key} s{seed}", arm.shards_for(seed), vocab_of(run, arm, seed),
        model_dir, web, seed,
    )  # fmt: skip
    if steps is not None:
        train.command = demo_score.with_flags(train.command, steps=steps)
    evaluate = demo.Stage(
        f"eval {arm.key} s{seed}",
        demo.cli(
            "align-eval",
            model_dir=model_dir,
            zero_shot=web / "eval" / "zero_shot",
            retrieval=web / "eval" / "retrieval",
            attributes="colour,shape",
            output=metrics,
        ),
        describe=lambda log: demo.metric_line(metrics, "both"),
    )
    return [train, evaluate]


def vocab_of(run: Path, arm: Arm, seed: int) -> Path:
    """Each arm learns its own vocabulary from its shards: a per-seed arm, one per seed."""
    folder = run / "trials" / arm.key
    return folder / (f"vocab-seed{seed}.txt" if arm.per_seed else "vocab.txt")


def vocab_stages(args, run: Path, arm: Arm) -> list[demo.Stage]:
    seeds = seeds_of(args) if arm.per_seed else [args.seed]
    return [
        demo.vocab_stage(
            args,
            f"vocab {arm.key}" + (f" s{seed}" if arm.per_seed else ""),
            arm.shards_for(seed),
            vocab_of(run, arm, seed),
        )  # fmt: skip
        for seed in seeds
    ]


def read_trials(run: Path, arm: Arm) -> list[dict]:
    return list(trials_by_seed(run, arm).values())


def trials_by_seed(run: Path, arm: Arm) -> dict[int, dict]:
    """{seed: align-eval metrics} of an arm's finished trials."""
    return {
        int(path.parent.name.removeprefix("seed")): json.loads(path.read_text())
        for path in sorted((run / "trials" / arm.key).glob("seed*/metrics.json"))
    }


def comparisons_text(run: Path, arms: list[Arm]) -> str:
    """Every comparison of COMPARISONS on zero-shot top-1, seed-paired."""
    by_key = {arm.key: arm for arm in arms}
    name, path = METRICS[0]
    results = []
    for first, second, label in COMPARISONS:
        values = [
            {seed: pick(trial, path)[0] for seed, trial in trials_by_seed(run, by_key[k]).items()}
            for k in (first, second)
        ]
        results.append(paired(label, *values))
    return comparison_table(results, name)


def pick(result: dict, path: tuple[str, ...]) -> tuple[float, float]:
    """(value, chance) of one figure of an align-eval result."""
    for key in path[:-1]:
        result = result[key]
    part = result[path[-1]]
    if isinstance(part, dict):  # an attribute: {"top1", "chance"}
        return part["top1"], part["chance"]
    chance = result["chance"][path[-1]]
    return part, chance


def mean_spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:  # one seed has no spread: say so rather than print ± 0.0
        return f"{100 * values[0]:5.1f} (1 seed)"
    return f"{100 * statistics.mean(values):5.1f} ± {100 * statistics.stdev(values):4.1f}"


def experiment_table(run: Path, arms: list[Arm], pairs: dict[str, int]) -> str:
    header = f"  {'arm':<28}{'pairs':>7}{'seeds':>6}" + "".join(
        f"{name:>17}" for name, _ in METRICS
    )
    lines = [
        "",
        "Curation experiment: mean ± standard deviation over seeds, in % (chance in brackets)",
        header,
    ]
    chance_row = None
    for arm in arms:
        trials = read_trials(run, arm)
        cells = []
        chances = []
        for _, path in METRICS:
            figures = [pick(trial, path) for trial in trials]
            cells.append(mean_spread([value for value, _ in figures]))
            chances.append(figures[0][1] if figures else None)
        if trials and chance_row is None:
            chance_row = chances
        lines.append(
            f"  {arm.label:<28}{pairs.get(arm.key, 0):>7,}{len(trials):>6}"
            + "".join(f"{cell:>17}" for cell in cells)
        )
    if chance_row:
        lines.append(
            f"  {'chance':<41}"
            + "".join(
                f"{'[' + format(100 * c, '.1f') + ']' if c is not None else 'n/a':>17}"
                for c in chance_row
            )
        )
    return "\n".join(lines)


def score_arm_stages(args, run: Path, web: Path) -> list[demo.Stage]:
    """(e)'s data: a vocabulary of (c), then per seed two uid-half models on (c) and the
    cross-fitted filter (run/score_seeds/seed<N>/)."""
    vocab = run / SCORE_SEEDS / "vocab.txt"
    stages = [demo.vocab_stage(args, "vocab (score)", run / "filter", vocab)]
    for seed in seeds_of(args):
        place = run / SCORE_SEEDS / f"seed{seed}"
        stages += demo_score.score_stages(args, run, web, demo, vocab, seed=seed, place=place)
    return stages


def kept_pairs(args, arm: Arm) -> int:
    """The pairs an arm trains on: a per-seed arm's mean over its seeds."""
    counts = []
    for seed in seeds_of(args) if arm.per_seed else [args.seed]:
        stats = arm.shards_for(seed) / "stats.json"
        if stats.exists():
            counts.append(json.loads(stats.read_text())["kept"])
    return round(statistics.mean(counts)) if counts else 0


def score_rule_by_seed(args, run: Path, web: Path) -> dict[int, dict | None]:
    """{seed: the score rule's precision and recall against the web's ground truth}."""
    return {
        seed: demo_score.quality_dict(
            demo_score.score_quality(run / SCORE_SEEDS / f"seed{seed}", web)
        )
        for seed in seeds_of(args)
    }


def score_rule_text(by_seed: dict[int, dict | None]) -> str:
    """The score rule's quality as mean ± standard deviation over the experiment's seeds."""
    found = [quality for quality in by_seed.values() if quality]
    if not found:
        return ""

    def figure(key: str) -> str:
        values = [q[key] for q in found if q[key] is not None]
        return " ".join(mean_spread(values).split()) + "%" if values else "n/a"

    return "\n".join([
        "",
        f"Score rule, cross-fitted, over {len(found)} seeds (each its own two scorers), "
        "against the web's ground truth:",
        f"  recall on mismatched captions {figure('recall')} (target >= 80%)",
        f"  precision, any noise {figure('precision_any_noise')} (target >= 80%); "
        f"on mismatched captions alone {figure('precision')}",
    ])  # fmt: skip


def run_experiment(args) -> dict:
    """Builds the arms' shards, trains every (arm, seed), prints and returns the table."""
    from tools.synthweb import WebConfig  # noqa: PLC0415 - slow import, after parsing (demo.py)

    run = Path(args.run_dir).resolve()
    args.run_dir_path = run
    demo.clear_run_dir(run, args.force)
    logs = run / "logs"
    logs.mkdir(parents=True)
    (run / "eval_dedup_only.yaml").write_text(yaml.safe_dump(EVAL_DEDUP_ONLY, sort_keys=False))
    web, large_web = run / "web", run / "large" / "web"
    arms = arms_of(run, args.scale)
    started = time.monotonic()
    trials = len(arms) * args.seeds
    scorers = 3 * args.seeds + 1  # per seed two trainings and a filter; one vocabulary
    vocabs = len(arms) - 1 + args.seeds  # one per arm, one per seed for (e)
    total = 1 + 6 + 1 + 1 + 3 + scorers + vocabs + 2 * trials
    progress = StageProgress(total)
    stages: list[demo.Stage] = []

    def run_all(batch: list[demo.Stage]) -> None:
        for stage in batch:
            demo.run_with_progress(progress, stage, logs)
            stages.append(stage)

    with serve(web / "site", port=0) as server:
        config = WebConfig(n_pairs=args.pairs, seed=args.seed, port=server.port)
        progress.run("synthetic web", lambda: demo.make_web(web, config, server))
        run_all(demo.data_stages(args, run, web))
        run_all([dedup_only_stage(args, run / "download_unfiltered", run / "eval_dedup", web,
                                  "eval dedup only")])  # fmt: skip
    with serve(large_web / "site", port=0) as server:
        config = WebConfig(n_pairs=args.pairs * args.scale, seed=args.seed, port=server.port)
        progress.run("synthetic web (large)", lambda: demo.make_web(large_web, config, server))
        if eval_fingerprint(large_web) != eval_fingerprint(web):
            raise RuntimeError("the large web's evaluation sets differ from the small web's")
        run_all(large_web_stages(args, run, web, large_web))
    run_all(score_arm_stages(args, run, web))
    pairs = {arm.key: kept_pairs(args, arm) for arm in arms}
    for arm in arms:
        run_all(vocab_stages(args, run, arm))
        for seed in seeds_of(args):
            run_all(trial_stages(args, run, arm, web, seed, steps_of(args, arm, pairs)))

    score_rule = score_rule_by_seed(args, run, web)
    manifest = write_manifest(args, run, stages, arms, pairs, score_rule, started)
    print("\n".join([
        experiment_table(run, arms, pairs), comparisons_text(run, arms),
        curve_text(run, COMPARISONS, CURVE_STEP),
        score_rule_text(score_rule),
    ]))  # fmt: skip
    print(f"\nPer-seed metrics: {run / 'trials'}/<arm>/seed<N>/metrics.json")
    print(f"TensorBoard:      tensorboard --logdir {run / 'trials'}")
    print(f"\nFinished in {format_seconds(manifest['total_seconds'])}.")
    return manifest


def write_manifest(
    args, run: Path, stages, arms, pairs: dict, score_rule: dict, started: float
) -> dict:
    """RUN/manifest.json: the arguments, versions, every stage's command and stats, the kept
    pairs per arm, every trial's metrics and the score rule's quality per seed; returns it."""
    manifest = {
        "arguments": {k: v for k, v in vars(args).items() if k != "run_dir_path"},
        "versions": demo.package_versions(),
        "stages": [
            {"name": s.name, "command": s.command, "seconds": s.seconds, "stats": s.stats}
            for s in stages
        ],
        "pairs": pairs,
        "trials": {arm.key: read_trials(run, arm) for arm in arms},
        "score_rule": {f"seed{seed}": quality for seed, quality in score_rule.items()},
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest

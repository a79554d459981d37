"""The demo's model-as-curator stages: two short trainings on the two uid halves of the
rule-curated shards, then align-filter with both exports as cross-fitted scorers, ALIGN's
rules beside them, and the report scoring every rule against the web's ground truth.

No model scores a pair it trained on: half 0's model scores half 1 and the other way round
(filters/scoring.py). The score rule's row in that report (run/score_filter/report) is judged
against noise_mismatched_caption, the noise ALIGN's rules cannot see.
"""

from __future__ import annotations

from pathlib import Path

from filters.rules.image_text_score import LOW_SCORE

# Two short trainings, one per uid half of the curated pairs (~1,700 each). Measured on the
# demo's web (docs/model.md, "Your model as curator"): 350 steps learn colour but not yet shape
# (clean vs mismatched AUC 0.94, and no floor reaches recall and precision 0.8 together); 700
# steps separate them (AUC 0.98). At ~0.2 s/step on a quiet 2-core machine the two take ~5 min.
SCORE_STEPS = 700
# The floor, fixed from that measurement: a mismatched caption's cosine averages 0.05, a clean
# pair's 0.48; below 0.2 removed 80% of the mismatched captions at precision 0.94 (any noise).
DEMO_MIN_SCORE = 0.2
SCORE_DIR, SCORE_FILTER = "score", "score_filter"


def half_model_dir(place: Path, half: int) -> Path:
    return place / SCORE_DIR / f"half{half}"


def scorer_seeds(seed: int) -> tuple[int, int]:
    """The training seeds of the two uid-half scorers of training seed ``seed``: 2s+1, 2s+2,
    so the scorers of different seeds never share one (the demo, seed 0: 1 and 2)."""
    return 2 * seed + 1, 2 * seed + 2


def score_stages(
    args, run: Path, web: Path, demo, vocab: Path | None = None, seed: int | None = None,
    place: Path | None = None,
) -> list:  # fmt: skip
    """Trainings on each uid half of run/filter, then the cross-fitted filter with its report:
    ALIGN's rules as in the demo's ``filter all`` (eval-set dedup included) plus the score rule.

    ``demo`` is tools/demo.py, passed in by its caller (demo.py imports this module, so this
    module does not import it back); ``vocab`` is the curated arm's (run/filtered/vocab.txt
    by default). ``seed`` picks the scorers' training seeds (scorer_seeds; default --seed);
    their models and the scored filter go under ``place`` (default ``run``): the experiment
    gives each of its seeds its own pair of scorers.
    """
    cli, stage_class, train_stage = demo.cli, demo.Stage, demo.train_stage
    vocab = vocab or run / "filtered" / "vocab.txt"
    place = place or run
    seeds = scorer_seeds(args.seed if seed is None else seed)
    suffix = "" if seed is None else f" s{seed}"
    stages = []
    for half in (0, 1):
        trainer = train_stage(
            args, f"train half {half} (score{suffix})", run / "filter", vocab,
            half_model_dir(place, half), web, seeds[half],
        )  # fmt: skip
        trainer.command = with_flags(trainer.command, steps=args.score_steps, uid_half=half)
        trainer.command = _without_eval(trainer.command)
        stages.append(trainer)
    exports = []
    for half in (0, 1):
        exports += ["--score-model", str(half_model_dir(place, half) / "export")]
    stages.append(
        stage_class(
            f"filter all + score{suffix}",
            cli(
                "align-filter",
                "--stats",
                *exports,
                *demo.eval_set_flags(web),
                *demo.beam_flags(args.workers),
                rules="all",
                input=run / "download",
                output=place / SCORE_FILTER,
                config=_package_config(),
                min_score=args.min_score,
                ground_truth=web / "ground_truth.parquet",
            ),
            place / SCORE_FILTER,
        )
    )
    return stages


def _package_config() -> str:
    from importlib import resources  # noqa: PLC0415 - only when the stages are built

    return str(resources.files("filters").joinpath("configs", "small.yaml"))


def with_flags(command: list[str], **flags) -> list[str]:
    """The command with each --flag's value replaced, or appended when absent."""
    command = list(command)
    for name, value in flags.items():
        flag = f"--{name.replace('_', '-')}"
        if flag in command:
            command[command.index(flag) + 1] = str(value)
        else:
            command += [flag, str(value)]
    return command


def _without_eval(command: list[str]) -> list[str]:
    """No held-out evaluation during the short trainings: they only score."""
    out, skip = [], False
    for part in command:
        if skip:
            skip = False
            continue
        if part in ("--eval-zero-shot", "--eval-retrieval", "--eval-every", "--eval-attributes"):
            skip = True
            continue
        out.append(part)
    return out


def score_quality(run: Path, web: Path):
    """The score rule's row of the report's ground-truth table (a pipeline.report.truth.RuleQuality:
    precision, precision on any noise, recall), None if the scored run is missing."""
    if not (run / SCORE_FILTER / "stats.json").exists():
        return None
    from pipeline.report.gather import gather  # noqa: PLC0415 - Beam's file systems, after the run

    truth = gather(str(run / SCORE_FILTER), str(web / "ground_truth.parquet")).ground_truth
    return truth.of(LOW_SCORE) if truth is not None else None


def quality_lines(quality) -> list[str]:
    """The demo summary's lines on the score rule, against the issue's targets."""
    if quality is None:
        return []

    def percent(value) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    return [
        "",
        "Your model as curator (cross-fitted image-text score, report: "
        f"{SCORE_FILTER}/report/report.html)",
        f"  mismatched captions judged {quality.labelled:,}, removed by the score rule "
        f"{quality.both:,}: recall {percent(quality.recall)} (target >= 80%)",
        f"  pairs it removed {quality.flagged:,}: precision {percent(quality.precision)} on "
        f"mismatched captions, {percent(quality.precision_any_noise)} on any noise "
        "(target >= 80%)",
    ]


def quality_dict(quality) -> dict | None:
    """The score rule's counts and rates for the manifest."""
    if quality is None:
        return None
    return {
        "judged": quality.judged,
        "flagged": quality.flagged,
        "mismatched_judged": quality.labelled,
        "mismatched_flagged": quality.both,
        "flagged_any_noise": quality.flagged_noisy,
        "precision": quality.precision,
        "precision_any_noise": quality.precision_any_noise,
        "recall": quality.recall,
    }

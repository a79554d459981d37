"""The experiment's comparisons: seed-paired differences between two arms, with a p-value and
a 95% confidence interval, and the verdict a reader may draw from them.

Two arms trained with the same seed share initialisation, data order and crops as far as
their data allow, so the difference per seed is the unit of evidence: a paired t-test on
those differences (scipy, which scikit-image in the demo's extra brings) and the t interval
of their mean. A difference is "significant" at p < 0.05; a non-significant one is a null
result only when its interval is narrow (every value in it smaller than ``null_width``
points), else "inconclusive": more seeds would be needed to say.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

LABEL_WIDTH = 40  # the longest comparison label, "(d) 3x uncurated vs (b), equal epochs", fits
NULL_WIDTH = 0.05  # a difference within +-5 points of top-1 is "no effect" for this web


@dataclass(frozen=True)
class Comparison:
    label: str  # "(e) vs (c)"
    seeds: int  # paired seeds
    mean: float  # mean difference, first minus second arm
    low: float  # 95% interval of the mean difference
    high: float
    p: float | None  # two-sided paired t-test; None with fewer than two pairs or no spread

    @property
    def verdict(self) -> str:
        if self.p is not None and self.p < 0.05:
            return "significant"
        if max(abs(self.low), abs(self.high)) < NULL_WIDTH:
            return "null (narrow interval)"
        return "inconclusive"

    def line(self) -> str:
        p = "n/a" if self.p is None else f"{self.p:.3f}"
        return (
            f"  {self.label:<{LABEL_WIDTH}}{self.seeds:>6}{100 * self.mean:>+9.1f}"
            f"   [{100 * self.low:+.1f}, {100 * self.high:+.1f}]{p:>9}   {self.verdict}"
        )


def paired(label: str, first: dict[int, float], second: dict[int, float]) -> Comparison:
    """Compares two arms' figures per seed ({seed: value}) over the seeds both have."""
    from scipy import stats  # noqa: PLC0415 - only when an experiment prints its table

    seeds = sorted(set(first) & set(second))
    differences = [first[seed] - second[seed] for seed in seeds]
    if not differences:
        return Comparison(label, 0, math.nan, math.nan, math.nan, None)
    mean = statistics.fmean(differences)
    if len(differences) < 2 or statistics.stdev(differences) == 0:
        return Comparison(label, len(seeds), mean, mean, mean, None)
    error = statistics.stdev(differences) / math.sqrt(len(differences))
    half = stats.t.ppf(0.975, len(differences) - 1) * error
    p = float(stats.ttest_rel(
        [first[s] for s in seeds], [second[s] for s in seeds]
    ).pvalue)  # fmt: skip
    return Comparison(label, len(seeds), mean, mean - half, mean + half, p)


def comparison_table(comparisons: list[Comparison], metric: str) -> str:
    header = (
        f"  {'comparison':<{LABEL_WIDTH}}{'seeds':>6}{'diff':>9}   {'95% interval':<16}{'p':>6}"
        "   verdict"
    )
    lines = ["", f"Seed-paired differences in {metric} (points; paired t-test)", header]
    return "\n".join(lines + [comparison.line() for comparison in comparisons])

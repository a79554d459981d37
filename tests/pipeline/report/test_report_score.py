"""The score rule in the report: judged against mismatched captions when it ran, and those
captions shown as noise no rule targets when it did not."""

import pyarrow as pa

from filters.rules.image_text_score import LOW_SCORE
from pipeline.report.truth import QualityCounter

TRUTH = pa.table({
    "url": ["a", "b", "c", "d"], "alt": ["w", "x", "y", "z"],
    "noise_mismatched_caption": [True, True, False, False],
    "noise_too_short": [False, False, True, False],
})  # fmt: skip
MEASURED = pa.table({
    "url": ["a", "b", "c", "d"], "alt": ["w", "x", "y", "z"], "kept": [False, True, False, True],
    "reasons": [[LOW_SCORE], [], [LOW_SCORE], []], "sha256": ["1", "2", "3", "4"],
})  # fmt: skip


def test_the_score_rule_is_judged_against_mismatched_captions_when_it_ran():
    counter = QualityCounter(TRUTH, applied=["alt_length", "image_text_score"])
    counter.add(MEASURED)
    quality = counter.result().of(LOW_SCORE)
    assert (quality.judged, quality.flagged, quality.labelled, quality.both) == (4, 2, 2, 1)
    assert (quality.precision, quality.precision_any_noise, quality.recall) == (0.5, 1.0, 0.5)
    untargeted = [label.label for label in counter.result().untargeted]
    assert "noise_mismatched_caption" not in untargeted


def test_without_the_score_rule_mismatched_captions_are_untargeted_noise():
    counter = QualityCounter(TRUTH, applied=["alt_length"])
    counter.add(MEASURED)
    assert counter.result().of(LOW_SCORE) is None
    (mismatched,) = [
        label for label in counter.result().untargeted if label.label == "noise_mismatched_caption"
    ]
    assert (mismatched.labelled, mismatched.kept) == (2, 1)

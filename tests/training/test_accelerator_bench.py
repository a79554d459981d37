"""bench/accelerator.py --smoke: trains the small towers with Keras's JAX backend on CPU, with
TensorFlow unimportable (as on the GPU machines it is meant for), and counts FLOPs right."""

import json

import pytest

from bench.accelerator import peak_tflops
from tests.blocked_imports import run_without

# Slow: JAX compiles the train step in a fresh interpreter; started first (tests/conftest.py).
pytestmark = pytest.mark.slow

BATCH, TOKENS, HIDDEN, INTERMEDIATE, EMBED = 8, 16, 128, 512, 128  # bert_tiny, convnet_tiny


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("accelerator")
    output = workdir / "smoke.json"
    code = (
        "import runpy\n"
        f"sys.argv = ['bench/accelerator.py', '--smoke', '--peak-tflops', '2',"
        f" '--output', {str(output)!r}]\n"
        "runpy.run_path('bench/accelerator.py', run_name='__main__')\n"
    )
    outcome = run_without(("tensorflow", "tensorflow_text", "torch"), code, workdir, timeout=300)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    return {"report": json.loads(output.read_text()), "attempted": outcome.attempted}


def analytic_forward_flops() -> float:
    """The smoke towers' multiply-adds x 2, counted by hand: convnet_tiny's 3x3 convolutions
    at 32 px, bert_tiny's projections, feed-forward and attention over 16 tokens, the text
    projection, and the loss's two B x B similarity matrices."""
    conv, channels, size = 0, 3, 32
    for width in (16, 32, 64, 128):
        conv += 2 * size * size * 9 * channels * width  # stride 1
        size //= 2
        conv += 2 * size * size * 9 * width * width  # stride 2
        channels = width
    layer = 4 * 2 * TOKENS * HIDDEN**2 + 2 * 2 * TOKENS * HIDDEN * INTERMEDIATE
    layer += 2 * 2 * TOKENS**2 * HIDDEN  # scores and weighted values
    per_example = conv + 2 * layer + 2 * HIDDEN * EMBED
    return BATCH * per_example + 2 * 2 * BATCH**2 * EMBED


def test_smoke_runs_without_tensorflow_on_jax(smoke):
    report = smoke["report"]
    assert smoke["attempted"] == []  # nothing of the project's even asked for TensorFlow
    assert report["backend"].startswith("keras 3") and "on jax" in report["backend"]
    assert report["platform"] == "cpu" and report["precision"] == "mixed_bfloat16"


def test_smoke_reports_throughput_of_its_steps(smoke):
    (result,) = smoke["report"]["results"]
    assert result["config"] == "small" and result["batch_size"] == BATCH
    assert result["examples_per_second"] == pytest.approx(BATCH / result["step_seconds"])
    assert 0 < result["last_loss"] < 10  # finite: 2 log(8) ~ 4.2 at the start


def test_model_flops_are_three_forward_passes_as_counted_by_hand(smoke):
    (result,) = smoke["report"]["results"]
    # XLA also counts elementwise work (norms, activations, softmax) and skips nothing real.
    assert result["model_flops_per_step"] == pytest.approx(3 * analytic_forward_flops(), rel=0.15)


def test_mfu_is_achieved_flops_over_the_peak(smoke):
    (result,) = smoke["report"]["results"]
    achieved = result["model_flops_per_step"] / result["step_seconds"]
    assert result["mfu"] == pytest.approx(achieved / 2e12)


@pytest.mark.parametrize(
    "device_kind, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("TPU v4", 275.0),
        ("cpu", None),
    ],
)
def test_peak_comes_from_the_table_by_device_name(device_kind, peak):
    assert peak_tflops(device_kind) == peak

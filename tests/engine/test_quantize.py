"""Weight-only int8/int4 linear layers (opt-in speed levers on the CPU): close to the float
layer they replace, and a real (tiny) model built of them still answers through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.engine.engine_helpers import ask_job, run_job
from tests.support.offline_models import tiny_llama
from torch import nn

from tiangong.engine.models import load_model_and_tokenizer
from tiangong.engine.quantize import Int4WeightLinear, Int8WeightLinear, quantize_weights
from tiangong.engine.transformers_engine import TransformersEngine


@pytest.mark.parametrize(("kind", "tolerance"), [(Int8WeightLinear, 0.01), (Int4WeightLinear, 0.1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_quantized_layer_computes_what_the_float_layer_does_within_its_precision(
    kind: type[nn.Module], tolerance: float, dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(256, 384, bias=True).to(dtype)
    x = torch.randn(2, 5, 256, dtype=dtype)
    with torch.inference_mode():
        expected = linear(x).float()
        got = kind(linear)(x).float()  # type: ignore[call-arg]
    assert got.shape == expected.shape
    assert float((got - expected).norm() / expected.norm()) < tolerance


@pytest.mark.parametrize("bits", [8, 4])
async def test_a_model_with_quantized_weights_answers_through_the_engine(
    data_dir: Path, bits: int
) -> None:
    model, tokenizer = load_model_and_tokenizer(tiny_llama(), "cpu", torch.float32)
    quantize_weights(model, bits)
    assert not any(type(m) is nn.Linear for m in model.modules())
    engine = TransformersEngine(model, tokenizer, label="q", device="cpu")
    outcome = await run_job(engine, ask_job("Hello?", max_tokens=6, min_tokens=6))
    assert outcome.finish.finish_reason == "length" and outcome.finish.completion_tokens == 6
    await engine.aclose()

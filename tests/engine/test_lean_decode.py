"""The engine's own decode step (engine/lean_decode.py) computes what transformers' forward
computes: the same answers from batches with padding, on Llama and Qwen2 models; layers are
held as int4 only when their weights are exactly 4-bit (as a Q4_1 GGUF's are), and then
answer as those weights do. Real tiny models built offline; no mocks."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.engine.engine_helpers import run_job
from tests.engine.test_attention_paths import mixed_jobs, scored
from tests.support.offline_models import tiny_llama, tiny_qwen2

from tiangong.engine.base import GenerationParams, Job
from tiangong.engine.kv import new_cache, reserve
from tiangong.engine.lean_decode import CANDIDATES, LeanDecoder, why_not_lean
from tiangong.engine.models import load_model_and_tokenizer
from tiangong.engine.quantize import INT4_GROUP, exact_int4
from tiangong.engine.transformers_engine import TransformersEngine
from tiangong.openmp import in_a_passing_thread

MODELS = {"llama": tiny_llama, "qwen2": tiny_qwen2}


@pytest.fixture(scope="module", params=sorted(MODELS))
def pair(
    request: pytest.FixtureRequest, data_dir: Path
) -> Iterator[tuple[TransformersEngine, TransformersEngine]]:
    """The same fp32 model twice: decode steps through the lean step, and through
    transformers' forward."""
    folder = str(MODELS[request.param]())
    lean = TransformersEngine.load(folder, data_dir=data_dir, dtype="float32")
    plain = TransformersEngine.load(folder, data_dir=data_dir, dtype="float32", lean_decode=False)
    yield lean, plain


async def test_batched_answers_through_the_lean_step_are_transformers_answers(
    pair: tuple[TransformersEngine, TransformersEngine],
) -> None:
    lean, plain = pair
    assert lean.decode_path == "lean" and plain.decode_path == "transformers"
    assert lean.details["decode"] == "lean"
    jobs = mixed_jobs()
    expected = [await run_job(plain, job) for job in jobs]
    lean._runner.widest_batch = 0
    together = await asyncio.gather(*(run_job(lean, job) for job in jobs))
    assert lean._runner.widest_batch >= 4  # rows of different lengths: padding masks
    assert [o.text for o in together] == [o.text for o in expected]
    assert [o.finish for o in together] == [o.finish for o in expected]


async def test_the_lean_step_scores_every_token_as_transformers_does(
    pair: tuple[TransformersEngine, TransformersEngine],
) -> None:
    lean, plain = pair
    lean.banned_ngram = plain.banned_ngram = 0
    try:
        for job in mixed_jobs()[:3]:
            capped = Job(job.task, job.messages, GenerationParams(10, min_tokens=10))
            (ours, our_scores), (theirs, their_scores) = (
                await scored(lean, capped),
                await scored(plain, capped),
            )
            assert ours.text == theirs.text
            for a, b in zip(our_scores, their_scores, strict=True):
                assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    finally:
        lean.banned_ngram = plain.banned_ngram = 3


def snap_to_q4_1(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Weights as a Q4_1 GGUF holds them: 16 levels per group of 32 inputs, from its
    minimum (code 0) to its maximum (code 15)."""
    out, inp = weight.shape
    codes = torch.randint(0, 16, (out, inp // INT4_GROUP, INT4_GROUP), generator=generator)
    codes[..., 0], codes[..., 1] = 0, 15
    scale = torch.rand(out, inp // INT4_GROUP, 1, generator=generator) * 0.01 + 0.001
    low = -8 * scale + torch.randn(out, inp // INT4_GROUP, 1, generator=generator) * 0.002
    return (codes * scale + low).reshape(out, inp)


def test_only_weights_that_are_exactly_4_bit_are_packed_and_they_compute_the_same() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 256, generator=generator).bfloat16()
    random_weights = (torch.randn(64, 256, generator=generator) * 0.02).bfloat16()
    assert exact_int4(random_weights) is None
    eight_bit = (torch.randint(-127, 128, (64, 256), generator=generator) * 1e-4).bfloat16()
    assert exact_int4(eight_bit) is None

    q4 = snap_to_q4_1(random_weights.float(), generator)
    packed = exact_int4(q4.bfloat16())
    assert packed is not None
    got = torch._weight_int4pack_mm_for_cpu(x, packed[0], INT4_GROUP, packed[1]).float()
    want = F.linear(x.float(), q4)
    assert float((got - want).abs().max()) <= 0.01 * float(want.abs().max())


def decode_logits(
    model: object, step: object, prompt: torch.Tensor, tokens: list[int]
) -> list[torch.Tensor]:
    """Scores of each decode step after `prompt`, feeding `tokens` one by one."""
    cache = new_cache(model.config)  # type: ignore[attr-defined]
    reserve(cache, prompt.shape[1] + len(tokens) + 1)
    with torch.inference_mode():
        model(input_ids=prompt, cache=cache, use_cache=True)  # type: ignore[operator]
        out = []
        for i, token in enumerate(tokens):
            where = torch.tensor([[prompt.shape[1] + i]])
            out.append(step(torch.tensor([[token]]), where, cache).float())  # type: ignore[operator]
    return out


def test_a_model_whose_weights_are_4_bit_decodes_from_int4_as_faithfully_as_from_bf16() -> None:
    model, tokenizer = load_model_and_tokenizer(tiny_llama(), "cpu", torch.float32)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("proj.weight"):
                parameter.copy_(snap_to_q4_1(parameter, generator))
    reference = copy.deepcopy(model).to(torch.float64)  # what the GGUF's weights compute
    engine = TransformersEngine(model.to(torch.bfloat16), tokenizer, label="4-bit", device="cpu")
    layers = 7 * model.config.num_hidden_layers
    assert engine.decode_path == (
        f"lean ({layers} of {layers} linear layers as exact int4; "
        f"output layer estimated from int4, its best {CANDIDATES} exact)"
    )
    prompt = torch.randint(3, 1000, (1, 40), generator=generator)
    tokens = torch.randint(3, 1000, (12,), generator=generator).tolist()

    def forward(m: object) -> object:
        return lambda ids, where, cache: m(  # type: ignore[operator]
            input_ids=ids, position_ids=where, cache=cache, use_cache=True
        ).logits[:, -1]

    truth = decode_logits(reference, forward(reference), prompt, tokens)
    bf16 = decode_logits(engine._model, forward(engine._model), prompt, tokens)
    assert engine.decoder is not None
    decoder = engine.decoder
    int4 = decode_logits(
        engine._model,
        lambda ids, where, cache: decoder(
            input_ids=ids, position_ids=where, valid=None, cache=cache
        ),
        prompt,
        tokens,
    )
    # The scores that choose a token: the best ones (the output layer computes only its
    # best candidates exactly; `OutputLayer` has its own test below).
    best = [t[0].topk(16).indices for t in truth]

    def error(scores: list[torch.Tensor]) -> float:
        return max(
            float((s[0, top] - t[0, top]).abs().max())
            for s, t, top in zip(scores, truth, best, strict=True)
        )

    scale = max(float(t.abs().max()) for t in truth)
    bf16_error, int4_error = error(bf16), error(int4)
    assert int4_error <= 0.03 * scale, (int4_error, scale)
    assert int4_error <= 2 * bf16_error + 1e-3, (int4_error, bf16_error)
    assert [int(q.argmax()) for q in int4] == [int(t.argmax()) for t in truth]


def test_the_output_layer_scores_its_best_candidates_exactly_and_chooses_as_its_weights_do(
    data_dir: Path,
) -> None:
    """The int4 estimate of every token's score only picks the candidates: their scores are
    the full bf16 product's bit for bit, so greedy answers are those of the exact layer."""
    engine = TransformersEngine.load(str(tiny_llama()), data_dir=data_dir, dtype="bfloat16")
    decoder = engine.decoder
    assert isinstance(decoder, LeanDecoder) and decoder.lm_head.int4 is not None
    generator = torch.Generator().manual_seed(2)
    prompt = torch.randint(3, 1000, (3, 30), generator=generator)
    tokens = torch.randint(3, 1000, (3, 6), generator=generator)
    model = engine._model

    def scores(estimate: bool) -> list[torch.Tensor]:
        kept = decoder.lm_head.int4
        decoder.lm_head.int4 = kept if estimate else None
        try:
            cache = new_cache(model.config, torch.float32)
            reserve(cache, 40)
            out = []
            with torch.inference_mode():
                model(input_ids=prompt, cache=cache, use_cache=True)
                for i in range(tokens.shape[1]):
                    where = torch.full((3, 1), prompt.shape[1] + i)
                    step = decoder(
                        input_ids=tokens[:, i : i + 1], position_ids=where, valid=None, cache=cache
                    )
                    out.append(step.float())
            return out
        finally:
            decoder.lm_head.int4 = kept

    for estimated, exact in zip(scores(True), scores(False), strict=True):
        top = exact.topk(CANDIDATES // 2, dim=-1).indices
        assert torch.equal(estimated.gather(1, top), exact.gather(1, top))
        assert torch.equal(estimated.argmax(-1), exact.argmax(-1))
        # The rest are estimates: close, not equal (the layer's weights are not 4-bit).
        assert not torch.equal(estimated, exact)
        assert float((estimated - exact).abs().max()) <= 0.1 * float(exact.abs().max())
    asyncio.run(engine.aclose())


def test_models_of_another_shape_decode_through_transformers_forward() -> None:
    model, _ = load_model_and_tokenizer(tiny_llama(), "cpu", torch.float32)
    assert why_not_lean(model) is None
    model.config.hidden_act = "gelu"
    assert why_not_lean(model) == "activation gelu"
    model.config.hidden_act = "silu"
    model.config.model_type = "gemma"
    assert why_not_lean(model) == "model type 'gemma'"


def test_a_model_loads_in_a_thread_that_then_ends(data_dir: Path) -> None:
    """OpenMP stops spinning once more threads than cores hold workers (tiangong/openmp.py):
    the load's parallel work must not leave a living thread behind."""
    seen: set[threading.Thread] = set()
    engine = TransformersEngine.load(
        str(tiny_llama()),
        data_dir=data_dir,
        dtype="float32",
        progress=lambda *_: seen.add(threading.current_thread()),
    )
    assert seen and threading.current_thread() not in seen
    assert not any(thread.is_alive() for thread in seen)
    asyncio.run(engine.aclose())
    with pytest.raises(ValueError, match="bad load"):
        in_a_passing_thread(lambda: (_ for _ in ()).throw(ValueError("bad load")))


def test_a_decode_steps_append_writes_what_a_general_update_writes() -> None:
    """`GrowableLayer.append` (the lean step's write) and `update` leave the same states,
    within the reserved room and past it (where append grows the storage as update does)."""
    from tiangong.engine.kv import GrowableLayer

    generator = torch.Generator().manual_seed(3)
    prompt = torch.randn(2, 3, 5, 8, generator=generator).bfloat16()
    steps = [torch.randn(2, 3, 1, 8, generator=generator).bfloat16() for _ in range(300)]
    layers = []
    for write in ("update", "append"):
        layer = GrowableLayer(torch.float32)
        layer.reserved = 16  # room for 16 positions: the later steps must grow it
        layer.update(prompt, -prompt)
        for state in steps:
            keys, _ = getattr(layer, write)(state, -state)
            assert keys.shape[2] == layer.get_seq_length() and keys.dtype == torch.float32
        layers.append(layer)
    (k1, v1), (k2, v2) = (layer.filled() for layer in layers)
    assert k1.shape == (2, 3, 305, 8)
    assert torch.equal(k1, k2) and torch.equal(v1, v2)
    assert torch.equal(k2[:, :, -1:], steps[-1].float())

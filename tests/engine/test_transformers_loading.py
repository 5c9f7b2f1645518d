"""Loading models through the user path: folders, hub ids, devices, dtypes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.engine.engine_helpers import ask_job, run_job
from tests.support.offline_models import tiny_llama

from tiangong.engine.base import ASK, BATCHING, PREFIX_CACHE, REWRITE, SUMMARIZE, ChatMessage
from tiangong.engine.embedded import EMBEDDED_FILE_NAME, embedded_gguf_path
from tiangong.engine.models import available_cores, resolve_model_spec
from tiangong.engine.transformers_engine import TransformersEngine
from tiangong.errors import BadRequestError, ModelNotFoundError, UnsupportedError


def test_a_model_folder_loads_and_describes_itself(llama_engine: TransformersEngine) -> None:
    assert llama_engine.name == "transformers"
    assert llama_engine.model == tiny_llama().name
    assert llama_engine.context_tokens == 4096
    assert llama_engine.capabilities == {SUMMARIZE, ASK, REWRITE, BATCHING, PREFIX_CACHE}
    assert llama_engine.max_concurrency == 8  # requests decoded together
    assert torch.get_num_threads() == available_cores()


def test_prompt_tokens_count_the_chat_template_exactly(llama_engine: TransformersEngine) -> None:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hello there, engine."))
    rendered = llama_engine.tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        add_generation_prompt=True,
        tokenize=False,
    )
    expected = len(llama_engine.tokenizer.encode(rendered, add_special_tokens=False))
    assert llama_engine.count_prompt_tokens(messages) == expected
    assert expected > llama_engine.count_tokens("Be brief.") + llama_engine.count_tokens(
        "Hello there, engine."
    )


async def test_a_qwen2_folder_loads_with_its_own_tokenizer_class(
    qwen2_engine: TransformersEngine,
) -> None:
    assert type(qwen2_engine.tokenizer).__name__ == "Qwen2Tokenizer"
    assert qwen2_engine.tokenizer.convert_tokens_to_ids("<|im_end|>") in qwen2_engine.eos_token_ids
    outcome = await run_job(qwen2_engine, ask_job("Hello?", max_tokens=6, min_tokens=6))
    assert outcome.finish.finish_reason == "length" and outcome.text


async def test_bfloat16_on_request_and_progress_is_reported(data_dir: Path) -> None:
    stages: list[tuple[str, int, int]] = []
    engine = TransformersEngine.load(
        str(tiny_llama()),
        device="cpu",
        dtype="bfloat16",
        data_dir=data_dir,
        progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    assert engine._model.dtype == torch.bfloat16
    assert stages == [("load", 0, 1), ("load", 1, 1)]
    outcome = await run_job(engine, ask_job("Hi", max_tokens=4, min_tokens=4))
    assert outcome.finish.completion_tokens == 4
    await engine.aclose()


def test_a_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        TransformersEngine.load(str(tmp_path / "nope"), data_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match="not found"):
        TransformersEngine.load(str(tmp_path / "model.gguf"), data_dir=tmp_path)


def test_a_folder_without_a_model_or_a_stray_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        TransformersEngine.load(str(tmp_path), data_dir=tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model", encoding="utf-8")
    with pytest.raises(BadRequestError, match=r"not a \.gguf"):
        TransformersEngine.load(str(notes), data_dir=tmp_path)


def test_an_unreachable_hub_id_gives_a_clear_error(tmp_path: Path) -> None:
    assert resolve_model_spec("Qwen/Qwen2.5-0.5B-Instruct").kind == "hub"
    with pytest.raises(
        ModelNotFoundError, match=r"could not download Qwen/Qwen2\.5-0\.5B-Instruct"
    ):
        TransformersEngine.load("Qwen/Qwen2.5-0.5B-Instruct", data_dir=tmp_path)


def test_bad_device_and_dtype_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="device"):
        TransformersEngine.load(str(tiny_llama()), device="gpu", data_dir=tmp_path)
    with pytest.raises(BadRequestError, match="dtype"):
        TransformersEngine.load(str(tiny_llama()), dtype="int3", data_dir=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_without_a_gpu_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="CUDA"):
        TransformersEngine.load(str(tiny_llama()), device="cuda", data_dir=tmp_path)


def test_the_embedded_model_file_is_found_in_its_wheel() -> None:
    path = embedded_gguf_path()
    assert path.name == EMBEDDED_FILE_NAME
    assert path.stat().st_size > 50_000_000
    assert resolve_model_spec(None).label == "SmolLM2-135M-Instruct (embedded)"


async def test_int8_weights_load_through_the_user_path_and_answer(tmp_path: Path) -> None:
    engine = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="int8")
    outcome = await run_job(engine, ask_job("Hello there.", max_tokens=6, min_tokens=6))
    assert outcome.finish.completion_tokens == 6 and outcome.text
    linears = {type(m).__module__ for m in engine._model.modules() if "Linear" in type(m).__name__}
    assert any("quantized" in module for module in linears), linears

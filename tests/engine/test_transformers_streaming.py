"""Streaming from real (tiny, random-weight) models: text, stops, cancel, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

import pytest
import torch
from tests.engine.engine_helpers import FailAtStep, ask_job, force_text, run_job

from tiangong.engine.base import CancelToken, Delta, Finish
from tiangong.engine.streaming import IncrementalDecoder, StopStringFilter
from tiangong.engine.transformers_engine import TransformersEngine
from tiangong.errors import EngineFailedError, TooLargeError

CHINESE_AND_EMOJI = "北京欢迎你！天宫 🦄🎉 好的 ok 👍🏽 再见。"
LONG_PROMPT = " ".join(["The committee met on Tuesday to discuss the new budget."] * 120)


async def test_streamed_deltas_join_to_what_plain_generate_decodes(
    llama: TransformersEngine,
) -> None:
    llama.banned_ngram = 0  # plain generate has no ban either
    job = ask_job("Tell me about the budget.", max_tokens=40, min_tokens=40)
    outcome = await run_job(llama, job)

    prompt = torch.tensor([llama.prompt_ids(job.messages)])
    plain = llama._model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=40,
        min_new_tokens=40,
        do_sample=False,
        eos_token_id=sorted(llama.eos_token_ids),
        pad_token_id=llama.tokenizer.pad_token_id,
    )
    new_ids = plain[0, prompt.shape[1] :].tolist()
    assert len(outcome.deltas) > 1
    decoded = llama.tokenizer.decode(new_ids, skip_special_tokens=True)
    # An answer cut by max_tokens in the middle of a character drops that half character.
    assert outcome.text == decoded.rstrip("\ufffd")
    assert outcome.finish == Finish("length", prompt.shape[1], 40)


@pytest.mark.parametrize("engine_name", ["llama_engine", "qwen2_engine"])
async def test_chinese_and_emoji_stream_as_whole_characters(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    engine: TransformersEngine = request.getfixturevalue(engine_name)
    job = ask_job("Say hello in Chinese.", max_tokens=200)
    ids, steer = force_text(engine, job, CHINESE_AND_EMOJI)
    # The string must really cross token boundaries inside characters to test anything.
    partial = [i for i in ids if "\ufffd" in engine.tokenizer.decode([i])]
    assert len(partial) >= 6

    outcome = await run_job(engine, job, processors=[steer])

    assert outcome.text == CHINESE_AND_EMOJI
    assert all("\ufffd" not in piece for piece in outcome.deltas)
    assert outcome.finish.finish_reason == "stop"
    assert outcome.finish.completion_tokens == len(ids) + 1  # the end-of-turn token counts


@pytest.mark.parametrize("engine_name", ["llama_engine", "qwen2_engine"])
def test_incremental_decoder_holds_back_half_characters(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    tokenizer = request.getfixturevalue(engine_name).tokenizer
    ids = tokenizer.encode("Mix: 欢迎 🦄 and spaces  here", add_special_tokens=False)
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push(i) for i in ids]
    pieces.append(decoder.flush())
    assert "".join(pieces) == tokenizer.decode(ids)
    assert all("\ufffd" not in p for p in pieces)
    assert "" in pieces[:-1]  # something was held back until its character completed


async def test_max_tokens_ends_with_length(llama: TransformersEngine) -> None:
    outcome = await run_job(llama, ask_job("Go on.", max_tokens=7, min_tokens=7))
    assert outcome.finish.finish_reason == "length"
    assert outcome.finish.completion_tokens == 7


async def test_stop_string_ends_the_answer_and_is_trimmed(llama: TransformersEngine) -> None:
    job = ask_job("List two things.", max_tokens=100, stop=("\n\n", "END"))
    _, steer = force_text(llama, job, "apples and pears END of the list, more text")
    outcome = await run_job(llama, job, processors=[steer])
    assert outcome.text == "apples and pears "
    assert outcome.finish.finish_reason == "stop"
    assert outcome.finish.completion_tokens < 12


def test_stop_filter_releases_text_that_only_looked_like_a_stop() -> None:
    stop_filter = StopStringFilter(("</answer>",))
    assert stop_filter.feed("value </ans") == "value "
    assert stop_filter.feed("wer-ish") == "</answer-ish"
    assert stop_filter.feed(" and </answer> gone") == " and "
    assert stop_filter.stopped
    assert stop_filter.feed("more") == "" and stop_filter.flush() == ""


async def test_cancel_mid_decode_stops_soon_and_the_next_job_works(
    llama: TransformersEngine,
) -> None:
    cancel = CancelToken()
    job = ask_job("Write a long story.", max_tokens=3000, min_tokens=3000)
    deltas = 0
    finish: Finish | None = None
    async for item in llama.stream(job, cancel):
        if isinstance(item, Delta):
            deltas += 1
            if deltas == 5:
                cancel.cancel()
        else:
            finish = item
    assert finish is not None and finish.finish_reason == "cancelled"
    assert finish.completion_tokens < 100

    after = await run_job(llama, ask_job("Hello again.", max_tokens=5, min_tokens=5))
    assert after.finish.finish_reason == "length" and after.text


async def test_cancel_before_the_job_starts_finishes_at_once(llama: TransformersEngine) -> None:
    cancel = CancelToken()
    cancel.cancel()
    outcome = await run_job(llama, ask_job("Anything.", max_tokens=50), cancel)
    assert outcome.deltas == []
    assert outcome.finish == Finish("cancelled", 0, 0)


async def test_cancel_during_a_long_prefill_stops_between_chunks(
    llama: TransformersEngine,
) -> None:
    cancel = CancelToken()
    forwards: list[int] = []

    def cancel_on_first_forward(module: object, args: object, kwargs: dict[str, object]) -> None:
        forwards.append(1)
        cancel.cancel()

    hook = llama._model.register_forward_pre_hook(cancel_on_first_forward, with_kwargs=True)
    try:
        outcome = await run_job(llama, ask_job(LONG_PROMPT, max_tokens=20), cancel)
    finally:
        hook.remove()
    assert len(llama.prompt_ids(ask_job(LONG_PROMPT, max_tokens=1).messages)) > 4 * 512
    assert outcome.finish.finish_reason == "cancelled"
    assert outcome.finish.completion_tokens == 0
    assert len(forwards) == 1  # one chunk ran; the other chunks never did


async def test_cancel_inside_a_prompt_chunk_stops_at_the_next_layer(
    llama: TransformersEngine,
) -> None:
    """The whole long prompt as one chunk: a cancel arriving while its first layer runs
    stops the chunk before the second layer, and the next request is served as usual."""
    layers = list(llama._model.model.layers)
    cancel = CancelToken()
    finished: list[int] = []
    hooks = [
        layer.register_forward_hook(lambda *_, i=i: finished.append(i))
        for i, layer in enumerate(layers)
    ]
    hooks.append(layers[0].register_forward_pre_hook(lambda *_: cancel.cancel()))
    chunk = llama.prefill_chunk_tokens
    llama.prefill_chunk_tokens = 0  # one chunk: without the layer check, all layers run
    try:
        outcome = await run_job(llama, ask_job(LONG_PROMPT, max_tokens=20), cancel)
    finally:
        llama.prefill_chunk_tokens = chunk
        for hook in hooks:
            hook.remove()
    assert len(layers) > 1
    assert outcome.finish.finish_reason == "cancelled" and not outcome.deltas
    assert finished == [0]  # the first layer finished; the second never started
    after = await run_job(llama, ask_job("Anything?", max_tokens=5, min_tokens=5))
    assert after.finish.finish_reason == "length" and after.finish.completion_tokens == 5


async def test_chunked_prefill_gives_the_same_answer_as_one_pass(
    llama: TransformersEngine,
) -> None:
    job = ask_job(LONG_PROMPT + "\nWhat did the committee discuss?", max_tokens=30, min_tokens=30)
    llama.prefill_chunk_tokens = 512
    chunked = await run_job(llama, job)
    llama.prefill_chunk_tokens = 0
    whole = await run_job(llama, job)
    assert chunked.finish.prompt_tokens > 2 * 512
    assert chunked.text == whole.text
    assert chunked.finish == whole.finish


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (RuntimeError("kernel exploded"), "failed while generating"),
        (torch.OutOfMemoryError("CUDA out of memory"), "out of memory"),
    ],
)
async def test_failure_inside_generation_raises_engine_failed_and_the_engine_recovers(
    llama: TransformersEngine, error: Exception, words: str
) -> None:
    job = ask_job("Talk to me.", max_tokens=50, min_tokens=50)
    deltas: list[str] = []
    with pytest.raises(EngineFailedError, match=words):
        async for item in llama.stream_with_processors(job, CancelToken(), [FailAtStep(6, error)]):
            assert isinstance(item, Delta), "no Finish after a failure"
            deltas.append(item.text)
    assert deltas  # the text produced before the failure still reached the caller

    after = await run_job(llama, ask_job("Still there?", max_tokens=5, min_tokens=5))
    assert after.finish.finish_reason == "length"


async def test_sampling_with_temperature_still_streams(llama: TransformersEngine) -> None:
    job = ask_job("Be creative.", max_tokens=12, min_tokens=12, temperature=0.8)
    outcome = await run_job(llama, job)
    assert outcome.finish.completion_tokens == 12 and outcome.text


async def test_jobs_from_two_tasks_both_complete(llama: TransformersEngine) -> None:
    first, second = await asyncio.gather(
        run_job(llama, ask_job("One.", max_tokens=8, min_tokens=8)),
        run_job(llama, ask_job("Two.", max_tokens=8, min_tokens=8)),
    )
    assert first.finish.completion_tokens == second.finish.completion_tokens == 8


async def test_a_prompt_beyond_the_context_is_too_large(llama: TransformersEngine) -> None:
    job = ask_job(LONG_PROMPT * 3, max_tokens=10)
    assert llama.count_prompt_tokens(job.messages) > llama.context_tokens
    with pytest.raises(TooLargeError, match="tokens"):
        await run_job(llama, job)
    after = await run_job(llama, ask_job("Short one.", max_tokens=3, min_tokens=3))
    assert after.finish.completion_tokens == 3


async def test_an_abandoned_stream_frees_the_worker_for_the_next_job(
    llama: TransformersEngine,
) -> None:
    forwards: list[int] = []
    hook = llama._model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        stream = cast(
            AsyncGenerator[Delta | Finish, None],
            llama.stream(ask_job("Keep going.", max_tokens=3000, min_tokens=3000), CancelToken()),
        )
        async for item in stream:
            assert isinstance(item, Delta)
            break
        await stream.aclose()  # the caller walked away
        after = await run_job(llama, ask_job("Next.", max_tokens=4, min_tokens=4))
    finally:
        hook.remove()
    assert after.finish.finish_reason == "length"
    # The abandoned job stopped at its next step instead of running 3000 of them.
    assert len(forwards) < 100

"""The `openai` engine against two kinds of real servers on loopback: our own API serving a
real (offline-built) transformers model, and a scripted server that refuses, stalls, breaks
off or fails mid-stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import TOKEN, free_port, run_server
from tests.openai.upstream import Behaviour, upstream
from tests.support.offline_models import tiny_llama
from tiangong.engine.base import CancelToken, ChatMessage, Delta, Finish, GenerationParams, Job
from tiangong.engine.fake import FakeEngine, FakeScript
from tiangong.engine.openai_engine import OpenAIEngine, estimate_tokens
from tiangong.engine.transformers_engine import TransformersEngine
from tiangong.errors import EngineFailedError, OverloadedError, TooLargeError
from tiangong.server.app import RUNTIME_KEY

CANCELLED = b'tiangong_requests_total{outcome="cancelled",task="chat"} 1.0'

MESSAGES = (
    ChatMessage("system", "You answer questions about a page."),
    ChatMessage("user", "Solar capacity doubled in three years, the agency said. What happened?"),
)


def job(max_tokens: int = 20, **params: object) -> Job:
    return Job("ask", MESSAGES, GenerationParams(max_tokens, **params))  # type: ignore[arg-type]


async def collect(engine: object, the_job: Job, cancel: CancelToken | None = None) -> list[object]:
    return [e async for e in engine.stream(the_job, cancel or CancelToken())]  # type: ignore[attr-defined]


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


async def test_a_real_model_answers_through_our_api_exactly_as_it_does_directly(
    tmp_path: Path,
) -> None:
    model = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")
    direct = await collect(model, job())
    async with run_server(tmp_path, serve_with=model, reading="page") as server:
        engine = await asyncio.to_thread(
            OpenAIEngine.connect, f"{server.http_url}/v1", api_key=TOKEN
        )
        remote = await collect(engine, job())
        await engine.aclose()
    assert engine.model == model.model
    assert engine.context_tokens == model.context_tokens  # from /v1/models max_model_len
    assert text_of(remote) == text_of(direct) and len(text_of(direct)) > 5
    finish, expected = remote[-1], direct[-1]
    assert isinstance(finish, Finish) and isinstance(expected, Finish)
    assert finish == expected  # reason and the server's exact token counts
    assert engine.count_prompt_tokens(MESSAGES) > 0


async def test_cancel_closes_the_stream_and_frees_the_upstream_slot(tmp_path: Path) -> None:
    slow = FakeEngine(FakeScript(pieces=["w "] * 300, delay=0.02, max_concurrency=1))
    async with run_server(tmp_path, serve_with=slow) as server:
        engine = OpenAIEngine(f"{server.http_url}/v1", model="m", api_key=TOKEN)
        cancel = CancelToken()
        events: list[object] = []
        async for event in engine.stream(job(max_tokens=300), cancel):
            events.append(event)
            if len(events) == 3:
                cancel.cancel()
        # The upstream saw its client go and stopped: its only slot is free again.
        metrics = server.app[RUNTIME_KEY].metrics
        for _ in range(100):
            if CANCELLED in metrics.exposition():
                break
            await asyncio.sleep(0.02)
        stopped_upstream = CANCELLED in metrics.exposition()
        after = await collect(engine, job(max_tokens=4))
        await engine.aclose()
    finish = events[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "cancelled"
    assert len(events) == 4 and stopped_upstream
    assert isinstance(after[-1], Finish) and after[-1].finish_reason == "length"


async def test_cancel_while_waiting_for_the_first_token_ends_at_once() -> None:
    async with upstream(Behaviour(before_headers=5)) as up:
        engine = OpenAIEngine(up.url, model="up-model")
        cancel = CancelToken()
        asyncio.get_running_loop().call_later(0.2, cancel.cancel)
        events = await asyncio.wait_for(collect(engine, job(), cancel), 3)
        await engine.aclose()
    assert events == [Finish("cancelled", engine.count_prompt_tokens(MESSAGES), 0)]


async def test_what_the_server_is_sent() -> None:
    async with upstream() as up:
        engine = OpenAIEngine(up.url + "/", model="up-model", api_key="secret-key-123")
        events = await collect(engine, job(max_tokens=9, temperature=0.5, stop=("END",)))
        await engine.aclose()
    body = up.bodies[0]
    assert body["model"] == "up-model" and body["stream"] is True
    assert body["max_tokens"] == 9 and body["temperature"] == 0.5 and body["stop"] == ["END"]
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert up.auth == ["Bearer secret-key-123"]
    assert text_of(events) == "Hello from upstream."
    assert events[-1] == Finish("stop", 7, 3)  # the server's usage counts


async def test_without_a_model_the_first_listed_serves_with_its_context() -> None:
    models = [{"id": "big", "max_model_len": 32768}, {"id": "small"}]
    async with upstream(Behaviour(models=models)) as up:
        first = await asyncio.to_thread(OpenAIEngine.connect, up.url)
        chosen = await asyncio.to_thread(OpenAIEngine.connect, up.url, model="small")
        pinned = await asyncio.to_thread(OpenAIEngine.connect, up.url, context_tokens=4000)
        with pytest.raises(EngineFailedError) as unknown:
            await asyncio.to_thread(OpenAIEngine.connect, up.url, model="other")
    assert (first.model, first.context_tokens) == ("big", 32768)
    assert (chosen.model, chosen.context_tokens) == ("small", 8192)
    assert pinned.context_tokens == 4000
    assert "does not serve 'other' (it serves big, small)" in unknown.value.message


async def test_an_unreachable_server_is_named_in_the_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EngineFailedError) as at_start:
        await asyncio.to_thread(OpenAIEngine.connect, url)
    # With a model named, the service starts and each request says what is wrong.
    engine = await asyncio.to_thread(OpenAIEngine.connect, url, model="m")
    with pytest.raises(EngineFailedError) as at_request:
        await collect(engine, job())
    await engine.aclose()
    assert f"cannot reach the model server at {url}" in at_start.value.message
    assert f"cannot reach the model server at {url}" in at_request.value.message
    assert engine.context_tokens == 8192


async def test_a_refused_api_key_is_fatal_at_start_and_clear_later() -> None:
    async with upstream(Behaviour(status=401)) as up:
        with pytest.raises(EngineFailedError) as at_start:
            await asyncio.to_thread(OpenAIEngine.connect, up.url, model="up-model")
        engine = OpenAIEngine(up.url, model="up-model", api_key="wrong")
        with pytest.raises(EngineFailedError) as at_request:
            await collect(engine, job())
        await engine.aclose()
    for refused in (at_start, at_request):
        assert "refused our API key (HTTP 401); check --openai-api-key" in refused.value.message
    assert all("wrong" not in e.value.message for e in (at_start, at_request))


@pytest.mark.parametrize(
    "status, message, error, said",
    [
        (500, "boom", EngineFailedError, "answered HTTP 500: boom"),
        (503, "", EngineFailedError, "answered HTTP 503"),
        (429, "slow down", OverloadedError, "busy (HTTP 429): slow down"),
        (404, "no such model", EngineFailedError, "has no model 'up-model'"),
        (400, "maximum context length is 4096", TooLargeError, "prompt too long"),
    ],
)
async def test_refusals_become_errors_that_say_what_the_server_said(
    status: int, message: str, error: type[Exception], said: str
) -> None:
    async with upstream(Behaviour(status=status, message=message)) as up:
        engine = OpenAIEngine(up.url, model="up-model")
        with pytest.raises(error) as failed:
            await collect(engine, job())
        await engine.aclose()
    assert said in str(failed.value)


async def test_a_silent_server_times_out_with_a_clear_error() -> None:
    for behaviour in (Behaviour(before_headers=5), Behaviour(between_pieces=5)):
        async with upstream(behaviour) as up:
            engine = OpenAIEngine(up.url, model="up-model", read_timeout=0.3)
            events: list[object] = []
            with pytest.raises(EngineFailedError) as failed:
                async for event in engine.stream(job(), CancelToken()):
                    events.append(event)
            await engine.aclose()
        assert "sent nothing for 0.3 s" in failed.value.message
        assert text_of(events) == ("" if behaviour.before_headers else "Hello ")


async def test_a_failure_mid_stream_keeps_the_text_already_sent() -> None:
    async with upstream(Behaviour(error_after=2, message="GPU fell over")) as up:
        engine = OpenAIEngine(up.url, model="up-model")
        events: list[object] = []
        with pytest.raises(EngineFailedError) as failed:
            async for event in engine.stream(job(), CancelToken()):
                events.append(event)
        await engine.aclose()
    assert text_of(events) == "Hello from "
    assert "failed while answering: GPU fell over" in failed.value.message


async def test_a_stream_that_breaks_off_is_an_error_not_an_answer() -> None:
    async with upstream(Behaviour(truncate=True)) as up:
        engine = OpenAIEngine(up.url, model="up-model")
        with pytest.raises(EngineFailedError) as failed:
            await collect(engine, job())
        await engine.aclose()
    assert "ended the stream before the answer" in failed.value.message


async def test_length_is_reported_when_the_server_cut_the_answer() -> None:
    async with upstream(Behaviour(finish_reason="length")) as up:
        engine = OpenAIEngine(up.url, model="up-model")
        events = await collect(engine, job())
        await engine.aclose()
    assert isinstance(events[-1], Finish) and events[-1].finish_reason == "length"


def test_the_token_estimate_is_above_real_tokenizers_on_english_and_chinese() -> None:
    # Whole-word English costs real byte-level BPE vocabularies about 4 characters a token;
    # the estimate spends 3. CJK: these tokenizers spend at most about one token a character.
    english = "The agency said on Monday that solar capacity doubled in three years. " * 20
    chinese = "天宫是一个本地的人工智能助手。今天天气很好。"
    assert estimate_tokens(english) >= len(english) / 4
    assert estimate_tokens(chinese) >= len(chinese)
    assert estimate_tokens("") == 0

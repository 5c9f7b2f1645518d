"""Our OpenAI-compatible API, used by the official `openai` Python client (which we did not
write) against a real server; the scriptable fake engine controls timing and failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
import pytest

from tests.conftest import TOKEN, run_server
from tiangong.engine.extractive import ExtractiveEngine
from tiangong.engine.fake import FakeEngine, FakeScript

QUESTION = [{"role": "user", "content": "What is in the page?"}]


def api(url: str, token: str = TOKEN) -> openai.AsyncOpenAI:
    # No retries: these tests look at each answer the server gives.
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=30)


async def test_the_official_client_streams_an_answer(tmp_path: Path) -> None:
    engine = FakeEngine()
    async with run_server(tmp_path, serve_with=engine) as server:
        client = api(server.http_url)
        stream = await client.chat.completions.create(
            model="anything",
            messages=[{"role": "system", "content": "Be brief."}, *QUESTION],
            stream=True,
            max_tokens=50,
            temperature=0.2,
            stop=["\n\n"],
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Fake answer about the page."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    job = engine.jobs[0]
    assert job.task == "chat"
    assert [(m.role, m.content) for m in job.messages] == [
        ("system", "Be brief."),
        ("user", "What is in the page?"),
    ]
    assert job.params.max_tokens == 50 and job.params.temperature == 0.2
    assert job.params.stop == ("\n\n",)


async def test_a_whole_answer_with_max_tokens_ends_by_length(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        client = api(server.http_url)
        models = await client.models.list()
        answer = await client.chat.completions.create(
            model=models.data[0].id, messages=QUESTION, max_tokens=2
        )
    assert models.data[0].id == "fake (scripted, for tests)"
    assert models.data[0].model_extra == {"max_model_len": 4096}
    assert answer.choices[0].message.content == "Fake answer "
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 2
    assert answer.model == "fake (scripted, for tests)"


async def test_content_parts_and_developer_messages_reach_the_model_as_text(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(FakeScript(echo=True))
    async with run_server(tmp_path, serve_with=engine) as server:
        answer = await api(server.http_url).chat.completions.create(
            model="m",
            messages=[
                {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": [{"type": "text", "text": "Bonjour"}]},
            ],
        )
    assert answer.choices[0].message.content == "Bonjour"
    assert [m.role for m in engine.jobs[0].messages] == ["system", "user"]


async def test_a_wrong_token_is_an_authentication_error(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=FakeEngine()) as server:
        with pytest.raises(openai.AuthenticationError) as refused:
            await api(server.http_url, "not-the-token").models.list()
    assert refused.value.status_code == 401
    assert "bearer token" in refused.value.message


@pytest.mark.parametrize(
    "messages, field",
    [
        ([], "messages"),
        ([{"role": "tool", "content": "x"}], "messages[0]"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0]"),
    ],
)
async def test_malformed_requests_are_bad_requests_naming_the_field(
    tmp_path: Path, messages: list[dict[str, object]], field: str
) -> None:
    engine = FakeEngine()
    async with run_server(tmp_path, serve_with=engine) as server:
        with pytest.raises(openai.BadRequestError) as refused:
            await api(server.http_url).chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert f"body.{field}" in refused.value.message
    assert engine.jobs == []


async def test_messages_longer_than_the_context_are_refused(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(context_tokens=100))
    async with run_server(tmp_path, serve_with=engine) as server:
        with pytest.raises(openai.BadRequestError) as refused:
            await api(server.http_url).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "word " * 200}]
            )
    assert "the model takes 100" in refused.value.message
    assert engine.jobs == []


async def test_a_full_queue_is_a_rate_limit_error(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(delay=0.2, max_concurrency=1))
    async with run_server(tmp_path, serve_with=engine, max_queue=0) as server:
        client = api(server.http_url)
        busy = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
        chunks = busy.__aiter__()
        await chunks.__anext__()  # headers come with the first event: it holds the slot
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model="m", messages=QUESTION)
        rest = [chunk async for chunk in chunks]
    assert refused.value.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "1"
    assert "busy" in refused.value.message
    text = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
    assert text == "Fake answer about the page."


async def test_an_engine_that_cannot_chat_says_so(tmp_path: Path) -> None:
    async with run_server(tmp_path, serve_with=ExtractiveEngine()) as server:
        with pytest.raises(openai.InternalServerError) as refused:
            await api(server.http_url).chat.completions.create(model="m", messages=QUESTION)
    assert refused.value.status_code == 503
    assert "cannot chat" in refused.value.message


async def test_a_model_failing_mid_stream_ends_the_stream_with_an_error(tmp_path: Path) -> None:
    engine = FakeEngine(FakeScript(fail_after=2))
    async with run_server(tmp_path, serve_with=engine) as server:
        stream = await api(server.http_url).chat.completions.create(
            model="m", messages=QUESTION, stream=True
        )
        received: list[str] = []
        with pytest.raises(openai.APIError) as failed:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Fake answer "
    assert "failed after 2 tokens" in failed.value.message


async def metric(server_url: str, name: str) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server_url}/metrics", headers=headers) as response,
    ):
        text = await response.text()
    values = [line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(name)]
    return sum(float(v) for _, v in values)


@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_that_disconnects_cancels_its_answer(tmp_path: Path, stream: bool) -> None:
    engine = FakeEngine(FakeScript(pieces=["word "] * 200, delay=0.05, max_concurrency=1))
    async with run_server(tmp_path, serve_with=engine) as server:
        client = api(server.http_url)
        call = client.chat.completions.create(model="m", messages=QUESTION, stream=stream)
        if stream:
            async with await call as chunks:  # type: ignore[union-attr]
                async for _ in chunks:
                    break  # one chunk, then the client goes away
        else:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(call, 0.3)
        cancelled = 'tiangong_requests_total{outcome="cancelled",task="chat"}'
        seen = 0.0
        for _ in range(100):
            seen = await metric(server.http_url, cancelled)
            if seen == 1:
                break
            await asyncio.sleep(0.05)
        # The slot is free again: the next answer starts at once and completes.
        engine.script.delay = 0
        after = await client.chat.completions.create(model="m", messages=QUESTION, max_tokens=3)
    assert seen == 1
    assert after.choices[0].finish_reason == "length"
    assert len(engine.jobs) == 2

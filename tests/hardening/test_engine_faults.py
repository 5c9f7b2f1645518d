"""Faults inside the generation loop, at every place that can raise: the request a fault
touches ends with `engine_failed` (its partial answer stored as incomplete), the requests it
does not touch finish as they would have, and the next request works. Model calls that keep
failing stop the loop: the engine says `failed` in /health and refuses work at once, then
restarts by itself once the model answers again. Real server, real websockets client, a real
(tiny, offline-built) transformers model; faults are injected where a real one would raise.
Every wait has a timeout: nothing here may hang."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import torch

from tests.conftest import run_server
from tests.engine.engine_helpers import FailAtStep
from tests.support.offline_models import tiny_llama
from tests.wsclient import Client, answer_text, client
from tiangong.engine import kv, streaming
from tiangong.engine.transformers_engine import TransformersEngine

TEXT = "Some words about a harbour, a council and a budget for the new tram line. " * 12
MARKER = "Zebra crossings"


def summarize(request_id: str, max_tokens: int, text: str = TEXT) -> dict[str, Any]:
    page = {"url": f"https://example.com/{request_id}", "text": text}
    return {
        "type": "summarize",
        "id": request_id,
        "page": page,
        "options": {"max_tokens": max_tokens},
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[TransformersEngine]:
    """A fresh engine: the server closes the engine it serves with when it stops."""
    yield TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")


class Breaker:
    """Forward pre-hooks on the model and its decode step: raise `error` on the calls `hits`
    picks, `times` times."""

    def __init__(
        self, engine: TransformersEngine, error: BaseException, hits: Callable[[int], bool]
    ) -> None:
        self.engine = engine
        self.error = error
        self.hits = hits
        self.times = 0
        self.raised = 0
        # Whether other requests were decoding when it raised (proof of concurrency).
        self.batch_then: list[int] = []
        # Decode steps run through the engine's own step where it has one (lean_decode.py).
        self._handles = [
            module.register_forward_pre_hook(self._hook, with_kwargs=True)
            for module in (engine._model, engine.decoder)
            if module is not None
        ]

    def arm(self, times: int = 1) -> None:
        self.times = times

    def _hook(self, module: object, args: object, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids")
        if self.times and ids is not None and self.hits(int(ids.shape[1])):
            self.times -= 1
            self.raised += 1
            self.batch_then.append(len(self.engine._runner._batch.rows))
            raise self.error

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


async def first_delta(c: Client, request_id: str) -> None:
    while not any(f.get("id") == request_id and f["type"] == "delta" for f in c.frames):
        await c.recv(30)


async def alone(c: Client, frame: dict[str, Any]) -> str:
    frames = await c.request({**frame, "id": frame["id"] + "-alone"}, timeout=60)
    assert frames[-1]["type"] == "done", frames[-1]
    return answer_text(frames)


def failed_with_engine_failed(frames: list[dict[str, Any]]) -> dict[str, Any]:
    last = frames[-1]
    assert last["type"] == "error" and last["code"] == "engine_failed", last
    assert last["retryable"] is True
    return last


@pytest.mark.parametrize(
    "error", [torch.OutOfMemoryError("CUDA out of memory"), RuntimeError("kernel exploded")]
)
async def test_a_failure_at_token_k_is_engine_failed_and_the_next_request_works(
    tmp_path: Path, engine: TransformersEngine, error: Exception
) -> None:
    engine.stream = (  # type: ignore[method-assign]
        lambda job, cancel: engine.stream_with_processors(job, cancel, [FailAtStep(5, error)])
    )
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        failed = await c.request(summarize("f", 40), timeout=30)
        del engine.stream  # the model works again
        ok = await c.request(summarize("ok", 8), timeout=30)
        conv = failed[0]["conversation_id"]
        stored = await c.request({"type": "history", "id": "h", "conversation_id": conv})
    last = failed_with_engine_failed(failed)
    assert "exploded" not in last["message"]  # internals stay in the log
    assert ok[-1]["type"] == "done"
    answer = stored[-1]["turns"][1]
    assert answer["status"] == "incomplete" and answer["text"] == answer_text(failed)


async def test_a_prefill_that_fails_fails_only_its_request_while_another_keeps_answering(
    tmp_path: Path, engine: TransformersEngine
) -> None:
    breaker = Breaker(engine, torch.OutOfMemoryError("CUDA out of memory"), lambda n: n > 1)
    long_one = summarize("long", 200)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        reference = await alone(c, long_one)
        await c.send(long_one)
        await first_delta(c, "long")
        breaker.arm()
        failed = await c.request(summarize("victim", 20, TEXT + " Other words."), timeout=30)
        survivor = await c.until_end("long", timeout=60)
        after = await c.request(summarize("after", 8), timeout=30)
    breaker.remove()
    assert breaker.raised == 1 and breaker.batch_then == [1]  # "long" was decoding then
    assert "out of memory" in failed_with_engine_failed(failed)["message"]
    assert survivor[-1]["type"] == "done" and answer_text(survivor) == reference
    assert after[-1]["type"] == "done"
    assert engine.failure is None


async def test_a_decode_step_that_fails_fails_the_requests_in_it_and_the_next_one_works(
    tmp_path: Path, engine: TransformersEngine
) -> None:
    breaker = Breaker(engine, RuntimeError("device lost"), lambda n: n == 1)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        await c.send(summarize("a", 200))
        await c.send(summarize("b", 200, TEXT + " More."))
        await first_delta(c, "a")
        await first_delta(c, "b")
        breaker.arm()
        a = await c.until_end("a", timeout=30)
        b = await c.until_end("b", timeout=30)
        after = await c.request(summarize("after", 8), timeout=30)
    breaker.remove()
    assert breaker.batch_then == [2]
    for frames in (a, b):
        assert "device lost" not in failed_with_engine_failed(frames)["message"]
    assert after[-1]["type"] == "done"


async def test_a_failure_while_the_batch_cache_is_rearranged_fails_the_rows_it_held(
    tmp_path: Path, engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_remove = kv.GrowableLayer.remove_row
    armed = {"times": 0}

    def remove_row(layer: kv.GrowableLayer, row: int) -> None:
        if armed["times"]:
            armed["times"] -= 1
            raise torch.OutOfMemoryError("out of memory")
        real_remove(layer, row)

    monkeypatch.setattr(kv.GrowableLayer, "remove_row", remove_row)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        await c.send(summarize("long", 200))
        await first_delta(c, "long")
        armed["times"] = 1
        short = await c.request(summarize("short", 3, TEXT + " Short."), timeout=30)
        long_frames = await c.until_end("long", timeout=30)
        after = await c.request(summarize("after", 8), timeout=30)
    assert armed["times"] == 0
    # The short answer ended before its row left; the long one's states were being moved.
    assert short[-1]["type"] == "done"
    assert "out of memory" in failed_with_engine_failed(long_frames)["message"]
    assert after[-1]["type"] == "done"


async def test_a_request_that_cannot_join_the_batch_fails_alone(
    tmp_path: Path, engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_make_room = kv.GrowableLayer.make_room
    armed = {"times": 0}

    def make_room(layer: kv.GrowableLayer, rows: int, positions: int, drop_front: int = 0) -> None:
        if armed["times"] and rows > 1:
            armed["times"] -= 1
            raise torch.OutOfMemoryError("out of memory")
        real_make_room(layer, rows, positions, drop_front)

    monkeypatch.setattr(kv.GrowableLayer, "make_room", make_room)
    long_one = summarize("long", 200)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        reference = await alone(c, long_one)
        await c.send(long_one)
        await first_delta(c, "long")
        armed["times"] = 1
        joining = await c.request(summarize("joining", 20, TEXT + " Joining."), timeout=30)
        survivor = await c.until_end("long", timeout=60)
    assert armed["times"] == 0
    assert "out of memory" in failed_with_engine_failed(joining)["message"]
    assert survivor[-1]["type"] == "done" and answer_text(survivor) == reference


async def test_a_logits_processor_that_raises_fails_only_its_own_request(
    tmp_path: Path, engine: TransformersEngine
) -> None:
    def with_faulty_processor(job: Any, cancel: Any) -> Any:
        marked = any(MARKER in m.content for m in job.messages)
        processors = [FailAtStep(3, ValueError("bad processor"))] if marked else []
        return engine.stream_with_processors(job, cancel, processors)

    engine.stream = with_faulty_processor  # type: ignore[method-assign]
    long_one = summarize("long", 200)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        reference = await alone(c, long_one)
        await c.send(long_one)
        await first_delta(c, "long")
        faulty = await c.request(summarize("faulty", 40, f"{MARKER}. {TEXT}"), timeout=30)
        survivor = await c.until_end("long", timeout=60)
        after = await c.request(summarize("after", 8), timeout=30)
    assert "bad processor" not in failed_with_engine_failed(faulty)["message"]
    assert survivor[-1]["type"] == "done" and answer_text(survivor) == reference
    assert after[-1]["type"] == "done"


async def test_a_request_whose_finish_raises_gets_an_error_and_the_others_finish(
    tmp_path: Path, engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_flush = streaming.IncrementalDecoder.flush
    armed = {"times": 0}

    def flush(decoder: streaming.IncrementalDecoder) -> str:
        if armed["times"]:
            armed["times"] -= 1
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return real_flush(decoder)

    monkeypatch.setattr(streaming.IncrementalDecoder, "flush", flush)
    long_one = summarize("long", 200)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        reference = await alone(c, long_one)
        await c.send(long_one)
        await first_delta(c, "long")
        armed["times"] = 1
        short = await c.request(summarize("short", 3, TEXT + " Short."), timeout=30)
        survivor = await c.until_end("long", timeout=60)
        after = await c.request(summarize("after", 8), timeout=30)
    assert armed["times"] == 0
    failed_with_engine_failed(short)
    assert survivor[-1]["type"] == "done" and answer_text(survivor) == reference
    assert after[-1]["type"] == "done"


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/health") as response:
        body: dict[str, Any] = await response.json()
        return body


async def pushed_status(c: Client, state: str) -> dict[str, Any]:
    """The first `status` frame pushed with this engine state since the last one taken."""
    while True:
        for i, frame in enumerate(c.frames):
            if frame["type"] == "status" and frame["engine"]["state"] == state:
                del c.frames[: i + 1]
                return frame
        await c.recv(timeout=10)


async def test_a_model_that_keeps_failing_marks_the_engine_failed_until_it_answers_again(
    tmp_path: Path, engine: TransformersEngine
) -> None:
    breaker = Breaker(engine, RuntimeError("CUDA error: an illegal memory access"), lambda n: True)
    async with (
        run_server(tmp_path, serve_with=engine, reading="page") as server,
        client(server.ws_url) as c,
    ):
        breaker.arm(times=1_000)  # every model call fails, the restart check's too
        for i in range(3):
            failed_with_engine_failed(await c.request(summarize(f"f{i}", 8), timeout=30))
        status = await health(server.http_url)
        assert status["engine"]["state"] == "failed"
        assert "3 times in a row" in status["engine"]["failure"]
        # The open sidebar hears it too, without asking.
        pushed = await asyncio.wait_for(pushed_status(c, "failed"), timeout=10)
        assert "3 times in a row" in pushed["engine"]["failure"]
        refused = failed_with_engine_failed(await c.request(summarize("refused", 8), timeout=5))
        assert "cannot answer right now" in refused["message"]

        breaker.remove()  # the model answers again: the loop restarts by itself

        async def until_ready() -> dict[str, Any]:
            # Polling /health is what a monitor does; the loop's state has no event to await.
            while (status := await health(server.http_url))["engine"]["state"] != "ready":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            return status

        status = await asyncio.wait_for(until_ready(), timeout=30)
        assert "failure" not in status["engine"]
        pushed = await asyncio.wait_for(pushed_status(c, "ready"), timeout=10)
        assert "failure" not in pushed["engine"]
        after = await c.request(summarize("after", 8), timeout=30)
    assert after[-1]["type"] == "done"
    assert engine._runner.restarts == 1

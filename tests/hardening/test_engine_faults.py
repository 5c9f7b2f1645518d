"""A model that fails mid-answer (an exception or out of memory at token k): the client gets
`engine_failed`, the partial answer is stored as incomplete, and the next request works.
Real server, a real (tiny, offline-built) transformers model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import run_server
from tests.engine.engine_helpers import FailAtStep
from tests.support.offline_models import tiny_llama
from tests.wsclient import answer_text, client
from tiangong.engine.transformers_engine import TransformersEngine


@pytest.mark.parametrize(
    "error", [torch.OutOfMemoryError("CUDA out of memory"), RuntimeError("kernel exploded")]
)
async def test_a_failure_at_token_k_is_engine_failed_and_the_next_request_works(
    tmp_path: Path, error: Exception
) -> None:
    engine = TransformersEngine.load(str(tiny_llama()), data_dir=tmp_path, dtype="float32")
    engine.stream = (  # type: ignore[method-assign]
        lambda job, cancel: engine.stream_with_processors(job, cancel, [FailAtStep(5, error)])
    )
    page = {"url": "https://example.com/", "text": "Some words about a page. " * 20}
    async with run_server(tmp_path, serve_with=engine) as server, client(server.ws_url) as c:
        failed = await c.request(
            {"type": "summarize", "id": "f", "page": page, "options": {"max_tokens": 40}}
        )
        del engine.stream  # the model works again
        ok = await c.request(
            {"type": "summarize", "id": "ok", "page": page, "options": {"max_tokens": 8}}
        )
        conv = failed[0]["conversation_id"]
        stored = await c.request({"type": "history", "id": "h", "conversation_id": conv})
    assert failed[-1]["type"] == "error" and failed[-1]["code"] == "engine_failed"
    assert failed[-1]["retryable"] is True
    assert "exploded" not in failed[-1]["message"]  # internals stay in the log
    assert ok[-1]["type"] == "done"
    answer = stored[-1]["turns"][1]
    assert answer["status"] == "incomplete" and answer["text"] == answer_text(failed)

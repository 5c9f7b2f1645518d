"""The `openai` engine: any OpenAI-compatible chat-completions server answers.

vLLM (which spreads one model over many GPUs and nodes), SGLang, TGI, llama.cpp's server,
Ollama, LM Studio, or a second Tiangong. Planning, the prefix-friendly prompt layout and
retrieval stay on this side: the server receives finished chat messages.

- Streaming: `POST {base}/chat/completions` with `stream: true`; server-sent events are read
  line by line, each content delta becomes a `Delta`.
- Cancel: closing the HTTP stream. vLLM and our own API stop generating when their client
  goes away, which frees the batch slot upstream too.
- Tokens: the server's tokenizer is not here, so `count_tokens` is a deliberate
  over-estimate (`estimate_tokens`); the server's own `usage` counts are reported when it
  sends them. The context size comes from `--openai-context`, else the server's model list
  (`max_model_len` in vLLM and SGLang), else 8192.
- Errors: an unreachable, silent, refusing or failing server becomes an error that says
  which of these happened and where; nothing is retried behind the client's back.

This engine talks HTTP itself (aiohttp's client; urllib once at start-up, from the loading
thread) because talking to a server is what it is for.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from tiangong.engine.base import (
    ASK,
    BATCHING,
    REWRITE,
    SUMMARIZE,
    CancelToken,
    ChatMessage,
    Delta,
    Engine,
    Finish,
    FinishReason,
    Job,
)
from tiangong.errors import EngineFailedError, OverloadedError, TiangongError, TooLargeError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONTEXT_TOKENS = 8192
CONNECT_TIMEOUT = 10.0
# Keys under which servers list a model's context size in /v1/models.
CONTEXT_KEYS = ("max_model_len", "context_length", "max_context_length")
# Per-message template overhead (role markers, separators) in the estimate, and the
# generation prompt's.
MESSAGE_OVERHEAD = 8
PROMPT_OVERHEAD = 16
DETAIL_CHARS = 300


def estimate_tokens(text: str) -> int:
    """At least as many tokens as common tokenizers use, without their vocabulary.

    Byte-level BPE vocabularies (Llama 3, Qwen2, Mistral, GPT-style) average about four
    ASCII characters a token in English and code; counting three leaves room. Other scripts
    cost more per character: half a token per UTF-8 byte puts Cyrillic at one token a letter
    and CJK at 1.5 a character, above what these tokenizers spend on them.
    """
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_bytes = len(text.encode("utf-8")) - ascii_chars
    return math.ceil(ascii_chars / 3) + math.ceil(other_bytes / 2)


def normalize_base_url(url: str) -> str:
    """`http://host:8000` and `http://host:8000/v1/` both mean `http://host:8000/v1`."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--openai-base-url must be an http(s) URL, not {url!r}")
    return url if parts.path not in ("", "/") else url + "/v1"


def _auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _one_line(text: str) -> str:
    return " ".join(text.split())[:DETAIL_CHARS]


def _error_detail(body: str) -> str:
    """The message of an OpenAI-style error body, or the start of whatever came."""
    try:
        data = json.loads(body)
    except ValueError:
        return _one_line(body)
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return _one_line(inner["message"])
        if isinstance(inner, str):
            return _one_line(inner)
    return _one_line(body)


def status_error(status: int, detail: str, base_url: str, model: str) -> TiangongError:
    """What a refusal from the server means for our client."""
    said = f": {detail}" if detail else ""
    if status in (401, 403):
        return EngineFailedError(
            f"the model server at {base_url} refused our API key (HTTP {status}); "
            "check --openai-api-key"
        )
    if status == 404:
        return EngineFailedError(
            f"the model server at {base_url} has no model {model!r} (HTTP 404); "
            "check --openai-model and --openai-base-url"
        )
    if status == 429:
        return OverloadedError(f"the model server is busy (HTTP 429){said}; try again shortly")
    if status == 400 and any(w in detail.lower() for w in ("context", "too long", "maximum")):
        return TooLargeError(f"the model server found the prompt too long{said}")
    return EngineFailedError(f"the model server answered HTTP {status}{said}")


def list_models(base_url: str, api_key: str | None, timeout: float = CONNECT_TIMEOUT) -> Any:
    """GET {base}/models (blocking). Raises EngineFailedError saying what went wrong."""
    request = urllib.request.Request(f"{base_url}/models", headers=_auth_headers(api_key))
    # No proxies from the environment, as with aiohttp's client (trust_env=False).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read(4 * 1024 * 1024))
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc.read(4096).decode("utf-8", "replace"))
        raise status_error(exc.code, detail, base_url, "?") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EngineFailedError(f"cannot reach the model server at {base_url}: {reason}") from exc
    except ValueError as exc:
        raise EngineFailedError(f"{base_url}/models did not answer JSON") from exc


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        read_timeout: float = 120.0,
        concurrency: int = 16,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._model = model
        self._api_key = api_key
        self._context = context_tokens
        self.read_timeout = read_timeout
        self._concurrency = max(1, concurrency)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        context_tokens: int | None = None,
        read_timeout: float = 120.0,
        concurrency: int = 16,
    ) -> OpenAIEngine:
        """Ask the server which models it serves (blocking), then build the engine.

        Without `model` the first listed model serves, so the server must answer. With a
        model and a server that is not up yet, the engine starts anyway and each request
        says the server cannot be reached until it is; a refused key is fatal at once.
        """
        base = normalize_base_url(base_url)
        listed: list[dict[str, Any]] = []
        try:
            answer = list_models(base, api_key)
            data = answer.get("data") if isinstance(answer, dict) else None
            listed = [m for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except EngineFailedError as exc:
            if model is None or "refused our API key" in exc.message:
                raise
            log.warning("%s; starting anyway with model %s", exc.message, model)
        if model is None:
            if not listed:
                raise EngineFailedError(f"the model server at {base} lists no models")
            model = str(listed[0]["id"])
        entry = next((m for m in listed if m["id"] == model), None)
        if listed and entry is None:
            names = ", ".join(str(m["id"]) for m in listed[:5])
            raise EngineFailedError(
                f"the model server at {base} does not serve {model!r} (it serves {names})"
            )
        server_context = _context_of(entry) if entry else None
        context = context_tokens or server_context or DEFAULT_CONTEXT_TOKENS
        log.info(
            "openai engine: model %s at %s, context %d tokens (%s)",
            model,
            base,
            context,
            "--openai-context"
            if context_tokens
            else ("from the server" if server_context else "default"),
        )
        return cls(
            base,
            model=model,
            api_key=api_key,
            context_tokens=context,
            read_timeout=read_timeout,
            concurrency=concurrency,
        )

    # -- what the engine is ---------------------------------------------------------------

    @property
    def model(self) -> str:
        return self._model

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({SUMMARIZE, ASK, REWRITE, BATCHING})

    @property
    def context_tokens(self) -> int:
        return self._context

    @property
    def max_concurrency(self) -> int:
        return self._concurrency

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def count_prompt_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return PROMPT_OVERHEAD + sum(
            estimate_tokens(m.content) + MESSAGE_OVERHEAD for m in messages
        )

    # -- generation -----------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=CONNECT_TIMEOUT, sock_read=self.read_timeout
                ),
                headers=_auth_headers(self._api_key),
            )
        return self._session

    def _body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in job.messages],
            "max_tokens": job.params.max_tokens,
            "temperature": job.params.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if job.params.stop:
            body["stop"] = list(job.params.stop)
        if job.params.min_tokens:
            body["min_tokens"] = job.params.min_tokens  # vLLM's extension; others ignore it
        return body

    async def stream(self, job: Job, cancel: CancelToken) -> AsyncIterator[Delta | Finish]:
        prompt_tokens = self.count_prompt_tokens(job.messages)
        sent = 0
        if cancel.cancelled:
            yield Finish("cancelled", 0, 0)
            return
        race = _CancelRace(cancel)
        response: aiohttp.ClientResponse | None = None
        try:
            response = await race.run(
                self._client().post(f"{self.base_url}/chat/completions", json=self._body(job))
            )
            if response is None:
                yield Finish("cancelled", prompt_tokens, 0)
                return
            if response.status != 200:
                raw = await response.content.read(4096)
                detail = _error_detail(raw.decode("utf-8", "replace"))
                raise status_error(response.status, detail, self.base_url, self._model)
            events = _ServerEvents(response, race)
            finish_reason: FinishReason | None = None
            while True:
                payload = await events.next()
                if payload is None:
                    if cancel.cancelled:
                        yield Finish("cancelled", prompt_tokens, sent)
                        return
                    break
                if payload == "[DONE]":
                    break
                chunk = _parse_chunk(payload)
                for text, reason in _choices(chunk):
                    if text:
                        sent += 1
                        yield Delta(text)
                    if reason:
                        finish_reason = "length" if reason == "length" else "stop"
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                    sent = int(usage.get("completion_tokens") or sent)
            if finish_reason is None:
                raise EngineFailedError("the model server ended the stream before the answer")
            yield Finish(finish_reason, prompt_tokens, sent)
        except TimeoutError as exc:
            raise EngineFailedError(
                f"the model server sent nothing for {self.read_timeout:g} s"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise EngineFailedError(
                f"cannot reach the model server at {self.base_url}: {exc.os_error}"
            ) from exc
        except aiohttp.ClientError as exc:
            if cancel.cancelled:
                yield Finish("cancelled", prompt_tokens, sent)
                return
            raise EngineFailedError(
                f"the connection to the model server broke ({type(exc).__name__})"
            ) from exc
        finally:
            if response is not None:
                # Closing (not releasing) drops the connection: the server sees its client
                # go and stops generating.
                response.close()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _context_of(entry: dict[str, Any]) -> int | None:
    for key in CONTEXT_KEYS:
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _parse_chunk(payload: str) -> dict[str, Any]:
    try:
        chunk = json.loads(payload)
    except ValueError as exc:
        raise EngineFailedError("the model server sent an event that is not JSON") from exc
    if not isinstance(chunk, dict):
        raise EngineFailedError("the model server sent an event that is not a JSON object")
    if "error" in chunk:
        detail = _error_detail(json.dumps(chunk))
        raise EngineFailedError(f"the model server failed while answering: {detail}")
    return chunk


def _choices(chunk: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    out: list[tuple[str | None, str | None]] = []
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
        reason = choice.get("finish_reason")
        out.append(
            (text if isinstance(text, str) else None, reason if isinstance(reason, str) else None)
        )
    return out


class _CancelRace:
    """Awaits one step at a time, abandoning it the moment the request is cancelled."""

    def __init__(self, cancel: CancelToken) -> None:
        self._cancel = cancel
        self._step: asyncio.Future[Any] | None = None
        cancel.on_cancel(self._abandon)

    def _abandon(self) -> None:
        if self._step is not None and not self._step.done():
            self._step.cancel()

    async def run(self, step: Awaitable[T]) -> T | None:
        """The step's result, or None when the request was cancelled meanwhile."""
        if self._cancel.cancelled:
            if inspect.iscoroutine(step):
                step.close()  # never started: no "never awaited" warning
            return None
        future: asyncio.Future[T] = asyncio.ensure_future(step)
        self._step = future
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._cancel.cancelled and not (task and task.cancelling()):
                return None
            raise
        finally:
            self._step = None


class _ServerEvents:
    """The `data` of server-sent events, one event at a time."""

    def __init__(self, response: aiohttp.ClientResponse, race: _CancelRace) -> None:
        self._content = response.content
        self._race = race

    async def next(self) -> str | None:
        """The next event's data; None at the end of the stream or after a cancel."""
        data: list[str] = []
        while True:
            raw = await self._race.run(self._content.readline())
            if raw is None:
                return None
            if not raw:
                return "\n".join(data) if data else None
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                if data:
                    return "\n".join(data)
                continue
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            # Comments (":") and `event:`/`id:`/`retry:` fields carry nothing we use.

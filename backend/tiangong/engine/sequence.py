"""One request inside the generation loop: its prompt, cache, answer so far and text stream.

A `Sequence` is created on the event loop and then touched only by the generation thread.
It turns each chosen token into whole-character text (`TokenSink`), picks the next token
from the model's scores (the engine's n-gram ban, any extra processors, `min_tokens`,
greedy or sampling), and knows when and why it is finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    DynamicCache,
    LogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from tiangong.engine.base import Delta, Finish, FinishReason, Priority
from tiangong.engine.streaming import REPLACEMENT_CHAR, IncrementalDecoder, StopStringFilter

Deliver = Callable[[Delta | Finish | BaseException], None]
# Returns the prompt's token ids and how many of them form the shareable prefix.
Prepare = Callable[[], tuple[list[int], int]]


class TokenSink:
    """Chosen ids → whole-character text, cut at the first stop string."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...], eos_ids: frozenset[int]) -> None:
        self.decoder = IncrementalDecoder(tokenizer)
        self.stop_filter = StopStringFilter(stops)
        self.eos_ids = eos_ids

    def push(self, token_id: int) -> str:
        if token_id in self.eos_ids or self.stop_filter.stopped:
            return ""
        return self.stop_filter.feed(self.decoder.push(token_id))

    def flush(self, cut_short: bool) -> str:
        tail = self.decoder.flush()
        if cut_short:  # an answer cut mid-character drops the half character
            tail = tail.rstrip(REPLACEMENT_CHAR)
        return self.stop_filter.feed(tail) + self.stop_filter.flush()


@dataclass(eq=False)
class Sequence:
    prepare: Prepare
    max_tokens: int
    min_tokens: int
    temperature: float
    priority: Priority  # background work (a long summary's map step) yields
    processors: list[LogitsProcessor]
    sink: TokenSink
    stopped: Callable[[], bool]
    deliver: Deliver
    arrival: int
    # The request's id, for the log lines the generation thread writes about it.
    request_id: str | None = None
    # Filled in by the generation thread.
    prompt: list[int] = field(default_factory=list)
    prefix_length: int = 0
    prefix_key: str | None = None
    max_new: int = 0
    cache: DynamicCache | None = None
    filled: int = 0
    generated: list[int] = field(default_factory=list)
    # True once the request's last item (a Finish or an error) was delivered.
    done: bool = False
    # prompt + generated as one tensor for the logits processors, with room for the whole
    # answer: each step writes its token instead of building a page-long tensor anew.
    _ids: torch.Tensor | None = None
    _ids_written: int = 0

    @property
    def started(self) -> bool:
        return self.cache is not None

    @property
    def position(self) -> int:
        """The position of the newest token (the next decode step's input)."""
        return len(self.prompt) + len(self.generated) - 1

    def choose(self, scores: torch.Tensor, eos_ids: frozenset[int]) -> int:
        """The next token from this sequence's scores (shape [1, vocab])."""
        scores = scores.float()
        if self.processors:
            ids = self.token_ids()
            for processor in self.processors:
                scores = processor(ids, scores)  # type: ignore[arg-type]
        if len(self.generated) < self.min_tokens and eos_ids:
            scores[:, sorted(eos_ids)] = float("-inf")
        if self.temperature <= 0:
            return int(scores.argmax(dim=-1).item())
        ids = self.token_ids()
        for warper in (
            TemperatureLogitsWarper(self.temperature),
            TopKLogitsWarper(50),
            TopPLogitsWarper(0.95),
        ):
            scores = warper(ids, scores)  # type: ignore[arg-type]
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1).item())

    def token_ids(self) -> torch.Tensor:
        """[1, prompt + generated] token ids."""
        length = len(self.prompt) + len(self.generated)
        if self._ids is None or self._ids.shape[1] < length:
            room = length + max(self.max_new - len(self.generated), 0)
            self._ids = torch.zeros(1, room, dtype=torch.long)
            self._ids[0, :length] = torch.tensor(self.prompt + self.generated, dtype=torch.long)
            self._ids_written = length
        if self._ids_written < length:  # the tokens accepted since the last call
            news = self.generated[self._ids_written - length :]
            self._ids[0, self._ids_written : length] = torch.tensor(news, dtype=torch.long)
            self._ids_written = length
        return self._ids[:, :length]

    def accept(self, token_id: int) -> bool:
        """Record a token and stream its text; True while the answer goes on."""
        self.generated.append(token_id)
        text = self.sink.push(token_id)
        if text:
            self.deliver(Delta(text))
        if self.sink.stop_filter.stopped or token_id in self.sink.eos_ids:
            return False
        return len(self.generated) < self.max_new

    def finish(self, reason: FinishReason) -> None:
        """Flush the held-back text, deliver the Finish and drop the cache."""
        if self.done:
            return
        self.cache = None
        # Should the flush raise, `done` stays False and `fail` still ends the request.
        tail = self.sink.flush(cut_short=reason in ("length", "cancelled"))
        if tail:
            self.deliver(Delta(tail))
        self.done = True
        self.deliver(Finish(reason, len(self.prompt), len(self.generated)))

    def cancel_before_start(self) -> None:
        self.done = True
        self.deliver(Finish("cancelled", 0, 0))

    def fail(self, error: BaseException) -> None:
        """End the request with `error` (text already streamed stands) and drop its cache."""
        if self.done:
            return
        self.done = True
        self.cache = None
        self.deliver(error)

    def finish_reason(self) -> FinishReason:
        if self.sink.stop_filter.stopped:
            return "stop"
        if self.generated and self.generated[-1] in self.sink.eos_ids:
            return "stop"
        if len(self.generated) >= self.max_new:
            return "length"
        return "stop"

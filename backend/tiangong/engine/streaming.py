"""Turning generated token ids into whole-character text pieces, and cutting at stop strings.

A Chinese character or an emoji often spans several tokens (SentencePiece byte fallback,
or byte-level BPE pieces that split a UTF-8 sequence). Decoding token by token would show
U+FFFD halves; `IncrementalDecoder` decodes a short window of recent ids and holds text
back while it ends in an incomplete character (the approach of TGI's `decode_token`).
"""

from __future__ import annotations

from typing import Any

REPLACEMENT_CHAR = "\ufffd"


class IncrementalDecoder:
    """Feed ids one at a time; get back only text that is final and made of whole characters.

    Decoding the window `ids[prefix:]` and subtracting the decoding of `ids[prefix:read]`
    keeps tokenizer decoders that treat a leading space specially consistent with a decode
    of the whole answer: the joined pieces equal `tokenizer.decode(all_ids)`.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith(REPLACEMENT_CHAR):
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """What is left at the end (an invalid trailing sequence shows as U+FFFD)."""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return new_text[len(prefix_text) :]


class StopStringFilter:
    """Passes text through until a stop string appears; the stop string and all after it go.

    Text that might be the start of a stop string is held back until it is decided.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self._pending += text
        if not self._stops:
            out, self._pending = self._pending, ""
            return out
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self._pending = self._pending[: min(hits)], ""
            return out
        hold = self._longest_partial_stop()
        cut = len(self._pending) - hold
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out

    def _longest_partial_stop(self) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def flush(self) -> str:
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out

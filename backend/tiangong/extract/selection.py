"""The section of an article that holds the user's selection."""

from __future__ import annotations

from .render import Block, collapse

_CONTEXT = 12  # blocks kept either side of the selected ones
_PROBE = 60  # characters of the selection's start and end looked up in the blocks


def _find(blocks: list[Block], probe: str, start: int = 0) -> int | None:
    for i in range(start, len(blocks)):
        text = collapse(blocks[i].text)
        if probe in text or (len(text) >= 20 and text in probe):
            return i
    return None


def around_selection(blocks: list[Block], selection: str) -> list[Block] | None:
    """Blocks from the heading before the selection to the next heading of its level or above.

    None when the selection's start cannot be found in `blocks`.
    """
    wanted = collapse(selection)
    if not wanted or not blocks:
        return None
    first = _find(blocks, wanted[:_PROBE])
    if first is None:
        return None
    last = _find(blocks, wanted[-_PROBE:], first)
    last = first if last is None else last
    start, level = first, 7
    for i in range(first, max(-1, first - _CONTEXT - 1), -1):
        if blocks[i].kind == "h":
            start, level = i, blocks[i].level
            break
        start = i
    end = last
    for i in range(last + 1, min(len(blocks), last + _CONTEXT + 1)):
        if blocks[i].kind == "h" and blocks[i].level <= level:
            break
        end = i
    return blocks[start : end + 1]

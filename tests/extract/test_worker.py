"""The extraction workers, real processes: a page's time limit is its own."""

from __future__ import annotations

import pytest

from tiangong.errors import TooLargeError
from tiangong.extract.worker import ExtractionWorker

SMALL = "<html><body><p>A small page with a sentence in it.</p></body></html>"
# Megabytes of markup: seconds to read, far past the limit below.
RUNAWAY = "<html><body>" + ("<p>" + "word " * 10 + "</p>") * 120_000 + "</body></html>"


async def test_a_page_is_read_within_its_own_limit_not_the_workers_start() -> None:
    # Starting a worker (a new interpreter importing the extractor) takes longer than this
    # limit on a busy machine; reading the small page takes a few milliseconds.
    reader = ExtractionWorker(timeout=0.2)
    try:
        first = await reader.extract(SMALL, None)
        with pytest.raises(TooLargeError, match="took more than"):
            await reader.extract(RUNAWAY, None)
        # The runaway page's worker was killed; the next page waits for its replacement.
        after = await reader.extract(SMALL, None)
    finally:
        reader.close()
    assert "sentence" in first.text and "sentence" in after.text

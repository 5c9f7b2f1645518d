"""Every page of the shared extraction benchmark extracts without an error, to real text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tiangong.extract import extract_article

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "extraction-bench"


@pytest.mark.skipif(not (BENCH / "ground-truth.json").exists(), reason="benchmark not present")
def test_every_benchmark_page_gives_text_and_metadata() -> None:
    truth = json.loads((BENCH / "ground-truth.json").read_text(encoding="utf-8"))
    for page_id in sorted(truth):
        html = gzip.decompress((BENCH / "pages" / f"{page_id}.html.gz").read_bytes())
        article = extract_article(html)
        assert article.words > 20, page_id
        assert article.title, page_id
        assert article.lang, page_id

"""Real article pages kept in the repository for tests (tests/fixtures/pages/README.md).

A few pages of the extraction benchmark, gzipped as fetched, plus the benchmark's
ground truth: the hand-checked article text of its development half, which is also the
local text the offline test models' tokenizers are trained on.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pages"
GROUND_TRUTH = FIXTURES / "ground-truth.json.gz"

# Name of each page kept here -> its id in the benchmark (the key of its ground truth).
PAGES = {
    "sciencealert-titan": "359fee228518d55b921194561e9ca88e428df81940246f8fac7a75398377daea",
    "livescience-universe": "3c5bf8db4272925bf1dd5713fc325e179fd0d1cc6fb8c77aa2d917cfd2518a32",
    "aljazeera-moon": "42aad16bde9288623543642a9ce1a396be83e2db44aa2ff8cbbfe46e14abd7cc",
    "cityam-alibaba": "360c732d1fdbfc6895d7096c0c0b8c0d581bb1af80160f4c6a0f1fd9ff85e469",
    "comoeducar-serelepe": "23aaecd14171f96cfd201a8a46666097e286ad71f74f29347a78c5ecba50da1e",
    "nytimes-opinion": "04a6711caa7c687592777718866e781e976e0fe684faebe8b3cedcef8cd0ea34",
}


def page_bytes(name: str) -> bytes:
    """The page's HTML exactly as the site served it."""
    return gzip.decompress((FIXTURES / f"{name}.html.gz").read_bytes())


def page_html(name: str) -> str:
    return page_bytes(name).decode("utf-8", "replace")


@cache
def ground_truth() -> dict[str, dict[str, str]]:
    """Benchmark id -> {"articleBody", "url"}, for every page of the development half."""
    truth: dict[str, dict[str, str]] = json.loads(gzip.decompress(GROUND_TRUTH.read_bytes()))
    return truth


def article_body(name: str) -> str:
    """The hand-checked article text of a page kept here."""
    return ground_truth()[PAGES[name]]["articleBody"]

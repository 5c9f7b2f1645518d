"""Golden cases: each folder in cases/ holds page.html and the expected.md it must produce.

Add one with `python scripts/add_extract_case.py SLUG PAGE.html`; after a deliberate change
in behaviour, `--refresh` rewrites them all (then read the diff).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts.add_extract_case import expected_for

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_extracts_to_its_reviewed_markdown(case: Path) -> None:
    expected = (case / "expected.md").read_text(encoding="utf-8")
    assert expected_for(case) == expected


def test_the_golden_set_covers_the_kinds_of_page_users_open() -> None:
    names = {c.name for c in CASES}
    for kind in ("chinese", "arabic", "hebrew", "docs", "forum", "search", "product", "table"):
        assert any(kind in name for name in names), kind

#!/usr/bin/env python3
"""Add a golden case for the article extractor, or refresh the expected output of all cases.

    python scripts/add_extract_case.py SLUG path/to/page.html [--url URL]
    python scripts/add_extract_case.py --refresh

A case is tests/extract/cases/<slug>/ with page.html (the input, bytes as given), optional
url.txt, and expected.md: the extractor's metadata as a front-matter block followed by the
Markdown. The script writes expected.md from the current extractor; read it before you commit
it, since the test then holds the extractor to exactly that output.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "extract" / "cases"
sys.path.insert(0, str(ROOT / "backend"))

from tiangong.extract import Article, extract_article  # noqa: E402


def render_expected(article: Article) -> str:
    """The golden text for one article: metadata lines, a separator, the Markdown."""
    fields = {
        "title": article.title,
        "lang": article.lang,
        "byline": article.byline,
        "published": article.published,
        "words": article.words,
        "blocks": len(article.blocks),
    }
    head = "\n".join(f"{key}: {value}" for key, value in fields.items())
    return f"---\n{head}\n---\n{article.markdown}\n"


def expected_for(case: Path) -> str:
    url_file = case / "url.txt"
    url = url_file.read_text(encoding="utf-8").strip() if url_file.exists() else None
    return render_expected(extract_article((case / "page.html").read_bytes(), url))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("slug", nargs="?", help="folder name: lowercase words and dashes")
    parser.add_argument("page", nargs="?", type=Path, help="the HTML file to add")
    parser.add_argument("--url", help="the page's address, stored in url.txt")
    parser.add_argument("--refresh", action="store_true", help="rewrite every expected.md")
    args = parser.parse_args()

    if args.refresh:
        for case in sorted(p for p in CASES.iterdir() if (p / "page.html").exists()):
            (case / "expected.md").write_text(expected_for(case), encoding="utf-8")
            print(f"refreshed {case.relative_to(ROOT)}")
        return 0
    if not args.slug or not args.page:
        parser.error("give SLUG and PAGE, or --refresh")
    case = CASES / args.slug
    case.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.page, case / "page.html")
    if args.url:
        (case / "url.txt").write_text(args.url + "\n", encoding="utf-8")
    expected = expected_for(case)
    (case / "expected.md").write_text(expected, encoding="utf-8")
    print(expected)
    print(f"wrote {(case / 'expected.md').relative_to(ROOT)}: review it before committing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

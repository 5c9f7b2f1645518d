"""HTML of a live page → the article in it: text, Markdown, blocks and metadata.

    from tiangong.extract import extract_article, Article, ExtractionError

See `extract_article` and docs/extraction.md.
"""

from __future__ import annotations

from .article import Article, extract_article, extract_text
from .errors import ExtractionError

__all__ = ["Article", "ExtractionError", "extract_article", "extract_text"]

"""HTML of a live page → the article in it: text, Markdown, blocks and metadata; a PDF file →
its text page by page.

    from tiangong.extract import extract_article, Article, ExtractionError
    from tiangong.extract import extract_pdf, PdfDocument

See `extract_article` and docs/extraction.md.
"""

from __future__ import annotations

from .article import Article, extract_article, extract_text
from .errors import ExtractionError
from .pdf import PdfDocument, extract_pdf

__all__ = [
    "Article",
    "ExtractionError",
    "PdfDocument",
    "extract_article",
    "extract_pdf",
    "extract_text",
]

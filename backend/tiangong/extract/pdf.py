"""A PDF file → its text, page by page, so a citation can say which page it quotes.

Reading runs in the extraction worker (memory ceiling, timeout); on top of that pypdf's own
decompression limits stop a stream that inflates without end, and the page count and text
size are capped here, so a hostile file fails with a clear message instead of taking memory.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from tiangong.errors import TooLargeError

from .errors import ExtractionError
from .lang import count_words, detect_language

log = logging.getLogger(__name__)

MAX_PAGES = 2000
MAX_TEXT_CHARS = 4_000_000
_CJK_END = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]$")
_CJK_START = re.compile(r"^[\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]")
_PARAGRAPH_END = re.compile(r"[.?!:。！？：」』”\"]$")


@dataclass(frozen=True)
class PdfDocument:
    title: str  # the document's title metadata, else its first line ('' if none)
    text: str  # every page's text, pages joined by a blank line
    lang: str | None
    words: int
    page_count: int  # pages in the file
    pages: tuple[str, ...]  # text of each page read, in order (1-based page = index + 1)
    blocks: tuple[str, ...]  # paragraph-level blocks in reading order
    block_pages: tuple[int, ...]  # the 1-based page of each block

    def page_of(self, quote: str) -> int | None:
        """The page a verbatim quote of `text` comes from (None when it is not found)."""
        probe = quote.strip()[:80]
        if not probe:
            return None
        for number, page in enumerate(self.pages, start=1):
            if probe in page:
                return number
        return None


def extract_pdf(data: bytes) -> PdfDocument:
    """Text per page of a PDF file; raises `ExtractionError` (unreadable, encrypted, no text
    layer) or `TooLargeError` (too many pages, a stream that inflates past pypdf's limits)."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    if not data.lstrip()[:1024].startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
        raise ExtractionError("the file is not a PDF (it does not start with %PDF-)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("the PDF is password-protected; open it without a password")
        count = len(reader.pages)
        metadata = reader.metadata
        title = str((metadata.title if metadata is not None else None) or "").strip()
    except LimitReachedError:
        raise TooLargeError("the PDF holds a stream too large to unpack") from None
    except (ExtractionError, TooLargeError):
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        log.info("unreadable PDF: %s: %s", type(exc).__name__, exc)
        raise ExtractionError("the PDF is damaged or not a PDF pypdf can read") from None
    if count > MAX_PAGES:
        raise TooLargeError(f"the PDF has {count} pages; at most {MAX_PAGES} are read")
    pages: list[str] = []
    size = 0
    for index in range(count):
        try:
            raw = reader.pages[index].extract_text() or ""
        except LimitReachedError:
            raise TooLargeError(
                f"page {index + 1} of the PDF holds a stream too large to unpack"
            ) from None
        except Exception as exc:  # one damaged page should not hide the others
            log.info("PDF page %d unreadable: %s: %s", index + 1, type(exc).__name__, exc)
            raw = ""
        page = _clean_page(raw)
        size += len(page)
        if size > MAX_TEXT_CHARS:
            raise TooLargeError(f"the PDF holds more than {MAX_TEXT_CHARS} characters of text")
        pages.append(page)
    if not any(pages):
        raise ExtractionError(
            "this PDF has no text layer (it looks scanned: its pages are images). "
            "Run it through OCR first; Tiangong reads text, not pictures of text"
        )
    blocks: list[str] = []
    block_pages: list[int] = []
    for number, page in enumerate(pages, start=1):
        for block in page.split("\n\n"):
            if block.strip():
                blocks.append(block.strip())
                block_pages.append(number)
    text = "\n\n".join(p for p in pages if p)
    if not title:
        title = next((b.split("\n")[0][:200] for b in blocks), "")
    return PdfDocument(
        title=title,
        text=text,
        lang=detect_language(text),
        words=count_words(text),
        page_count=count,
        pages=tuple(pages),
        blocks=tuple(blocks),
        block_pages=tuple(block_pages),
    )


def _clean_page(raw: str) -> str:
    """Lines of one page joined into paragraphs: a line that ends a sentence ends one."""
    paragraphs: list[str] = []
    current = ""
    for line in (ln.strip() for ln in raw.replace("\r", "\n").split("\n")):
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if not current:
            current = line
        elif current.endswith("-") and line[:1].islower():
            current = current[:-1] + line  # a word hyphenated across lines
        elif _CJK_END.search(current) and _CJK_START.search(line):
            current += line
        else:
            current += " " + line
        if _PARAGRAPH_END.search(line):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)

"""The public entry point: `extract_article` and the `Article` it returns."""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.etree as etree
from lxml.html import HtmlElement

from . import boilerplate, dom
from .content import main_content
from .decode import to_text
from .errors import ExtractionError
from .lang import count_words, detect_language
from .metadata import Metadata, read_metadata
from .render import BLOCK_TAGS, Block, Renderer, collapse, join_blocks
from .selection import around_selection


@dataclass(frozen=True)
class Article:
    title: str  # page/article title ('' if none)
    text: str  # plain text, one blank line between blocks (list items one per line)
    markdown: str  # headings, lists, block quotes, fenced code and GFM tables kept
    lang: str | None  # primary language subtag detected from the text ('en', 'zh', ...)
    words: int  # word count; CJK characters count one word each
    byline: str | None
    published: str | None  # ISO 8601 date or date-time
    blocks: tuple[str, ...]  # paragraph-level text blocks in reading order


def extract_article(
    html: str | bytes, url: str | None = None, *, selection: str | None = None
) -> Article:
    """Extract the main text of a page and its metadata.

    `html` is the page's HTML (bytes are decoded by BOM, `<meta charset>`, or detection);
    over 16 MiB raises `TooLargeError`, input that is not HTML or holds no text at all raises
    `ExtractionError`. Pages that are not articles (search results, product pages, forums,
    documentation) give their main useful text.

    With `selection` (the text the user selected on the page):
      - `text` is the selection itself (whitespace collapsed per line);
      - `blocks` are the blocks of the section that holds the selection: from the nearest
        heading before it to the next heading of the same or a higher level, at most 12
        blocks either side of the selected ones; the selected blocks are among them;
      - `markdown` is that section as Markdown;
      - `words` counts the selection; `title`, `byline`, `published` describe the page and
        `lang` is detected from the selection.
    When the selection is not found in the page, `blocks` is `(text,)` and `markdown` is the
    selection.
    """
    text = to_text(html)
    parsed = dom.parse(text)
    root = parsed.root
    meta = read_metadata(root, url)
    dom.strip_non_text(root)
    blocks = _blocks(root, meta)
    if selection is not None and selection.strip():
        return _selected(blocks, root, meta, selection)
    if not blocks:
        why = f"; the parser stopped early because {parsed.truncated}" if parsed.truncated else ""
        raise ExtractionError("page has no readable text" + why)
    plain = join_blocks(blocks, markdown=False)
    return Article(
        title=meta.title,
        text=plain,
        markdown=join_blocks(blocks, markdown=True),
        lang=detect_language(plain, meta.lang_hint),
        words=count_words(plain),
        byline=meta.byline,
        published=meta.published,
        blocks=tuple(b.text for b in blocks),
    )


def extract_text(html: str | bytes, url: str | None = None) -> str:
    """Just the article text (the benchmark's extractor signature)."""
    return extract_article(html, url).text


def _blocks(root: HtmlElement, meta: Metadata) -> list[Block]:
    if dom.count_elements(root) > dom.MAX_SCORED_ELEMENTS:
        return _plain_blocks(dom.body_of(root))
    node = main_content(root)
    if node is not None:
        boilerplate.clean_tree(node)
        blocks = boilerplate.filter_blocks(Renderer().render(node), meta.title)
    else:
        blocks = []
    return boilerplate.choose(blocks, root)


def _plain_blocks(body: HtmlElement) -> list[Block]:
    """Text of a huge page without scoring: lxml's C serialiser, split on blank lines."""
    for el in body.iter(*BLOCK_TAGS):
        el.tail = "\n\n" + (el.tail or "")
    raw = etree.tostring(body, method="text", encoding="unicode")
    return [Block("p", c, c) for c in (collapse(p) for p in re.split(r"\n\s*\n", raw)) if c]


def _selected(blocks: list[Block], root: HtmlElement, meta: Metadata, selection: str) -> Article:
    chosen = around_selection(blocks, selection)
    if chosen is None:
        chosen = around_selection(Renderer().render(dom.body_of(root)), selection)
    sel = "\n".join(collapse(line) for line in selection.strip().split("\n"))
    context = chosen if chosen else [Block("p", sel, sel)]
    return Article(
        title=meta.title,
        text=sel,
        markdown=join_blocks(context, markdown=True),
        lang=detect_language(sel, meta.lang_hint),
        words=count_words(sel),
        byline=meta.byline,
        published=meta.published,
        blocks=tuple(b.text for b in context),
    )

"""Removing what is around the text inside the chosen content, and the fallback for non-articles."""

from __future__ import annotations

import re

from lxml.html import HtmlElement

from .lang import count_words
from .render import Block, Renderer, collapse

# Class or id words of page furniture that sits inside article containers.
_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:share|sharing|social|sharebar|newsletter|subscribe|subscription|signup|"
    r"related|recommended|recirc|more-stories|read-?more|read-?next|also-?read|tags?|"
    r"tag-?list|keywords|breadcrumbs?|byline|author|authors|dateline|timestamp|date|"
    r"published|meta|post-meta|entry-meta|article-meta|toolbar|tools|print|"
    r"advert|advertisement|ad|ads|adslot|promo|sponsor|sponsored|banner|outbrain|taboola|"
    r"comments?|disqus|popup|modal|cookie|consent|skip|hidden|sr-only|"
    r"visually-hidden|screen-reader-text|credit|tooltip|popover|rollover|hovercard|"
    r"dropdown)(?:$|[\s_-])|caption",
    re.I,
)
_KEEP = re.compile(r"article-?body|post-?body|entry-content|story-?body|content-?body", re.I)
_DROP_TAGS = ("nav", "aside", "footer", "form")
_BOILER_LINE = re.compile(
    r"^(?:share(?: this| on| via)?\b.*|tweet|e-?mail|print|comments?|advertisement|"
    r"(?:also )?read (?:more|next|also)\b.*|related(?: articles| stories| posts)?:?|"
    r"tags?:?|video|photo|image|follow us\b.*|sign up\b.*|subscribe\b.*|"
    r"you may also like.*|recommended(?: for you)?|more from\b.*|click here\b.*|"
    r"(?:updated|published|posted)(?: on| at)?:? .{0,40}|text size|"
    r"copyright\b.*|©.*|all rights reserved\.?)$",
    re.I,
)
_TEXTY_WORDS = 50  # below this many words the content is checked against the whole page


def _text_len(el: HtmlElement) -> int:
    return len(collapse(el.text_content()))


def _link_len(el: HtmlElement) -> int:
    return sum(len(collapse(a.text_content())) for a in el.iter("a"))


def clean_tree(node: HtmlElement) -> None:
    """Drop navigation, sharing, tag lists, bylines and similar furniture inside `node`."""
    doomed: list[HtmlElement] = []
    for el in node.iterdescendants():
        tag = el.tag if isinstance(el.tag, str) else ""
        if not tag:
            continue
        if tag in _DROP_TAGS or (el.get("role") or "") in ("navigation", "complementary"):
            doomed.append(el)
            continue
        feature = "{} {}".format(el.get("class", ""), el.get("id", ""))
        if (
            len(feature) > 1
            and _FURNITURE.search(feature)
            and not _KEEP.search(feature)
            and next(el.iterdescendants("blockquote"), None) is None
        ):
            length = _text_len(el)
            if length < 300 or _link_len(el) > 0.5 * length:
                doomed.append(el)
                continue
        if tag in ("ul", "ol"):
            length = _text_len(el)
            items = [li for li in el if li.tag == "li"]
            if items and length and _link_len(el) > 0.6 * length and length / len(items) < 80:
                doomed.append(el)
    for el in doomed:
        if el.getparent() is not None and not any(a in doomed for a in el.iterancestors()):
            el.drop_tree()


def _same(a: str, b: str) -> bool:
    a, b = collapse(a).lower().strip(" .:"), collapse(b).lower().strip(" .:")
    return bool(a) and (a == b or (len(a) > 15 and (a in b or b in a)))


def filter_blocks(blocks: list[Block], title: str) -> list[Block]:
    """Drop the repeated title, and short lines that are furniture (share, tags, dates)."""
    seen: dict[str, int] = {}
    for block in blocks:
        if block.kind != "h" and len(block.text) > 20:
            seen[block.text] = seen.get(block.text, 0) + 1
    kept: list[Block] = []
    for i, block in enumerate(blocks):
        # Text repeated three times or more is a caption or a widget, never the story.
        if seen.get(block.text, 0) >= 3:
            continue
        text = block.text
        if block.kind == "h" and (i < 3 and (block.level == 1 or _same(text, title))):
            continue
        if block.kind == "caption":  # figure captions describe pictures we do not keep
            continue
        if block.kind in ("code", "table"):
            kept.append(block)
            continue
        if len(text) < 80 and _BOILER_LINE.match(text):
            continue
        if block.link_density > 0.6 and len(text) < 150:
            continue
        kept.append(block)
    return _drop_empty_sections(kept)


def _drop_empty_sections(blocks: list[Block]) -> list[Block]:
    """Headings left with nothing under them (their section was furniture) go too."""
    kept: list[Block] = []
    for block in reversed(blocks):
        if block.kind == "h":
            following = next((b for b in reversed(kept) if b.kind == "h"), None)
            has_body = kept and kept[-1].kind != "h"
            if not has_body and (following is None or following.level <= block.level):
                continue
        kept.append(block)
    kept.reverse()
    return kept


def _words(blocks: list[Block]) -> int:
    return sum(count_words(b.text) for b in blocks)


def page_blocks(root: HtmlElement, keep_links: bool = False) -> list[Block]:
    """The whole page's text minus navigation and link lists: for pages that are not articles."""
    import copy

    body = root.find("body")
    body = copy.deepcopy(body if body is not None else root)
    doomed = [
        el
        for el in body.iter("nav", "header", "footer", "aside")
        if not any(p.tag in ("article", "main") for p in el.iterancestors())
    ]
    for el in doomed:
        if el.getparent() is not None:
            el.drop_tree()
    if not keep_links:
        clean_tree(body)
    main = next(body.iter("main"), None)
    blocks = Renderer().render(main if main is not None else body)
    if keep_links:
        return blocks
    return [b for b in blocks if b.link_density < 0.5 or b.kind in ("code", "table")]


def choose(article: list[Block], root: HtmlElement) -> list[Block]:
    """The article's blocks, or the page's when the article is a small part of a text page."""
    words = _words(article)
    if words >= _TEXTY_WORDS:
        return article
    page = page_blocks(root)
    if _words(page) > max(4 * words, 20):
        return page
    best = article or page
    if _words(best) < 20:
        # Little but links (a link directory, a table of contents): the links are the content.
        links = page_blocks(root, keep_links=True)
        if _words(links) > 2 * _words(best):
            return links
    return best

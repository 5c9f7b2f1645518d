"""Parsing HTML into an lxml tree, bounded in depth and size, and stripping what is never text."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import lxml.etree as etree
import lxml.html
from lxml.html import HtmlElement

from tiangong.errors import TooLargeError

from .errors import ExtractionError

# libxml2 without XML_PARSE_HUGE stops nesting at 256 levels and text nodes at 10 MB, which
# is the bound we want against hostile pages (deeper trees also break recursive tree code).
_PARSER_OPTIONS = {
    "encoding": "utf-8",
    "remove_comments": True,
    "remove_pis": True,
    "no_network": True,
    "huge_tree": False,
    "default_doctype": False,
}
# lxml parsers must not be shared between threads, and the error log read after parsing is
# per parser: one parser per thread.
_local = threading.local()


def _parser() -> lxml.html.HTMLParser:
    parser: lxml.html.HTMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = lxml.html.HTMLParser(**_PARSER_OPTIONS)
    return parser


# Beyond this many elements the page is read as plain text without content scoring, which
# would take seconds in Python on a million nodes; beyond MAX_ELEMENTS it is refused before
# parsing, so that memory stays bounded (an lxml element costs a few hundred bytes).
MAX_SCORED_ELEMENTS = 40_000
MAX_ELEMENTS = 250_000

NEVER_TEXT = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "math",
    "canvas",
    "iframe",
    "object",
    "embed",
    "video",
    "audio",
    "select",
    "textarea",
    "button",
    "input",
    "link",
    "meta",
    "head",
)
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)", re.I)


@dataclass(frozen=True)
class Parsed:
    root: HtmlElement
    truncated: str | None  # why the parser stopped early, if it did


def parse(text: str) -> Parsed:
    """The document element of `text`, parsed like a browser would (lenient, UTF-8)."""
    if not text.strip():
        raise ExtractionError("page HTML is empty")
    tags = text.count("<") - text.count("</")
    if tags > MAX_ELEMENTS:
        raise TooLargeError(f"page has about {tags} elements; the limit is {MAX_ELEMENTS}")
    parser = _parser()
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise ExtractionError(f"page HTML cannot be parsed: {exc}") from exc
    if root is None or not isinstance(root, HtmlElement):
        raise ExtractionError("page HTML has no document element")
    truncated = None
    for entry in parser.error_log:
        message = entry.message.lower()
        if "depth" in message:
            truncated = "it nests elements more than 255 levels deep"
        elif "huge" in message or "too long" in message or "limit" in message:
            truncated = "it has a text node over 10 MB"
    return Parsed(root, truncated)


def count_elements(root: HtmlElement) -> int:
    return sum(1 for _ in root.iter())


def strip_non_text(root: HtmlElement) -> None:
    """Remove scripts, styles, media, form controls and hidden elements in place."""
    etree.strip_elements(root, *NEVER_TEXT, with_tail=False)
    hidden = [
        el
        for el in root.iter()
        if isinstance(el.tag, str)
        and (
            el.get("hidden") is not None
            or ("style" in el.attrib and _HIDDEN_STYLE.search(el.get("style", "")))
        )
    ]
    for el in hidden:
        if el.getparent() is not None:
            el.drop_tree()
    # Embedded posts (tweets and the like) are mostly links by length; unwrapping those keeps
    # link-density rules from throwing the quoted text away.
    for quote in root.iter("blockquote"):
        etree.strip_tags(quote, "a")


def body_of(root: HtmlElement) -> HtmlElement:
    body = root.find("body")
    return body if body is not None else root

"""Finding the main content element with readability-lxml's scoring, on a tree we parsed once.

`readability.Document` re-parses its input and runs lxml_html_clean on every attempt, which is
half of its time and nothing we need (scripts and styles are already gone). This subclass
hands it a fresh copy of our cleaned tree instead, keeps quoted embeds (tweets and the like)
that its "unlikely candidate" patterns would drop, and does the div-to-paragraph pass without
serialising every child.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import readability.readability as _readability_module
from lxml.html import HtmlElement, fragment_fromstring
from readability import Document
from readability.readability import REGEXES

logging.getLogger("readability.readability").setLevel(logging.CRITICAL)


def _clean(text: str) -> str:
    """readability's `clean` (whitespace runs to one character) without its three regexes,
    which cost seconds when called on every ancestor of a large, deeply nested page."""
    return " ".join(text.split())


def _text_length(elem: HtmlElement) -> int:
    return len(_clean(elem.text_content() or ""))


_readability_module.clean = _clean
_readability_module.text_length = _text_length

_BLOCKISH = ("blockquote", "dl", "div", "img", "ol", "p", "pre", "table", "ul", "picture")
_INLINE = frozenset(
    ["a", "b", "cite", "code", "em", "font", "i", "small", "span", "strong", "sub", "sup", "u"]
)
_NEGATIVE_EXTRA = re.compile(
    r"share|sharing|social|newsletter|subscribe|signup|related|recommend|popular|trending|"
    r"breadcrumb|byline|author-bio|advert|\bads?\b|banner|cookie|consent|"
    r"read-?more|more-stories|also-read|sticky|modal|toolbar|nav\b|navbar|menu",
    re.I,
)


class _Readability(Document):  # type: ignore[misc]
    def __init__(self, tree: HtmlElement) -> None:
        super().__init__("", min_text_length=25, retry_length=250)
        self._tree = tree
        self.article: HtmlElement | None = None

    def _parse(self, input: Any) -> HtmlElement:
        return copy.deepcopy(self._tree)

    def class_weight(self, e: HtmlElement) -> int:
        weight: int = super().class_weight(e)
        for feature in (e.get("class"), e.get("id")):
            if feature and _NEGATIVE_EXTRA.search(feature):
                weight -= 25
                break
        # Embedded posts and quotes ("social-embed" wrappers) are part of the story.
        if weight < 0 and next(e.iterdescendants("blockquote"), None) is not None:
            weight = 0
        return weight

    def remove_unlikely_candidates(self) -> None:
        unlikely = REGEXES["unlikelyCandidatesRe"]
        maybe = REGEXES["okMaybeItsACandidateRe"]
        doomed = []
        for elem in self.html.iter():
            if not isinstance(elem.tag, str) or elem.tag in ("html", "body", "blockquote"):
                continue
            s = "{} {}".format(elem.get("class", ""), elem.get("id", ""))
            if len(s) < 2 or not unlikely.search(s) or maybe.search(s):
                continue
            if next(elem.iterancestors("pre", "code", "blockquote"), None) is not None:
                continue
            if elem.tag in ("pre", "code", "main", "article", "math"):
                continue
            protected = elem.iterdescendants("main", "article", "math", "pre", "code")
            if next(protected, None) is not None:
                continue
            doomed.append(elem)
        for elem in doomed:
            if elem.getparent() is not None:
                elem.drop_tree()

    def transform_misused_divs_into_paragraphs(self) -> None:
        for elem in list(self.html.iter("div")):
            if next(elem.iterdescendants(*_BLOCKISH), None) is None:
                elem.tag = "p"
        for elem in list(self.html.iter("div")):
            children = list(elem)
            paragraph = None
            if elem.text and elem.text.strip():
                p = fragment_fromstring("<p/>")
                p.text = elem.text
                elem.text = None
                elem.insert(0, p)
                paragraph = p
            for child in children:
                if child.tag == "br":
                    paragraph = None
                    continue
                if child.tag not in _INLINE or (
                    next(child.iterdescendants(*_BLOCKISH), None) is not None
                ):
                    paragraph = None
                    continue
                if paragraph is None:
                    paragraph = fragment_fromstring("<p/>")
                    child.addprevious(paragraph)
                paragraph.append(child)
            for pos, child in reversed(list(enumerate(elem))):
                if child.tail and child.tail.strip():
                    p = fragment_fromstring("<p/>")
                    p.text = child.tail
                    child.tail = None
                    elem.insert(pos + 1, p)
                if child.tag == "br":
                    child.drop_tree()

    def get_preserved_elements(self, node: HtmlElement) -> dict[HtmlElement, bool]:
        # readability drops lists and tables shorter than 25 characters or with fewer commas
        # than it likes; short ingredient lists, steps and small data tables are content.
        allowed: dict[HtmlElement, bool] = super().get_preserved_elements(node)
        for el in node.iter("ul", "ol", "dl", "table"):
            if el.tag == "table" and el.find(".//table") is not None:
                continue
            if _clean(el.text_content()) and self.get_link_density(el) < 0.2:
                allowed[el] = True
        return allowed

    def get_clean_html(self) -> str:
        # sanitize() ends here with the article in self.html; keep the element, and give
        # summary() a string of the right size for its retry-on-short-result check.
        self.article = self.html
        return "x" * len(self.html.text_content())


def main_content(tree: HtmlElement) -> HtmlElement | None:
    """The article element readability picks from `tree` (which is left untouched)."""
    doc = _Readability(tree)
    doc.summary(html_partial=True)
    return doc.article

"""An element subtree to paragraph-level blocks, each with plain text and Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml.html import HtmlElement

INLINE_TAGS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "b",
        "bdi",
        "bdo",
        "big",
        "cite",
        "code",
        "data",
        "del",
        "dfn",
        "em",
        "font",
        "i",
        "ins",
        "kbd",
        "label",
        "mark",
        "nobr",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
        "img",
        "picture",
        "source",
    ]
)
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "td",
        "th",
        "caption",
        "ul",
        "body",
        "html",
    ]
)
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_LANG_CLASS = re.compile(r"(?:^|\s)(?:language|lang|highlight-source|highlight)-([\w+#]+)")


@dataclass
class Block:
    kind: str  # p, h, li, quote, code, table, caption
    text: str
    md: str
    group: int = 0  # items of one list share a group; 0 for everything else
    level: int = 0  # heading level, or list nesting depth
    linked: int = 0  # characters of text inside links

    @property
    def link_density(self) -> float:
        return self.linked / max(1, len(self.text))


def collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


class _Inline:
    """Running inline content: plain text and Markdown side by side."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.md: list[str] = []
        self.in_link = 0
        self.linked = 0

    def add(self, text: str, md: str | None = None) -> None:
        self.text.append(text)
        self.md.append(text if md is None else md)
        if self.in_link:
            self.linked += len(text.strip())

    def take_linked(self) -> int:
        linked, self.linked = self.linked, 0
        return linked

    def take(self) -> tuple[str, str]:
        text = "\n".join(collapse(line) for line in "".join(self.text).split("\n"))
        md = "\n".join(collapse(line) for line in "".join(self.md).split("\n"))
        self.text.clear()
        self.md.clear()
        return text.strip("\n"), md.strip("\n")


def _escape_md(text: str) -> str:
    # Only what would change the block's meaning at a line start.
    return re.sub(r"^([#>]|[-*+] |\d+\. )", r"\\\1", text, flags=re.M)


class Renderer:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._groups = 0

    def render(self, el: HtmlElement) -> list[Block]:
        inline = _Inline()
        self._children(el, inline)
        self._flush(inline)
        return self.blocks

    # -- walking -----------------------------------------------------------------------
    def _flush(self, inline: _Inline, kind: str = "p") -> None:
        text, md = inline.take()
        linked = inline.take_linked()
        if text.strip():
            self.blocks.append(Block(kind, text, _escape_md(md), linked=linked))

    def _children(self, el: HtmlElement, inline: _Inline) -> None:
        if el.text:
            inline.add(el.text)
        for child in el:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag:
                self._element(child, tag.lower(), inline)
            if child.tail:
                inline.add(child.tail)

    def _element(self, el: HtmlElement, tag: str, inline: _Inline) -> None:
        if tag == "br":
            inline.add("\n")
        elif tag in INLINE_TAGS:
            self._inline_element(el, tag, inline)
        elif tag not in BLOCK_TAGS and next(el.iterdescendants(*BLOCK_TAGS), None) is None:
            # Custom elements (<hl-source>, <o:p>...) holding only text flow with it.
            self._children(el, inline)
        elif tag in HEADINGS:
            self._flush(inline)
            text = collapse(el.text_content())
            if text:
                level = HEADINGS[tag]
                self.blocks.append(Block("h", text, "#" * level + " " + text, level=level))
        elif tag == "pre":
            self._flush(inline)
            self._code(el)
        elif tag in ("ul", "ol"):
            self._flush(inline)
            self._list(el, tag == "ol", 0)
        elif tag == "table" and _is_data_table(el):
            self._flush(inline)
            self._table(el)
        elif tag == "blockquote":
            self._flush(inline)
            self._quote(el)
        elif tag in ("figcaption", "caption"):
            self._flush(inline)
            self._children(el, inline)
            self._flush(inline, "caption")
        elif tag == "hr":
            self._flush(inline)
        else:
            self._flush(inline)
            self._children(el, inline)
            self._flush(inline)

    def _inline_element(self, el: HtmlElement, tag: str, inline: _Inline) -> None:
        if tag == "code" and len(el) == 0:
            code = el.text or ""
            if code.strip():
                inline.add(code, "`" + code.replace("`", "\u02cb") + "`")
            return
        if tag == "img":
            return
        if tag == "a":
            inline.in_link += 1
            self._children(el, inline)
            inline.in_link -= 1
            return
        self._children(el, inline)

    def _code(self, el: HtmlElement) -> None:
        code = el.text_content().strip("\n")
        if not code.strip():
            return
        classes = " ".join([el.get("class", "")] + [c.get("class", "") for c in el.iter("code")])
        match = _LANG_CLASS.search(classes)
        lang = match.group(1) if match else ""
        fence = "````" if "```" in code else "```"
        self.blocks.append(Block("code", code, f"{fence}{lang}\n{code}\n{fence}"))

    def _list(self, el: HtmlElement, ordered: bool, depth: int) -> None:
        self._groups += 1
        group = self._groups
        number = 0
        for item in el:
            if not isinstance(item.tag, str):
                continue
            if item.tag not in ("li", "dd", "dt"):
                if item.tag in ("ul", "ol"):  # a list misplaced directly in a list
                    self._list(item, item.tag == "ol", depth + 1)
                continue
            number += 1
            inline = _Inline()
            nested: list[HtmlElement] = []
            if item.text:
                inline.add(item.text)
            for child in item:
                if child.tag in ("ul", "ol"):
                    nested.append(child)
                elif isinstance(child.tag, str):
                    before = len(self.blocks)
                    self._element(child, child.tag.lower(), inline)
                    # Block content inside an item (paragraphs) stays part of the item.
                    for block in self.blocks[before:]:
                        inline.add(" " + block.text + " ", " " + block.md + " ")
                        inline.linked += block.linked
                    del self.blocks[before:]
                if child.tail:
                    inline.add(child.tail)
            text, md = inline.take()
            text, md = collapse(text), collapse(md)
            linked = inline.take_linked()
            if text:
                marker = f"{number}." if ordered else "-"
                self.blocks.append(
                    Block("li", text, "   " * depth + f"{marker} {md}", group, depth, linked)
                )
            for sub in nested:
                self._list(sub, sub.tag == "ol", depth + 1)
                # Nested items continue the outer list's run of lines.
                for block in self.blocks:
                    if block.group == self._groups:
                        block.group = group

    def _quote(self, el: HtmlElement) -> None:
        sub = Renderer()
        sub._groups = self._groups
        inner = sub.render(el)
        self._groups = sub._groups
        for block in inner:
            md = "\n".join("> " + line if line else ">" for line in block.md.split("\n"))
            self.blocks.append(
                Block("quote", block.text, md, block.group, block.level, block.linked)
            )

    def _table(self, el: HtmlElement) -> None:
        rows: list[list[str]] = []
        header = False
        for tr in el.iter("tr"):
            cells = [c for c in tr if c.tag in ("td", "th")]
            if not cells:
                continue
            if not rows and all(c.tag == "th" for c in cells):
                header = True
            rows.append([collapse(c.text_content()) for c in cells])
        rows = [r for r in rows if any(r)]
        if not rows:
            return
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        text = "\n".join(" | ".join(c for c in r if c) for r in rows)
        cell = [[c.replace("|", "\\|") for c in r] for r in rows]
        head = cell[0] if header else [""] * width
        body = cell[1:] if header else cell
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * width]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        caption = el.find("caption")
        if caption is not None and collapse(caption.text_content()):
            cap = collapse(caption.text_content())
            self.blocks.append(Block("p", cap, cap))
        self.blocks.append(Block("table", text, "\n".join(lines)))


def _is_data_table(el: HtmlElement) -> bool:
    """A grid of short cells, not a layout table holding paragraphs or other tables."""
    if el.find(".//table") is not None:
        return False
    for tag in ("p", "div", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3"):
        if el.find(".//" + tag) is not None:
            return False
    rows = el.findall(".//tr")
    return 0 < len(rows) <= 500


def join_blocks(blocks: list[Block], markdown: bool) -> str:
    """Blocks separated by one blank line; items of one list on consecutive lines."""
    out: list[str] = []
    prev: Block | None = None
    for block in blocks:
        piece = block.md if markdown else block.text
        if prev is not None:
            same_list = block.group and block.group == prev.group
            same_quote = markdown and block.kind == prev.kind == "quote"
            out.append("\n" if same_list else "\n>\n" if same_quote else "\n\n")
        out.append(piece)
        prev = block
    return "".join(out)

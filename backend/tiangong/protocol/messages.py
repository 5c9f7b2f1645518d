"""Client messages of wire protocol v1 as typed values (protocol/schema/v1 is the truth).

The codec validates a frame against the schema first, so these constructors only pick fields
and apply the schema's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PROTOCOL_VERSION = 1

SummaryType = Literal["key-points", "tldr", "teaser", "headline"]
SummaryLength = Literal["short", "medium", "long"]


@dataclass(frozen=True)
class Cue:
    """One caption of a video's transcript: its text and where it starts (seconds)."""

    start: float
    text: str


@dataclass(frozen=True)
class Page:
    url: str
    title: str = ""
    html: str | None = None
    text: str | None = None
    selection: str | None = None
    lang: str | None = None
    pdf: str | None = None  # base64 of a PDF file
    transcript: tuple[Cue, ...] | None = None  # a video's captions, read instead of the page
    transcript_lang: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Page:
        selection = data.get("selection")
        transcript = data.get("transcript")
        return cls(
            url=data["url"],
            title=data.get("title", ""),
            html=data.get("html"),
            text=data.get("text"),
            selection=selection if selection and selection.strip() else None,
            lang=data.get("lang"),
            pdf=data.get("pdf"),
            transcript=(
                tuple(Cue(float(c["start"]), c["text"]) for c in transcript["cues"])
                if transcript
                else None
            ),
            transcript_lang=transcript.get("language") if transcript else None,
        )


@dataclass(frozen=True)
class Hello:
    protocol: int
    token: str
    client_name: str = ""
    client_version: str = ""


@dataclass(frozen=True)
class SummarizeOptions:
    type: SummaryType = "key-points"
    length: SummaryLength = "medium"
    format: Literal["markdown", "plain-text"] = "markdown"
    output_language: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Summarize:
    id: str
    page: Page  # with `pages`: the first of them
    options: SummarizeOptions
    pages: tuple[Page, ...] = ()  # 2–8 pages read together (open tabs)
    regenerates: str | None = None  # the id of the answer this one replaces


@dataclass(frozen=True)
class Ask:
    id: str
    question: str
    page: Page | None
    conversation_id: str | None
    max_tokens: int | None = None
    output_language: str | None = None
    pages: tuple[Page, ...] = ()  # 2–8 pages read together (open tabs)
    regenerates: str | None = None


@dataclass(frozen=True)
class RewriteOptions:
    tone: Literal["as-is", "more-formal", "more-casual"] = "as-is"
    length: Literal["as-is", "shorter", "longer"] = "as-is"
    format: Literal["as-is", "plain-text", "markdown"] = "as-is"
    task: Literal["rewrite", "translate", "action"] = "rewrite"
    instruction: str | None = None
    output_language: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Rewrite:
    id: str
    text: str
    context: str | None
    options: RewriteOptions
    regenerates: str | None = None


@dataclass(frozen=True)
class Cancel:
    id: str


@dataclass(frozen=True)
class History:
    id: str
    conversation_id: str | None = None
    limit: int = 50
    request_id: str | None = None


Request = Summarize | Ask | Rewrite
ClientMessage = Hello | Summarize | Ask | Rewrite | Cancel | History


def message_from_wire(data: dict[str, Any]) -> ClientMessage:
    """Build the typed message from a frame that already passed schema validation."""
    kind = data["type"]
    if kind == "hello":
        client = data.get("client", {})
        return Hello(
            data["protocol"], data["token"], client.get("name", ""), client.get("version", "")
        )
    if kind == "summarize":
        pages = tuple(Page.from_wire(p) for p in data.get("pages", ()))
        first = Page.from_wire(data["page"]) if "page" in data else pages[0]
        options = SummarizeOptions(**data.get("options", {}))
        return Summarize(data["id"], first, options, pages, data.get("regenerates"))
    if kind == "ask":
        options = data.get("options", {})
        page = data.get("page")
        return Ask(
            id=data["id"],
            question=data["question"],
            page=Page.from_wire(page) if page is not None else None,
            conversation_id=data.get("conversation_id"),
            max_tokens=options.get("max_tokens"),
            output_language=options.get("output_language"),
            pages=tuple(Page.from_wire(p) for p in data.get("pages", ())),
            regenerates=data.get("regenerates"),
        )
    if kind == "rewrite":
        return Rewrite(
            data["id"],
            data["text"],
            data.get("context"),
            RewriteOptions(**data.get("options", {})),
            data.get("regenerates"),
        )
    if kind == "cancel":
        return Cancel(data["id"])
    if kind == "history":
        return History(
            data["id"], data.get("conversation_id"), data.get("limit", 50), data.get("request_id")
        )
    raise ValueError(f"no message type {kind!r}")  # unreachable after validation

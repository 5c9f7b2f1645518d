"""Title, byline, publication date and declared language from meta tags, JSON-LD and markup."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lxml.html import HtmlElement

from .render import collapse

_TITLE_SPLIT = re.compile(r"\s+[|\-–—:»·•]\s+")
_BY = re.compile(r"^(?:by|from|von|par|por|di|door|av|af|автор:?|作者[:：]?)\s+", re.I)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_DATE_META = (
    "article:published_time",
    "og:article:published_time",
    "published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "date",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "dcterms.date",
    "sailthru.date",
    "parsely-pub-date",
    "article.published",
    "citation_publication_date",
)
_AUTHOR_META = ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author")
_MAX_JSON_LD = 1_000_000


@dataclass(frozen=True)
class Metadata:
    title: str
    byline: str | None
    published: str | None
    lang_hint: str | None


def read_metadata(root: HtmlElement, url: str | None) -> Metadata:
    meta = _meta_tags(root)
    ld = list(_json_ld_objects(root))
    return Metadata(
        title=_title(root, meta, ld),
        byline=_byline(root, meta, ld),
        published=_published(root, meta, ld),
        lang_hint=_lang_hint(root, meta),
    )


def _meta_tags(root: HtmlElement) -> dict[str, str]:
    found: dict[str, str] = {}
    for el in root.iter("meta"):
        key = (el.get("property") or el.get("name") or el.get("itemprop") or "").strip().lower()
        value = el.get("content")
        if key and value and value.strip() and key not in found:
            found[key] = value.strip()
        equiv = (el.get("http-equiv") or "").lower()
        if equiv == "content-language" and value:
            found.setdefault("content-language", value.strip())
    return found


def _json_ld_objects(root: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        raw = script.text or ""
        if not raw.strip() or len(raw) > _MAX_JSON_LD:
            continue
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                if "@graph" in item:
                    stack.append(item["@graph"])
                yield item


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k for k in kinds if isinstance(k, str)}


def _is_article(obj: dict[str, Any]) -> bool:
    return any(k.endswith(("Article", "Posting", "Report")) or k == "WebPage" for k in _types(obj))


def _title(root: HtmlElement, meta: dict[str, str], ld: list[dict[str, Any]]) -> str:
    head_title = root.find(".//title")
    page = collapse(head_title.text_content()) if head_title is not None else ""
    h1s = [collapse(h.text_content()) for h in root.iter("h1")]
    h1s = [h for h in h1s if h]
    for h1 in h1s[:3]:
        if len(h1) > 3 and (h1.lower() in page.lower() or h1 == meta.get("og:title")):
            return h1
    for key in ("og:title", "twitter:title"):
        if meta.get(key):
            return collapse(meta[key])
    for obj in ld:
        headline = obj.get("headline")
        if _is_article(obj) and isinstance(headline, str) and headline.strip():
            return collapse(headline)
    if page:
        parts = _TITLE_SPLIT.split(page)
        # "Story headline | Site" → the longest part is the headline.
        return max(parts, key=len) if len(parts) > 1 else page
    return h1s[0] if h1s else ""


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _names(value.get("name"))
    if isinstance(value, list):
        return [n for v in value for n in _names(v)]
    return []


def _clean_byline(text: str) -> str | None:
    text = _BY.sub("", collapse(text)).strip(" ,;|")
    if not text or len(text) > 120 or text.startswith(("http://", "https://", "@")):
        return None
    return text


def _byline(root: HtmlElement, meta: dict[str, str], ld: list[dict[str, Any]]) -> str | None:
    for obj in ld:
        if _is_article(obj):
            names = [n for n in (_clean_byline(x) for x in _names(obj.get("author"))) if n]
            if names:
                return ", ".join(dict.fromkeys(names))
    for key in _AUTHOR_META:
        if key in meta and (name := _clean_byline(meta[key])):
            return name
    for el in root.iter("a", "span", "div", "p", "address"):
        rel, prop = el.get("rel") or "", el.get("itemprop") or ""
        cls = el.get("class") or ""
        is_byline = rel == "author" or prop == "author" or "byline" in cls
        if is_byline and (name := _clean_byline(el.text_content())):
            return name
    return None


def normalize_date(value: str) -> str | None:
    """ISO 8601 form of a date or date-time string, or None if it is not one."""
    value = value.strip()
    if not value:
        return None
    if len(value) == 10:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    match = _ISO_DATE.search(value)
    if match:
        y, mo, d, h, mi, s = match.groups()
        try:
            if h is None:
                return date(int(y), int(mo), int(d)).isoformat()
            return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0)).isoformat()
        except ValueError:
            return None
    for fmt in ("%a, %d %b %Y %H:%M:%S %z", "%Y/%m/%d", "%d %B %Y", "%B %d, %Y", "%b %d, %Y"):
        try:
            return datetime.strptime(value, fmt).isoformat()
        except ValueError:
            continue
    return None


def _published(root: HtmlElement, meta: dict[str, str], ld: list[dict[str, Any]]) -> str | None:
    for key in _DATE_META:
        if key in meta and (found := normalize_date(meta[key])):
            return found
    for obj in ld:
        for key in ("datePublished", "dateCreated", "uploadDate"):
            value = obj.get(key)
            if isinstance(value, str) and (found := normalize_date(value)):
                return found
    for el in root.iter("time"):
        value = el.get("datetime") or ""
        if (found := normalize_date(value)) is not None:
            return found
    return None


def _lang_hint(root: HtmlElement, meta: dict[str, str]) -> str | None:
    for value in (
        root.get("lang"),
        root.get("xml:lang"),
        meta.get("content-language"),
        meta.get("og:locale"),
    ):
        if value:
            primary = re.split(r"[-_,;\s]", value.strip().lower(), maxsplit=1)[0]
            if 2 <= len(primary) <= 3 and primary.isalpha():
                return primary
    return None

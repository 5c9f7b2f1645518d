"""Bytes or text in, clean text out: size limit, character set, and the characters parsers hate."""

from __future__ import annotations

import codecs
import re

from tiangong.errors import TooLargeError

from .errors import ExtractionError

MAX_HTML_BYTES = 16 * 1024 * 1024

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE
)
# C0 controls other than tab, newline and carriage return, plus lone surrogates: lxml rejects
# them or silently cuts the document at the first NUL.
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _known_codec(name: bytes) -> str | None:
    try:
        return codecs.lookup(name.decode("ascii", "replace")).name
    except LookupError:
        return None


def _sniff_encoding(data: bytes) -> tuple[str, int]:
    """The encoding to decode with and how many BOM bytes to skip."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    match = _META_CHARSET.search(data[:8192])
    declared = _known_codec(match.group(1)) if match else None
    # Browsers treat a declared latin-1 as windows-1252, and a declared UTF-16 in a byte stream
    # that decoded as ASCII so far is a lie.
    if declared in ("latin-1", "iso8859-1", "ascii"):
        declared = "cp1252"
    if declared and declared.startswith("utf-16"):
        declared = "utf-8"
    if declared:
        return declared, 0
    try:
        data.decode("utf-8")
        return "utf-8", 0
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # only for undeclared non-UTF-8 bytes

    best = from_bytes(data[:65536]).best()
    return (best.encoding if best is not None else "cp1252"), 0


def to_text(html: str | bytes) -> str:
    """Decode `html` (if bytes) and drop control characters; raise on oversize or wrong type."""
    if isinstance(html, bytes | bytearray | memoryview):
        data = bytes(html)
        if len(data) > MAX_HTML_BYTES:
            raise TooLargeError(
                f"page HTML is {len(data) / 1048576:.1f} MiB; the limit is "
                f"{MAX_HTML_BYTES // 1048576} MiB"
            )
        encoding, skip = _sniff_encoding(data)
        text = data[skip:].decode(encoding, "replace")
    elif isinstance(html, str):
        # Four bytes per character at most in UTF-8; count exactly only near the limit.
        if len(html) * 4 > MAX_HTML_BYTES and len(html.encode("utf-8", "replace")) > MAX_HTML_BYTES:
            raise TooLargeError(f"page HTML is over the {MAX_HTML_BYTES // 1048576} MiB limit")
        text = html
    else:
        raise ExtractionError(f"page HTML must be str or bytes, not {type(html).__name__}")
    head = text[:65536]
    if head and len(_BAD_CHARS.findall(head)) + head.count("\ufffd") > 0.05 * len(head):
        raise ExtractionError("input looks like binary data, not HTML")
    return _BAD_CHARS.sub("", text.lstrip("\ufeff"))

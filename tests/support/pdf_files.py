"""Real PDF files made in the test run (fpdf2): a text layer, scanned-like, damaged, hostile."""

from __future__ import annotations

import io
import zlib

from fpdf import FPDF
from PIL import Image, ImageDraw


def text_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """One PDF page per string, in Helvetica (Latin-1 text)."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 7, text)
    return bytes(pdf.output())


def scanned_pdf() -> bytes:
    """Pages that are pictures of text: no text layer at all, like a scan."""
    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).text((20, 80), "A scanned page: this is only pixels.", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.image(io.BytesIO(buffer.getvalue()), x=10, y=10, w=190)
    return bytes(pdf.output())


def damaged_pdf() -> bytes:
    """A PDF header followed by bytes that are no PDF structure at all."""
    good = text_pdf(["Nothing to see."])
    return good[:40] + b"\x00garbage\xff" * 200


def bomb_pdf(inflated_bytes: int = 400_000_000) -> bytes:
    """One page whose content stream inflates from well under a megabyte to `inflated_bytes`."""
    compressor = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    packed = b"".join(compressor.compress(chunk) for _ in range(inflated_bytes >> 20))
    packed += compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)

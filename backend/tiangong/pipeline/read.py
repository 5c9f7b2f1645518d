"""Step: the page a request sent → the `PageDoc` it works on.

The selection when the task reads it, else a video's transcript (its captions, with where
each cue starts), else the PDF's text page by page, else the article extracted from the HTML
(in the extraction workers, never on the event loop), else the text the client sent.
"""

from __future__ import annotations

import base64
import binascii

from tiangong.errors import BadRequestError
from tiangong.extract.worker import ExtractionWorker
from tiangong.pipeline.request import PageDoc, doc_from_text, doc_from_transcript
from tiangong.protocol.messages import Page


async def read_page(extractor: ExtractionWorker, page: Page, *, use_selection: bool) -> PageDoc:
    if use_selection and page.selection:
        return doc_from_text(page.url, page.title, page.selection, page.lang, selection=True)
    if page.transcript is not None:
        doc = doc_from_transcript(
            page.url, page.title, page.transcript, page.transcript_lang or page.lang
        )
    elif page.pdf is not None:
        return await _read_pdf(extractor, page, page.pdf)
    elif page.html is not None and page.html.strip():
        article = await extractor.extract(page.html, page.url or None)
        doc = PageDoc(
            url=page.url,
            title=article.title or page.title,
            text=article.text,
            blocks=tuple(article.blocks),
            lang=article.lang or page.lang,
            words=article.words,
        )
    else:
        doc = doc_from_text(page.url, page.title, page.text or "", page.lang)
    if not doc.text.strip():
        raise BadRequestError("the page has no readable text")
    return doc


async def _read_pdf(extractor: ExtractionWorker, page: Page, encoded: str) -> PageDoc:
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("page.pdf is not valid base64") from None
    pdf = await extractor.extract_pdf(data)
    title = page.title if page.title and pdf.title == pdf.blocks[0][:200] else pdf.title
    return PageDoc(
        page.url,
        title or page.title,
        pdf.text,
        pdf.blocks,
        pdf.lang or page.lang,
        pdf.words,
        pdf=pdf,
    )

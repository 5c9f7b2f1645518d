import { test } from 'node:test';
import assert from 'node:assert/strict';

import './i18n-shim.mjs';
import { looksLikePdf, maxPdfBytes, pdfTooLargeMessage, toBase64 } from '../../extension/lib/pdf.js';
import { parseMenuId, MENU_IDS } from '../../extension/lib/menus.js';
import { RequestBook } from '../../extension/lib/request-book.js';
import { realCodec } from './helpers.mjs';

const { limits } = await realCodec();

test('a PDF is recognised by its path, whatever the query or case', () => {
  assert.ok(looksLikePdf('https://example.com/papers/Report.PDF?download=1#page=3'));
  assert.ok(!looksLikePdf('https://example.com/pdf-tools.html'));
  assert.ok(!looksLikePdf('not a url'));
});

test('the largest PDF sent is the one whose base64 still fits the 8 MiB frame', () => {
  const frame = 8 * 1024 * 1024;
  // The rest of a page frame (question, options, JSON) fits an ordinary frame.
  const max = maxPdfBytes(frame, { overheadBytes: limits.frame_bytes, base64Chars: limits.pdf });
  assert.ok(max > 6 * 1000 * 1000 && max < 6.3 * 1024 * 1024);
  assert.ok(Math.ceil(max / 3) * 4 < frame - 60 * 1024);
  assert.match(pdfTooLargeMessage(9 * 1024 * 1024, max), /9\.0 MB.*about 6\.\d MB/);
});

test('base64 of PDF bytes matches the standard encoding, also past one chunk', () => {
  const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 256);
  assert.equal(toBase64(bytes), Buffer.from(bytes).toString('base64'));
});

test('translate menu ids name their language; summary-into ids too', () => {
  assert.deepEqual(parseMenuId(`${MENU_IDS.translate}:zh-CN`), { kind: 'translate', language: 'zh-CN' });
  assert.deepEqual(parseMenuId(`${MENU_IDS.summaryInto}:ar`), { kind: 'summary-into', language: 'ar' });
  assert.equal(parseMenuId(MENU_IDS.translate), null);
});

test('citations keep the PDF page and the source tab they name', () => {
  const book = new RequestBook({ onChange: () => {}, onDelta: () => {} });
  book.create({ id: 'q1', kind: 'ask', tabId: 5, label: 'Compare', params: { tabIds: [5, 6] } });
  book.apply({ type: 'citation', id: 'q1', n: 2, quote: 'Second.', source: 1, page: 4 });
  book.apply({ type: 'citation', id: 'q1', n: 1, quote: 'First.', source: 0 });
  assert.deepEqual(book.get('q1').citations, [
    { n: 1, quote: 'First.', source: 0 },
    { n: 2, quote: 'Second.', page: 4, source: 1 },
  ]);
});

test('a PDF never outgrows the schema\'s page.pdf, however large a frame the service takes', () => {
  const max = maxPdfBytes(64 * 1024 * 1024, { overheadBytes: limits.frame_bytes, base64Chars: limits.pdf });
  assert.ok(Math.ceil(max / 3) * 4 <= limits.pdf);
  assert.ok(max > limits.pdf * 0.74);
});

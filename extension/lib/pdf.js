// PDFs: a tab that shows a PDF (the browser's viewer, or a link that opened one) is sent as
// the file's bytes, base64 in `page.pdf`; the service reads it page by page.

import { t } from './i18n.js';

export const PDF_TYPE = 'application/pdf';

export function looksLikePdf(url) {
  try {
    return new URL(url).pathname.toLowerCase().endsWith('.pdf');
  } catch {
    return false;
  }
}

/**
 * The largest PDF (in bytes) whose base64 fits a frame of `frameBytes` with `overheadBytes`
 * left for the rest of it (question, options, JSON), and fits `page.pdf`'s `base64Chars`.
 */
export function maxPdfBytes(frameBytes, { overheadBytes, base64Chars }) {
  const room = Math.min(frameBytes - overheadBytes, base64Chars);
  return Math.max(0, Math.floor((room * 3) / 4));
}

export function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

const megabytes = (n) => (n / (1024 * 1024)).toFixed(1);

export function pdfTooLargeMessage(bytes, maxBytes) {
  return t('pdfTooLarge', megabytes(bytes), megabytes(maxBytes));
}

/** The PDF at `url`, fetched by the extension (which may read any site it has access to). */
export async function fetchPdf(url, maxBytes) {
  const response = await fetch(url, { credentials: 'include' });
  if (!response.ok) throw new Error(t('pdfFetchFailed', response.status));
  const declared = Number(response.headers.get('content-length') || 0);
  if (declared > maxBytes) return { tooLarge: declared };
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > maxBytes) return { tooLarge: bytes.length };
  return { pdf: toBase64(bytes) };
}

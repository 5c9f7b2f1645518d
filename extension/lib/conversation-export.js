// A conversation as a file: the export document (JSON, one shape shared with `tiangong history
// export`, docs/extension.md "Export") and its Markdown, plus a file name made from the page
// title. Pure functions: the panel builds the document from the views it is pushed, the CLI
// (backend/tiangong/store/export.py) from the service's history; both render the same
// Markdown, checked against one fixture (tests/fixtures/export/).

export const EXPORT_FORMAT = 'tiangong-conversation';
export const EXPORT_VERSION = 1;
const ENGLISH = { sources: 'Sources', page: (n) => `p. ${n}`, unfinished: { cancelled: 'Stopped.', error: 'Incomplete.' } };
const QUESTION_CHARS = 200;
const FILE_NAME_CHARS = 80;

/** The export document of a thread (`RequestBook.view`): one exchange per answer with text. */
export function conversationDocument(thread) {
  const answers = thread.requests.filter((view) => view.text);
  const latestPage = [...answers].reverse().find((view) => view.page)?.page ?? null;
  const url = latestPage?.url || thread.url || '';
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    title: latestPage?.title || thread.title || url,
    url,
    conversation_id: thread.conversationId ?? null,
    exchanges: answers.map((view) => exchangeOf(view, view.page?.url || url)),
  };
}

function exchangeOf(view, url) {
  return {
    kind: view.kind,
    question: view.label,
    answer: view.text,
    url,
    finish_reason: view.finishReason ?? null,
    citations: view.citations.map((citation) => citationOf(citation, url)),
  };
}

/** A citation with the URL it can be found at: the page (a PDF's at its page); none for a
 *  passage of another tab, whose address the answer does not keep. */
export function citationOf({ n, quote, page, source }, url) {
  const citation = { n, quote };
  if (page !== undefined && page !== null) citation.page = page;
  if (source !== undefined && source !== null) citation.source = source;
  else if (url) citation.url = citation.page ? `${url.split('#')[0]}#page=${citation.page}` : url;
  return citation;
}

const oneLine = (text) => String(text ?? '').replace(/\s+/g, ' ').trim();

function clip(text, chars) {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** The document as Markdown: title and address, then each question, its answer and its
 *  numbered citations (quote, page URL). `labels` localizes the few words it adds. */
export function conversationMarkdown(doc, labels = ENGLISH) {
  const lines = [`# ${oneLine(doc.title) || oneLine(doc.url) || 'Tiangong'}`, ''];
  if (doc.url) lines.push(`<${doc.url}>`, '');
  for (const exchange of doc.exchanges) {
    lines.push(`## ${clip(oneLine(exchange.question), QUESTION_CHARS) || '…'}`, '', exchange.answer.trim(), '');
    // An answer that did not finish says so (the JSON keeps its finish_reason).
    const unfinished = labels.unfinished;
    if (Object.hasOwn(unfinished, exchange.finish_reason ?? '')) lines.push(`_${unfinished[exchange.finish_reason]}_`, '');
    if (!exchange.citations.length) continue;
    lines.push(...sourceLines(exchange.citations, labels), '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** "Sources:" and one line per citation: `- [n] “quote” (p. 7) — <url>`. */
function sourceLines(citations, labels) {
  return [`${labels.sources}:`, '', ...citations.map((citation) => {
    const where = citation.page ? ` (${labels.page(citation.page)})` : '';
    const link = citation.url ? ` — <${citation.url}>` : '';
    return `- [${citation.n}] “${oneLine(citation.quote)}”${where}${link}`;
  })];
}

/** An answer with its citations under it, as Copy with sources puts it on the clipboard. */
export function answerWithSources(view, pageUrl, labels = ENGLISH) {
  const url = view.page?.url || pageUrl || '';
  const text = view.text.trim();
  if (!view.citations.length) return text;
  return [text, '', ...sourceLines(view.citations.map((c) => citationOf(c, url)), labels)].join('\n');
}

/** A file name from a page title: no path separators, reserved or control characters, no
 *  leading dots, at most 80 characters; `fallback` when nothing is left. */
export function exportFileName(title, extension, fallback = 'tiangong-conversation') {
  const cleaned = String(title ?? '')
    .replace(/[\u0000-\u001f\u007f<>:"/\\|?*\u202a-\u202e\u2066-\u2069]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[.\s]+|[.\s]+$/g, '');
  const name = [...cleaned].slice(0, FILE_NAME_CHARS).join('').trim() || fallback;
  return `${name}.${extension}`;
}

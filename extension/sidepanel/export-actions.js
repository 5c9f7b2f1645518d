// Export Markdown / Export JSON: the thread the panel shows, as a file the browser downloads,
// named after the page title (lib/conversation-export.js makes the document, its Markdown and
// a safe file name). Nothing is sent anywhere: the file is made here, from a blob.

import { conversationDocument, conversationMarkdown, exportFileName } from '../lib/conversation-export.js';
import { exportLabels } from './thread-view.js';

export const EXPORT_TYPES = Object.freeze({
  markdown: { extension: 'md', type: 'text/markdown;charset=utf-8' },
  json: { extension: 'json', type: 'application/json;charset=utf-8' },
});

/** The file for `thread` (ThreadView.current()) in `format`: { name, text, type }. */
export function exportFile(thread, format) {
  const doc = conversationDocument(thread);
  const { extension, type } = EXPORT_TYPES[format];
  const text = format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : conversationMarkdown(doc, exportLabels());
  return { name: exportFileName(doc.title, extension), text, type };
}

/** Hands a file to the browser's downloads through a link with `download`. */
export function download({ name, text, type }) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its own copy once it started; the blob is only kept a little while.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

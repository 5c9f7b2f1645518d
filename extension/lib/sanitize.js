// Model output -> DOM, through two layers: lib/markdown.js escapes everything and emits only
// its own tags, then DOMPurify 3.5.0 (vendor/dompurify) keeps only those tags and attributes.
// Links open in a new tab without access to this page (noopener, no referrer).

import DOMPurify from '../vendor/dompurify/purify.es.mjs';
import { renderMarkdown, renderPlainText } from './markdown.js';

const ALLOWED_TAGS = [
  'p', 'br', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'pre', 'code',
  'blockquote', 'hr', 'strong', 'em', 'del', 'a',
];
const ALLOWED_ATTR = ['href', 'class', 'start'];

let hooked = false;

function hookLinks() {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A') {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  });
}

/** A DocumentFragment of sanitised HTML (any HTML string: the last line of defence). */
export function sanitizeToFragment(html) {
  hookLinks();
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
    RETURN_DOM_FRAGMENT: true,
  });
}

/** Renders an answer (markdown or plain text) into `element`, replacing what was there. */
export function renderAnswer(element, text, { format = 'markdown' } = {}) {
  const html = format === 'plain-text' ? renderPlainText(text) : renderMarkdown(text);
  element.replaceChildren(sanitizeToFragment(html));
}

// Markdown -> HTML for model answers, which are untrusted: every character of the input is
// escaped first, and only this file's own tags come out (p, h1-h6, ul, ol, li, pre, code,
// blockquote, hr, strong, em, del, a, br). Links keep only http(s) and mailto targets.
// The panel still passes the result through DOMPurify (lib/sanitize.js): two independent
// layers, so a bug in one is not an injection.
// Partial input (an answer still streaming) renders sensibly: an open code fence runs to the end.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function unescapeHtml(text) {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (m) => ({ '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" })[m]);
}

const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/** The URL when it is an absolute http(s)/mailto URL, else null (javascript:, data:, relative…). */
export function safeUrl(raw) {
  // Browsers ignore tabs/newlines and leading control characters in URLs: so does this check.
  const cleaned = raw.replace(/[\u0000-\u0020\u007f]+/g, '');
  try {
    const url = new URL(cleaned);
    return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

// Inline spans on already escaped text. Code spans and links are cut out first and come back
// through placeholders that cannot occur in escaped text, so nothing formats inside them and
// no emphasis marker can reach into an attribute.
function emphasis(text) {
  return text
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>')
    .replace(/__(?=\S)([\s\S]*?\S)__/g, '<strong>$1</strong>')
    .replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![*\w])/g, '$1<em>$2</em>')
    .replace(/(^|[^_\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![_\w])/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
}

function inline(escaped) {
  const kept = [];
  const keep = (html) => {
    kept.push(html);
    return `\u0000${kept.length - 1}\u0000`;
  };
  let text = escaped.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, _ticks, code) => keep(`<code>${code.trim() || code}</code>`));
  text = text.replace(/\[([^\]\n]+)\]\(([^()\s]+(?:\([^()\s]*\))?)(?:\s+&quot;[^\n]*?&quot;)?\)/g, (whole, label, target) => {
    const url = safeUrl(unescapeHtml(target));
    return url ? keep(`<a href="${escapeHtml(url)}">${emphasis(label)}</a>`) : label;
  });
  text = text.replace(/(^|[\s(])(https?:\/\/[^\s<>()\u0000]+[^\s<>().,;:!?'&\u0000])/g, (whole, lead, target) => {
    const url = safeUrl(unescapeHtml(target));
    return url ? lead + keep(`<a href="${escapeHtml(url)}">${target}</a>`) : whole;
  });
  return emphasis(text).replace(/\u0000(\d+)\u0000/g, (_, i) => kept[Number(i)]);
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)/;

function renderList(lines, start) {
  // Consecutive list items; deeper indentation opens a nested list inside the last item.
  const first = LIST_ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const items = [];
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (m && m[1].length === indent && /\d/.test(m[2]) === ordered) {
      items.push({ text: [m[3]], children: '' });
      i += 1;
    } else if (m && m[1].length > indent && items.length) {
      const nested = renderList(lines, i);
      items.at(-1).children += nested.html;
      i = nested.next;
    } else if (!m && lines[i].trim() && /^\s+/.test(lines[i]) && items.length) {
      items.at(-1).text.push(lines[i].trim()); // a wrapped continuation line
      i += 1;
    } else {
      break;
    }
  }
  const tag = ordered ? 'ol' : 'ul';
  const startNumber = ordered ? Number.parseInt(first[2], 10) : 1;
  const open = ordered && startNumber !== 1 ? `<ol start="${startNumber}">` : `<${tag}>`;
  const body = items.map((item) => `<li>${inline(escapeHtml(item.text.join(' ')))}${item.children}</li>`).join('');
  return { html: `${open}${body}</${tag}>`, next: i };
}

/** The HTML for a Markdown text (a subset that model answers use). */
export function renderMarkdown(markdown) {
  const lines = String(markdown).replace(/\r\n?/g, '\n').split('\n');
  const out = [];
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map((l) => inline(escapeHtml(l))).join('<br>')}</p>`);
    paragraph = [];
  };
  for (let i = 0; i < lines.length; ) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const close = new RegExp(`^\\s{0,3}${fence[1][0]}{${fence[1].length},}\\s*$`);
      const body = [];
      i += 1;
      while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
      i += 1;
      const lang = fence[2] ? ` class="language-${escapeHtml(fence[2])}"` : '';
      out.push(`<pre><code${lang}>${escapeHtml(body.join('\n'))}</code></pre>`);
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1].length;
      out.push(`<h${level}>${inline(escapeHtml(heading[2]))}</h${level}>`);
      i += 1;
    } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      out.push('<hr>');
      i += 1;
    } else if (LIST_ITEM.test(line)) {
      flush();
      const list = renderList(lines, i);
      out.push(list.html);
      i = list.next;
    } else if (/^\s{0,3}>/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s{0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s{0,3}>\s?/, ''));
      out.push(`<blockquote>${renderMarkdown(quoted.join('\n'))}</blockquote>`);
    } else if (!line.trim()) {
      flush();
      i += 1;
    } else {
      paragraph.push(line.trim());
      i += 1;
    }
  }
  flush();
  return out.join('\n');
}

/** Plain text for plain-text answers: escaped, line breaks kept. */
export function renderPlainText(text) {
  return String(text)
    .split(/\n{2,}/)
    .filter((block) => block.trim())
    .map((block) => `<p>${escapeHtml(block).replace(/\n/g, '<br>')}</p>`)
    .join('\n');
}

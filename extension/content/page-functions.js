// Functions the service worker runs inside pages with chrome.scripting.executeScript({func}).
// Each one is serialised on its own: it may use only its arguments and the page's globals,
// never a helper from this module. They run in the extension's isolated world, which keeps
// its globals between calls in the same frame (that is where a selection target waits for
// Replace). None of them opens a socket: the page's origin must never reach the service.

/**
 * The live DOM (after scripts ran), URL, title, selection and language; trimmed to fit a frame
 * of `frameBytes` with `overheadBytes` left for the rest of it, and each field to its limit.
 */
export function capturePage({ frameBytes, overheadBytes, urlChars, titleChars, selectionChars }) {
  const encoder = new TextEncoder();
  const bytes = (s) => encoder.encode(s).length;
  const clip = (s, n) => (s.length > n ? s.slice(0, n) : s);
  let selection = String(globalThis.getSelection?.() ?? '');
  const active = document.activeElement;
  if (!selection && active && typeof active.selectionStart === 'number' && active.selectionEnd > active.selectionStart) {
    selection = active.value.slice(active.selectionStart, active.selectionEnd);
  }
  selection = clip(selection.trim(), selectionChars);
  let lang = (document.documentElement.lang || '').trim().replace(/_/g, '-');
  if (lang.length > 35 || !/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang)) lang = '';
  const page = { url: clip(location.href, urlChars), title: clip(document.title || '', titleChars) };
  if (selection) page.selection = selection;
  if (lang) page.lang = lang;
  // Room for the rest of the frame (question, options, JSON escaping of quotes and newlines).
  const budget = Math.max(1024, Math.floor(frameBytes * 0.9) - bytes(selection) * 2 - overheadBytes);
  const original = document.documentElement.outerHTML;
  let html = `<!DOCTYPE html>${original}`;
  let trimmed = false;
  if (bytes(html) > budget) {
    // Scripts, styles, SVG and media carry no article text: drop them from a copy.
    const clone = document.documentElement.cloneNode(true);
    const bulky = 'script,style,svg,noscript,template,iframe,object,embed,canvas,video,audio,link,meta,source,picture';
    for (const el of clone.querySelectorAll(bulky)) el.remove();
    for (const el of clone.querySelectorAll('*')) {
      for (const { name } of [...el.attributes]) {
        if (name === 'style' || name === 'srcset' || name.startsWith('data-') || name.startsWith('on')) el.removeAttribute(name);
      }
    }
    const walker = document.createTreeWalker(clone, NodeFilter.SHOW_COMMENT);
    const comments = [];
    while (walker.nextNode()) comments.push(walker.currentNode);
    for (const c of comments) c.remove();
    html = `<!DOCTYPE html>${clone.outerHTML}`;
    trimmed = true;
  }
  if (bytes(html) <= budget) {
    page.html = html;
  } else {
    // Still too large: send the visible text, cut to the budget (3 bytes per unit at worst).
    let text = document.body?.innerText ?? document.documentElement.textContent ?? '';
    while (bytes(text) > budget) text = text.slice(0, Math.floor(Math.min(text.length, budget) * 0.75));
    page.text = text;
  }
  return { page, trimmed, originalBytes: bytes(original), contentType: document.contentType };
}

/**
 * A PDF tab's own file, fetched from inside the tab (so a file only this browser session may
 * read, behind a login or a cookie, still comes): { pdf: base64 } or { tooLarge: bytes };
 * null when the tab shows no PDF.
 */
export async function readOwnPdf(maxBytes) {
  if (document.contentType !== 'application/pdf' && !/\.pdf$/i.test(location.pathname)) return null;
  const response = await fetch(location.href, { credentials: 'include' });
  if (!response.ok) return null;
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > maxBytes) return { tooLarge: bytes.length };
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return { pdf: btoa(binary), title: document.title };
}

/** Remembers where the selection is, so Replace can write a rewrite back into it. */
export function rememberSelection(key) {
  const store = (globalThis.__tiangongTargets ??= new Map());
  const active = document.activeElement;
  const fieldTypes = ['text', 'search', 'url', 'email', 'tel', ''];
  const isField = active && (active.tagName === 'TEXTAREA' || (active.tagName === 'INPUT' && fieldTypes.includes(active.type)));
  if (isField && active.selectionEnd > active.selectionStart) {
    const start = active.selectionStart;
    const end = active.selectionEnd;
    const text = active.value.slice(start, end);
    store.set(key, { kind: 'field', el: active, start, end, text });
    return { editable: !active.readOnly && !active.disabled, text, context: active.value.slice(0, 20000) };
  }
  const selection = globalThis.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return { editable: false, text: '', context: '' };
  const range = selection.getRangeAt(0).cloneRange();
  const text = selection.toString();
  const node = range.commonAncestorContainer;
  const element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
  const host = element?.closest('[contenteditable]:not([contenteditable="false"])');
  const editable = Boolean(host && host.isContentEditable);
  store.set(key, { kind: editable ? 'editable' : 'page', range, text, host });
  const block = element?.closest('p,li,td,blockquote,article,section,div') ?? element;
  return { editable, text, context: (host ?? block)?.innerText?.slice(0, 20000) ?? '' };
}

/** Writes `replacement` where the remembered selection was; says why when it cannot. */
export function replaceSelection(key, replacement) {
  const target = globalThis.__tiangongTargets?.get(key);
  if (!target) return { ok: false, reason: 'The page was reloaded since the text was selected: copy the rewrite instead.' };
  if (target.kind === 'page') return { ok: false, reason: 'The selected text is not editable: copy the rewrite instead.' };
  if (target.kind === 'field') {
    const el = target.el;
    if (!el.isConnected) return { ok: false, reason: 'The text field is gone: copy the rewrite instead.' };
    let start = target.start;
    if (el.value.slice(start, target.end) !== target.text) {
      start = el.value.indexOf(target.text);
      if (start < 0) return { ok: false, reason: 'The original text was edited since: copy the rewrite instead.' };
    }
    const end = start + target.text.length;
    el.focus();
    el.setSelectionRange(start, end);
    // insertText keeps the field's undo history and the page's input handlers working.
    const inserted = document.execCommand('insertText', false, replacement) && el.value.slice(start, start + replacement.length) === replacement;
    if (!inserted) {
      el.setRangeText(replacement, start, end, 'end');
      el.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertReplacementText', data: replacement }));
    }
    Object.assign(target, { start, end: start + replacement.length, text: replacement });
    return { ok: true };
  }
  const { range, host } = target;
  if (!host?.isConnected || range.toString() !== target.text) {
    return { ok: false, reason: 'The original text was edited since: copy the rewrite instead.' };
  }
  host.focus();
  const selection = globalThis.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  if (!document.execCommand('insertText', false, replacement)) {
    range.deleteContents();
    range.insertNode(document.createTextNode(replacement));
    host.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertReplacementText', data: replacement }));
  }
  const after = globalThis.getSelection();
  if (after.rangeCount) {
    // Select what was written, so a second Replace (after Retry) swaps it again.
    const written = after.getRangeAt(0).cloneRange();
    written.setStart(written.endContainer, Math.max(0, written.endOffset - replacement.length));
    target.range = written;
  }
  target.text = replacement;
  return { ok: true };
}

/** Scrolls to the first place the quote appears and highlights it; the previous one goes. */
export function highlightQuote(quote, highlightName) {
  const previous = globalThis.__tiangongMarks ?? [];
  for (const mark of previous) mark.replaceWith(...mark.childNodes);
  globalThis.__tiangongMarks = [];
  globalThis.CSS?.highlights?.delete(highlightName);
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA']);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (skip.has(n.parentElement?.tagName) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  // The page's text with whitespace runs folded to one space, and where each character came from.
  let flat = '';
  const where = [];
  let lastSpace = true;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const value = node.nodeValue;
    for (let i = 0; i < value.length; i += 1) {
      const space = /\s/.test(value[i]);
      if (space && lastSpace) continue;
      flat += space ? ' ' : value[i];
      where.push([node, i]);
      lastSpace = space;
    }
  }
  const wanted = quote.replace(/\s+/g, ' ').trim();
  const tries = [wanted, wanted.slice(0, 120), wanted.split(/(?<=[.!?。！？])\s/)[0]];
  let at = -1;
  let length = 0;
  for (const attempt of tries) {
    if (attempt.length < 8 && attempt !== wanted) continue;
    at = flat.indexOf(attempt);
    if (at < 0) at = flat.toLowerCase().indexOf(attempt.toLowerCase());
    if (at >= 0) {
      length = attempt.length;
      break;
    }
  }
  if (at < 0) return { found: false };
  const [startNode, startOffset] = where[at];
  const [endNode, endOffset] = where[at + length - 1];
  const range = document.createRange();
  range.setStart(startNode, startOffset);
  range.setEnd(endNode, endOffset + 1);
  if (globalThis.CSS?.highlights && globalThis.Highlight) {
    CSS.highlights.set(highlightName, new Highlight(range));
  } else {
    const mark = document.createElement('mark');
    mark.append(range.extractContents());
    range.insertNode(mark);
    globalThis.__tiangongMarks.push(mark);
  }
  const reduce = globalThis.matchMedia?.('(prefers-reduced-motion: reduce)').matches;
  startNode.parentElement?.scrollIntoView({ block: 'center', behavior: reduce ? 'auto' : 'smooth' });
  return { found: true, text: range.toString() };
}

/**
 * A video's captions, fetched from inside the page (same origin and cookies as the player):
 * a YouTube watch page's caption track (from the `ytInitialPlayerResponse` its HTML embeds; when
 * YouTube gives no file, the transcript panel the page shows, if open), or a
 * `<track kind="captions|subtitles">` of a `<video>`; the one in the first `preferred`
 * language found (exact tag, then the same base language), else the page's default track, a
 * hand-made one before automatic captions. Returns { kind, format, language, body } (the raw
 * caption file, parsed by the worker: lib/transcript.js), { kind, missing: true } for a
 * YouTube video without captions, { kind, failed } when the file could not be read, or null
 * when the page has no captioned video.
 */
export async function findCaptions(preferred, maxChars) {
  const wanted = [...preferred, ...(navigator.languages ?? [])].filter(Boolean).map((l) => l.toLowerCase());
  const rank = (lang) => {
    const tag = (lang || '').toLowerCase().replace(/_/g, '-');
    for (let i = 0; i < wanted.length; i += 1) {
      if (tag === wanted[i]) return 2 * i;
      if (tag.split('-')[0] === wanted[i].split('-')[0]) return 2 * i + 1;
    }
    return 2 * wanted.length;
  };
  // Language first, then hand-made before automatic, the page's default, the page's order.
  const keyOf = (track, index) => [rank(track.lang), track.auto ? 1 : 0, track.isDefault ? 0 : 1, index];
  const before = (a, b) => {
    const i = a.key.findIndex((value, at) => value !== b.key[at]);
    return i < 0 ? 0 : a.key[i] - b.key[i];
  };
  const best = (tracks) => tracks.map((track, index) => ({ ...track, key: keyOf(track, index) })).sort(before)[0];
  const read = async (kind, format, track) => {
    try {
      const response = await fetch(track.url, { credentials: 'include' });
      const body = response.ok ? (await response.text()).slice(0, maxChars) : '';
      if (!body.trim()) return { kind, failed: response.ok ? 'empty' : `HTTP ${response.status}` };
      return { kind, format, language: track.lang || '', body };
    } catch (error) {
      return { kind, failed: String(error?.message ?? error) };
    }
  };

  // YouTube: the player's data is a JSON object assigned in an inline script of the page.
  const playerResponse = () => {
    for (const script of document.querySelectorAll('script:not([src])')) {
      const text = script.textContent;
      const match = /ytInitialPlayerResponse\s*=\s*\{/.exec(text);
      if (!match) continue;
      const open = match.index + match[0].length - 1;
      let depth = 0;
      let inString = false;
      let escaped = false;
      for (let i = open; i < text.length; i += 1) {
        const c = text[i];
        if (inString) {
          if (escaped) escaped = false;
          else if (c === '\\') escaped = true;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === '{') depth += 1;
        else if (c === '}' && (depth -= 1) === 0) {
          try {
            return JSON.parse(text.slice(open, i + 1));
          } catch {
            break;
          }
        }
      }
    }
    return null;
  };
  // The transcript panel YouTube shows under "Show transcript": one renderer per segment.
  const shownTranscript = () => {
    const segments = [...document.querySelectorAll('ytd-transcript-segment-renderer')]
      .map((segment) => ({
        at: segment.querySelector('.segment-timestamp')?.textContent.trim() ?? '',
        text: segment.querySelector('.segment-text')?.textContent.trim() ?? '',
      }))
      .filter((segment) => segment.at && segment.text);
    return segments.length ? { kind: 'youtube', format: 'segments', language: '', body: JSON.stringify(segments).slice(0, maxChars) } : null;
  };
  const player = playerResponse();
  if (player?.videoDetails) {
    const tracks = (player.captions?.playerCaptionsTracklistRenderer?.captionTracks ?? [])
      .filter((track) => typeof track.baseUrl === 'string')
      .map((track) => ({ url: new URL(track.baseUrl, location.href).href, lang: track.languageCode, auto: track.kind === 'asr' }));
    const fetched = tracks.length ? await read('youtube', 'youtube', best(tracks)) : { kind: 'youtube', missing: true };
    return fetched.body ? fetched : (shownTranscript() ?? fetched);
  }

  const tracks = [...document.querySelectorAll('video track')]
    .filter((el) => (el.kind === 'captions' || el.kind === 'subtitles') && el.src)
    .map((el) => ({ url: el.src, lang: el.srclang, isDefault: el.default }));
  if (!tracks.length) return null;
  return read('track', 'vtt', best(tracks));
}

/** Seeks the page's video (YouTube's player, else the captioned one, else the first) to `time`. */
export function seekVideo(time) {
  const videos = [...document.querySelectorAll('video')];
  const video = document.querySelector('video.html5-main-video') ?? videos.find((v) => v.querySelector('track')) ?? videos[0];
  if (!video) return { found: false };
  video.currentTime = time;
  const reduce = globalThis.matchMedia?.('(prefers-reduced-motion: reduce)').matches;
  video.scrollIntoView({ block: 'center', behavior: reduce ? 'auto' : 'smooth' });
  return { found: true, time: video.currentTime };
}

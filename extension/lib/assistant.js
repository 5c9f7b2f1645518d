// The service worker's part of each entry point: capture the page, build the frame, send it on
// the one connection, and route the answers into the RequestBook. The panel only asks for
// things (by port message) and shows the book; the page functions only read and write pages.

import { capturePage, highlightQuote, rememberSelection, replaceSelection } from '../content/page-functions.js';
import { api, pageAccessError } from './browser-api.js';
import { summaryFrameOptions } from './settings.js';

export const HIGHLIGHT_NAME = 'tiangong-citation';
const HIGHLIGHT_CSS = `::highlight(${HIGHLIGHT_NAME}) { background-color: #ffd54a; color: #111; }
mark { background-color: #ffd54a; color: #111; }`;
export const EXPLAIN_QUESTION = 'Explain the selected passage in plain words.';
const PAGE_KINDS = new Set(['summarize', 'summarize-selection', 'ask', 'explain']);

export function newRequestId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

async function runInPage(tabId, func, args, frameId = 0) {
  const [result] = await api.scripting.executeScript({ target: { tabId, frameIds: [frameId] }, func, args });
  return result?.result;
}

export class Assistant {
  constructor({ connection, book }) {
    this.connection = connection;
    this.book = book;
    this.pendingHistory = new Map();
    connection.onFrame((frame, info) => this.receive(frame, info));
  }

  receive(frame, info = {}) {
    if (!frame) {
      if (info.lost) {
        this.book.connectionLost();
        for (const waiter of this.pendingHistory.values()) waiter.reject(new Error('The connection was lost.'));
        this.pendingHistory.clear();
      } else if (info.invalid && info.requestId) {
        this.book.fail(info.requestId, { code: 'bad_frame', message: `The service sent a frame this extension does not understand (${info.invalid}).`, retryable: false });
      }
      return;
    }
    const waiter = this.pendingHistory.get(frame.id);
    if (waiter) {
      this.pendingHistory.delete(frame.id);
      if (frame.type === 'error') waiter.reject(new Error(frame.message));
      else waiter.resolve(frame);
      return;
    }
    this.book.apply(frame);
  }

  async capture(tabId) {
    try {
      const result = await runInPage(tabId, capturePage, [this.connection.limits.page_frame_bytes]);
      if (!result) throw new Error('the page returned nothing');
      return result;
    } catch (error) {
      throw new Error(pageAccessError(error));
    }
  }

  // -- entry points ------------------------------------------------------------------------

  summarize(tabId, options, { replaces = null } = {}) {
    const params = { options: summaryFrameOptions(options) };
    const label = `Summary · ${options.type}, ${options.length}`;
    return this.start({ kind: 'summarize', tabId, label, params, format: options.format, replaces });
  }

  ask(tabId, question, { replaces = null } = {}) {
    return this.start({ kind: 'ask', tabId, label: question, params: { question }, replaces });
  }

  /** From the context menu: the selected text, and where it sits for Replace. */
  async fromMenu(kind, tab, info, options = {}) {
    const key = newRequestId('sel');
    let found = { editable: false, text: '', context: '' };
    try {
      found = (await runInPage(tab.id, rememberSelection, [key], info.frameId ?? 0)) ?? found;
    } catch {
      // a page we may not script (PDF viewer, browser page): the menu's own text still works
    }
    const text = found.text || info.selectionText || '';
    if (kind === 'rewrite') {
      const target = { tabId: tab.id, frameId: info.frameId ?? 0, key, editable: found.editable };
      const params = { text, context: found.context, options };
      return this.start({ kind: 'rewrite', tabId: tab.id, label: text, params, format: 'plain-text', target });
    }
    if (kind === 'explain') {
      return this.start({ kind: 'explain', tabId: tab.id, label: `Explain: “${text}”`, params: { question: EXPLAIN_QUESTION, selection: text } });
    }
    const params = { options: summaryFrameOptions(options), selection: text };
    return this.start({ kind: 'summarize-selection', tabId: tab.id, label: `Summarize selection: “${text}”`, params, format: options.format });
  }

  /** Runs a request again (Regenerate, Retry), optionally with changed options. */
  retry(id, overrides = {}) {
    const old = this.book.get(id);
    if (!old?.params) return null;
    const params = { ...old.params, options: { ...old.params.options, ...overrides } };
    if (old.state === 'streaming') this.cancel(id);
    return this.start({ kind: old.kind, tabId: old.tabId, label: old.label, params, format: old.format, target: old.target, replaces: id, again: true });
  }

  /** Stop an answer; `shownText` is what the panel showed when Stop was pressed. */
  cancel(id, shownText) {
    const record = this.book.get(id);
    const wasSent = record?.sent;
    if (this.book.stop(id, shownText) && wasSent) {
      this.connection.send({ type: 'cancel', id }).catch(() => {});
    }
  }

  async start({ kind, tabId, label, params, format = 'markdown', target = null, replaces = null, again = false }) {
    const id = newRequestId(kind === 'rewrite' ? 'w' : kind.startsWith('summarize') ? 's' : 'q');
    // Regenerate asks again in the conversation the answer was asked in (none for a first one).
    const conversationId = again ? params.conversationId ?? null : this.book.thread(tabId).conversationId;
    params = { ...params, conversationId };
    const record = this.book.create({ id, kind, tabId, label, params, format, target, replaces });
    try {
      const frame = await this.buildFrame(record, conversationId);
      if (record.state !== 'streaming') return id; // stopped while the page was read
      await this.connection.send(frame);
      this.book.markSent(id);
      if (record.state !== 'streaming') this.connection.send({ type: 'cancel', id }).catch(() => {});
    } catch (error) {
      this.book.fail(id, { code: error.code ?? 'failed', message: error.message, retryable: true });
    }
    return id;
  }

  async buildFrame(record, conversationId) {
    const { id, kind, tabId, params } = record;
    if (kind === 'rewrite') {
      const frame = { type: 'rewrite', id, text: params.text, options: cleanRewriteOptions(params.options) };
      if (params.context && params.context !== params.text) frame.context = params.context.slice(0, 200000);
      return frame;
    }
    if (!PAGE_KINDS.has(kind)) throw new Error(`unknown request kind ${kind}`);
    const thread = this.book.thread(tabId);
    const followUp = kind === 'ask' && conversationId;
    let page = null;
    if (!followUp || !(await this.samePage(tabId, thread.url))) {
      const captured = await this.capture(tabId);
      page = captured.page;
      if (captured.trimmed) this.book.note(id, 'The page was large: scripts, styles and images were left out before sending.');
      if (params.selection) page.selection = params.selection.slice(0, 200000);
      else if (kind === 'summarize') delete page.selection; // "Summarize page" means the whole page
    }
    if (kind === 'summarize' || kind === 'summarize-selection') return { type: 'summarize', id, page, options: params.options };
    const frame = { type: 'ask', id, question: params.question };
    if (page) frame.page = page;
    if (followUp) frame.conversation_id = conversationId;
    return frame;
  }

  async samePage(tabId, url) {
    if (!url) return false;
    try {
      const tab = await api.tabs.get(tabId);
      return tab.url === url;
    } catch {
      return false;
    }
  }

  // -- panel services ----------------------------------------------------------------------

  async history(conversationId = null) {
    const id = newRequestId('h');
    const frame = { type: 'history', id, limit: 50 };
    if (conversationId) frame.conversation_id = conversationId;
    const reply = new Promise((resolve, reject) => this.pendingHistory.set(id, { resolve, reject }));
    try {
      await this.connection.send(frame);
    } catch (error) {
      this.pendingHistory.delete(id);
      throw error;
    }
    return reply;
  }

  async openConversation(tabId, conversationId) {
    const reply = await this.history(conversationId);
    this.book.restoreConversation(tabId, reply.conversation, reply.turns ?? []);
  }

  async cite(tabId, quote) {
    try {
      await api.scripting.insertCSS({ target: { tabId }, css: HIGHLIGHT_CSS }).catch(() => {});
      return (await runInPage(tabId, highlightQuote, [quote, HIGHLIGHT_NAME])) ?? { found: false };
    } catch (error) {
      return { found: false, reason: pageAccessError(error) };
    }
  }

  async replace(id) {
    const record = this.book.get(id);
    if (!record?.target) return { ok: false, reason: 'Nothing to replace.' };
    const { tabId, frameId, key } = record.target;
    try {
      return (await runInPage(tabId, replaceSelection, [key, record.text.trim()], frameId)) ?? { ok: false, reason: 'The page did not answer.' };
    } catch (error) {
      return { ok: false, reason: pageAccessError(error) };
    }
  }
}

function cleanRewriteOptions(options = {}) {
  const out = {};
  for (const name of ['tone', 'length', 'format', 'instruction', 'output_language']) {
    if (options[name]) out[name] = options[name];
  }
  return out;
}

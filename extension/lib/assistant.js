// The service worker's part of each entry point: capture the page, build the frame, send it on
// the one connection, and route the answers into the RequestBook, which owns every record
// (Stop and Regenerate go through it too). The panel only asks for things (lib/panel-messages.js)
// and shows the book's views; the page functions only read and write pages.

import { fillPrompt, usesSelection } from './actions.js';
import { capturePage, findCaptions, highlightQuote, readOwnPdf, rememberSelection, replaceSelection, seekVideo } from '../content/page-functions.js';
import { api, pageAccessError } from './browser-api.js';
import { t, uiLanguage } from './i18n.js';
import { closestLanguage, languageName } from './languages.js';
import { PDF_TYPE, fetchPdf, looksLikePdf, maxPdfBytes, pdfTooLargeMessage } from './pdf.js';
import { summaryFrameOptions } from './settings.js';
import { transcriptOf } from './transcript.js';

export const HIGHLIGHT_NAME = 'tiangong-citation';
const HIGHLIGHT_CSS = `::highlight(${HIGHLIGHT_NAME}) { background-color: #ffd54a; color: #111; }
mark { background-color: #ffd54a; color: #111; }`;
export const EXPLAIN_QUESTION = 'Explain the selected passage in plain words.';
const PAGE_KINDS = new Set(['summarize', 'summarize-selection', 'ask', 'explain', 'page-action']);
// Kinds whose frame is an `ask` that may follow up the tab's conversation.
const QUESTION_KINDS = new Set(['ask', 'page-action']);

export function newRequestId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

async function runInPage(tabId, func, args, frameId = 0) {
  const [result] = await api.scripting.executeScript({ target: { tabId, frameIds: [frameId] }, func, args });
  return result?.result;
}

export class Assistant {
  /** `limits`: the schema's field sizes (lib/limits.js); frame sizes come from the connection. */
  constructor({ connection, book, limits }) {
    this.connection = connection;
    this.book = book;
    this.limits = limits;
    this.pendingHistory = new Map();
    connection.onFrame((frame, info) => this.receive(frame, info));
  }

  receive(frame, info = {}) {
    if (!frame) {
      if (info.lost) {
        this.book.connectionLost();
        for (const waiter of this.pendingHistory.values()) waiter.reject(new Error(t('connectionLostShort')));
        this.pendingHistory.clear();
      } else if (info.invalid && info.requestId) {
        this.book.fail(info.requestId, { code: 'bad_frame', message: t('badFrame', info.invalid), retryable: false });
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

  /**
   * The page of a tab as the protocol wants it; `share` of the frame when several go at once.
   * A captioned video's page is its transcript (in `language` or the UI's when it has several).
   */
  async capture(tabId, share = 1, language = '') {
    const frames = this.connection.limits;
    const room = { frameBytes: Math.floor(frames.page_frame_bytes / share), overheadBytes: frames.frame_bytes };
    const tab = await api.tabs.get(tabId).catch(() => null);
    let result = null;
    let failure = null;
    try {
      const fields = { urlChars: this.limits.url, titleChars: this.limits.title, selectionChars: this.limits.selection };
      result = await runInPage(tabId, capturePage, [{ ...room, ...fields }]);
    } catch (error) {
      failure = error;
    }
    // The document's type decides; the URL only when the tab took no script (a viewer).
    const isPdf = result ? result.contentType === PDF_TYPE : looksLikePdf(tab?.url ?? '');
    if (isPdf) {
      return { page: await this.capturePdf(tabId, tab, room), trimmed: false };
    }
    if (failure || !result) throw new Error(pageAccessError(failure ?? new Error(t('pageReturnedNothing'))));
    const video = await this.captureTranscript(tabId, result.page, room, language);
    return video?.unread ? { ...result, captionsUnread: video.unread } : (video ?? result);
  }

  /**
   * A captioned video's page: { page (with `transcript`), trimmed: false, cut }; null when the
   * page has none. A YouTube video without readable captions is an error (its page is mostly
   * comments); a <track> that cannot be read leaves the page to be read as it is: { unread }.
   */
  async captureTranscript(tabId, page, { frameBytes, overheadBytes }, language) {
    const maxBytes = Math.max(1024, Math.floor(frameBytes * 0.9) - overheadBytes);
    const preferred = [language, api.i18n?.getUILanguage?.()].filter(Boolean);
    const found = await runInPage(tabId, findCaptions, [preferred, maxBytes * 2]).catch(() => null);
    if (!found) return null;
    if (found.missing) throw new Error(t('videoNoCaptions'));
    const read = found.failed ? null : transcriptOf(found, { maxCues: this.limits.cues, cueChars: this.limits.cueText, maxBytes });
    if (!read) {
      const reason = found.failed ?? found.format;
      if (found.kind === 'youtube') throw new Error(t('videoCaptionsUnreadable', reason));
      return { unread: reason };
    }
    const { url, title, lang, selection } = page;
    const kept = { url, title, ...(lang ? { lang } : {}), ...(selection ? { selection } : {}) };
    return { page: { ...kept, transcript: read.transcript }, trimmed: false, cut: read.cut };
  }

  async capturePdf(tabId, tab, { frameBytes, overheadBytes }) {
    const maxBytes = maxPdfBytes(frameBytes, { overheadBytes, base64Chars: this.limits.pdf });
    let found = null;
    try {
      found = await runInPage(tabId, readOwnPdf, [maxBytes]);
    } catch {
      // the viewer may not take scripts: the extension fetches the file itself
    }
    if (!found && tab?.url) found = await fetchPdf(tab.url, maxBytes);
    if (!found) throw new Error(t('pdfNotRead'));
    if (found.tooLarge) throw new Error(pdfTooLargeMessage(found.tooLarge, maxBytes));
    const url = tab?.url ?? '';
    const title = tab?.title || found.title || url.split('/').pop() || 'PDF';
    return { url: url.slice(0, this.limits.url), title: title.slice(0, this.limits.title), pdf: found.pdf };
  }

  // -- entry points ------------------------------------------------------------------------

  /** `tabIds` (2–8): the tabs to summarize together instead of `tabId` alone. */
  summarize(tabId, options, { replaces = null, tabIds = null } = {}) {
    const params = { options: summaryFrameOptions(options), tabIds: this.manyTabs(tabIds) };
    const what = params.tabIds ? t('summaryOfTabs', params.tabIds.length) : t('summaryLabel');
    const label = `${what} · ${t(`summaryTypeWord_${options.type.replace(/-/g, '_')}`)}, ${t(`lengthWord_${options.length}`)}`;
    return this.start({ kind: 'summarize', tabId, label, params, format: options.format, replaces });
  }

  ask(tabId, question, { replaces = null, tabIds = null, outputLanguage = '' } = {}) {
    const params = { question, tabIds: this.manyTabs(tabIds), options: outputLanguage ? { output_language: outputLanguage } : {} };
    return this.start({ kind: 'ask', tabId, label: question, params, replaces });
  }

  /** Translates a text (a selection, an answer) into `language`; the service detects its source. */
  translate(tabId, text, language, { format = 'plain-text' } = {}) {
    const params = { text, options: { task: 'translate', output_language: language } };
    const label = t('translateLabel', languageName(language), text);
    return this.start({ kind: 'translate', tabId, label, params, format });
  }

  translateAnswer(id, language) {
    const record = this.book.get(id);
    if (!record?.text) return null;
    return this.translate(record.tabId, record.text, language, { format: record.format });
  }

  /** The tab's selected text, remembered under `key` so Replace can find where it sits. */
  async selectionIn(tab, info) {
    const key = newRequestId('sel');
    let found = { editable: false, text: '', context: '' };
    try {
      found = (await runInPage(tab.id, rememberSelection, [key], info.frameId ?? 0)) ?? found;
    } catch {
      // a page we may not script (PDF viewer, browser page): the menu's own text still
      // works, without Replace
    }
    return { key, found, text: found.text || info.selectionText || '' };
  }

  /** From the context menu: the selected text, and where it sits for Replace. */
  async fromMenu(kind, tab, info, options = {}, { requireText = false } = {}) {
    const { key, found, text } = await this.selectionIn(tab, info);
    if (requireText && !text.trim()) throw new Error(t('selectSomeText'));
    if (kind === 'translate') return this.translate(tab.id, text, options.output_language);
    if (kind === 'rewrite') {
      const target = { tabId: tab.id, frameId: info.frameId ?? 0, key, editable: found.editable };
      const params = { text, context: found.context, options };
      return this.start({ kind: 'rewrite', tabId: tab.id, label: text, params, format: 'plain-text', target });
    }
    if (kind === 'explain') {
      return this.start({ kind: 'explain', tabId: tab.id, label: t('explainLabel', text), params: { question: EXPLAIN_QUESTION, selection: text } });
    }
    const params = { options: summaryFrameOptions(options), selection: text };
    return this.start({ kind: 'summarize-selection', tabId: tab.id, label: t('summarizeSelectionLabel', text), params, format: options.format });
  }

  /**
   * A user's own action (lib/actions.js) on a tab: on the page, an `ask` with the filled
   * prompt; on the selection (from the menu, or the panel's list), a `rewrite` with task
   * `action` that can Replace the text it came from. `outputLanguage`: the answer's language.
   */
  async runAction(action, tab, info = {}, { outputLanguage = '' } = {}) {
    const language = languageName(outputLanguage || closestLanguage(uiLanguage()));
    const instruction = fillPrompt(action.prompt, { title: tab.title ?? '', url: tab.url ?? '', language });
    const options = outputLanguage ? { output_language: outputLanguage } : {};
    if (action.target === 'page') {
      const params = { question: instruction, actionName: action.name, keepSelection: usesSelection(action.prompt), options };
      return this.start({ kind: 'page-action', tabId: tab.id, label: action.name, params });
    }
    const { key, found, text } = await this.selectionIn(tab, info);
    if (!text.trim()) throw new Error(t('selectSomeText'));
    const target = { tabId: tab.id, frameId: info.frameId ?? 0, key, editable: found.editable };
    const params = { text, context: found.context, actionName: action.name, options: { ...options, task: 'action', instruction } };
    const label = t('actionSelectionLabel', action.name, text);
    return this.start({ kind: 'selection-action', tabId: tab.id, label, params, target });
  }

  /** Runs a request again (Regenerate, Retry), optionally with changed options. */
  retry(id, overrides = {}) {
    const old = this.book.get(id);
    if (!old?.params) return null;
    const params = { ...old.params, options: { ...old.params.options, ...overrides } };
    if (old.state === 'streaming') this.stop(id);
    return this.start({ kind: old.kind, tabId: old.tabId, label: old.label, params, format: old.format, target: old.target, replaces: id, again: true });
  }

  /** Stops an answer in the book (`shownText`: what the panel showed) and tells the service. */
  stop(id, shownText) {
    const wasSent = this.book.get(id)?.sent;
    const stopped = this.book.stop(id, shownText);
    if (stopped && wasSent) this.connection.send({ type: 'cancel', id }).catch(() => {});
    return stopped;
  }

  /** Makes the record and returns its id at once; reading the page and sending go on after. */
  start({ kind, tabId, label, params, format = 'markdown', target = null, replaces = null, again = false }) {
    const id = newRequestId({ rewrite: 'w', translate: 't', 'selection-action': 'a', 'page-action': 'a' }[kind] ?? (kind.startsWith('summarize') ? 's' : 'q'));
    // Regenerate asks again in the conversation the answer was asked in (none for a first one);
    // a question across tabs starts a conversation of its own.
    const conversationId = params.tabIds ? null : again ? params.conversationId ?? null : this.book.thread(tabId).conversationId;
    params = { ...params, conversationId };
    const record = this.book.create({ id, kind, tabId, label, params, format, target, replaces });
    this.send(record, conversationId, replaces);
    return id;
  }

  /** Builds and sends a record's frame; whatever goes wrong ends up in the record. */
  async send(record, conversationId, replaces) {
    const { id } = record;
    try {
      const frame = await this.buildFrame(record, conversationId);
      // The service then drops the replaced answer from the conversation's history.
      if (replaces) frame.regenerates = replaces;
      if (record.state !== 'streaming') return; // stopped while the page was read
      await this.connection.send(frame);
      this.book.markSent(id);
      if (record.state !== 'streaming') this.connection.send({ type: 'cancel', id }).catch(() => {});
    } catch (error) {
      this.book.fail(id, { code: error.code ?? 'failed', message: error.message, retryable: true });
    }
  }

  async buildFrame(record, conversationId) {
    const { id, kind, tabId, params } = record;
    if (kind === 'rewrite') {
      const frame = { type: 'rewrite', id, text: params.text, options: cleanRewriteOptions(params.options) };
      if (params.context && params.context !== params.text) frame.context = params.context.slice(0, this.limits.rewriteContext);
      return frame;
    }
    if (kind === 'translate') return { type: 'rewrite', id, text: params.text.slice(0, this.limits.rewriteText), options: params.options };
    if (kind === 'selection-action') {
      this.checkInstruction(params.actionName, params.options.instruction);
      const frame = { type: 'rewrite', id, text: params.text.slice(0, this.limits.rewriteText), options: params.options };
      if (params.context && params.context !== params.text) frame.context = params.context.slice(0, this.limits.rewriteContext);
      return frame;
    }
    if (kind === 'page-action') this.checkInstruction(params.actionName, params.question);
    if (!PAGE_KINDS.has(kind)) throw new Error(`unknown request kind ${kind}`);
    if (params.tabIds) return this.buildManyFrame(record);
    const thread = this.book.thread(tabId);
    const readBefore = thread.url;
    const followUp = QUESTION_KINDS.has(kind) && conversationId;
    let page = null;
    // A video's page goes again with each follow-up: the service keeps its text, not its times.
    if (!followUp || thread.video || !(await this.samePage(tabId, thread.url))) {
      const captured = await this.capture(tabId, 1, params.options?.output_language ?? '');
      page = captured.page;
      thread.video = Boolean(page.transcript);
      const notes = [];
      // The tab shows another page than the conversation read so far: the answer says so.
      if (readBefore && page.url && readBefore.split('#')[0] !== page.url.split('#')[0]) notes.push(t('readsNewPage', page.title || page.url));
      if (captured.trimmed) notes.push(t('pageTrimmed'));
      if (captured.cut) notes.push(t('transcriptCut'));
      if (captured.captionsUnread) notes.push(t('captionsUnreadPageRead', captured.captionsUnread));
      if (notes.length) this.book.note(id, notes.join(' '));
      if (params.selection) page.selection = params.selection.slice(0, this.limits.selection);
      // "Summarize page" means the whole page; a page action sends the selection only when
      // its prompt names {selection}.
      else if (kind === 'summarize' || (kind === 'page-action' && !params.keepSelection)) delete page.selection;
    }
    if (kind === 'summarize' || kind === 'summarize-selection') return { type: 'summarize', id, page, options: params.options };
    const frame = { type: 'ask', id, question: params.question };
    if (page) frame.page = page;
    if (followUp) frame.conversation_id = conversationId;
    if (params.options?.output_language) frame.options = { output_language: params.options.output_language };
    return frame;
  }

  /** One frame with every chosen tab's page; each tab gets an equal share of the frame. */
  async buildManyFrame({ id, kind, params }) {
    const captured = await Promise.all(params.tabIds.map((tabId) => this.capture(tabId, params.tabIds.length)));
    const pages = captured.map(({ page }) => {
      delete page.selection; // across tabs, each tab is read whole
      return page;
    });
    if (kind === 'summarize') return { type: 'summarize', id, pages, options: params.options };
    const frame = { type: 'ask', id, question: params.question, pages };
    if (params.options?.output_language) frame.options = { output_language: params.options.output_language };
    return frame;
  }

  /** A filled prompt over the instruction limit fails its answer, saying by how much. */
  checkInstruction(name, instruction) {
    const length = [...instruction].length;
    if (length > this.limits.instruction) throw new Error(t('actionFilledTooLong', name, length, this.limits.instruction));
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

  /**
   * Shows a cited passage: in the tab it came from (answers across tabs switch to it), at its
   * page in a PDF, at its second in a video (the video seeks there).
   */
  async cite(tabId, quote, { requestId = null, source = null, page = null, time = null } = {}) {
    const record = requestId ? this.book.get(requestId) : null;
    const target = source !== null && record?.params?.tabIds?.[source] !== undefined ? record.params.tabIds[source] : tabId;
    if (target !== tabId) await api.tabs.update(target, { active: true }).catch(() => {});
    if (time !== null) {
      try {
        const seeked = await runInPage(target, seekVideo, [time]);
        return seeked?.found ? { found: true, tabId: target, time: seeked.time } : { found: false, reason: t('videoGone') };
      } catch (error) {
        return { found: false, reason: pageAccessError(error) };
      }
    }
    if (page) {
      try {
        const tab = await api.tabs.get(target);
        await api.tabs.update(target, { url: `${tab.url.split('#')[0]}#page=${page}` });
        return { found: true, tabId: target, page };
      } catch (error) {
        return { found: false, reason: pageAccessError(error) };
      }
    }
    const shown = await this.highlight(target, quote);
    return { ...shown, tabId: target };
  }

  async highlight(tabId, quote) {
    try {
      await api.scripting.insertCSS({ target: { tabId }, css: HIGHLIGHT_CSS }).catch(() => {});
      return (await runInPage(tabId, highlightQuote, [quote, HIGHLIGHT_NAME])) ?? { found: false };
    } catch (error) {
      return { found: false, reason: pageAccessError(error) };
    }
  }

  async replace(id) {
    const record = this.book.get(id);
    if (!record?.target) return { ok: false, reason: t('nothingToReplace') };
    const { tabId, frameId, key } = record.target;
    try {
      return (await runInPage(tabId, replaceSelection, [key, record.text.trim()], frameId)) ?? { ok: false, reason: t('pageDidNotAnswer') };
    } catch (error) {
      return { ok: false, reason: pageAccessError(error) };
    }
  }

  /** The tabs to read together (as many as `pages` takes), or null for the one tab. */
  manyTabs(tabIds) {
    const unique = [...new Set((tabIds ?? []).map(Number))].slice(0, this.limits.maxTabs);
    return unique.length >= this.limits.minTabs ? unique : null;
  }
}

function cleanRewriteOptions(options = {}) {
  const out = {};
  for (const name of ['tone', 'length', 'format', 'instruction', 'output_language']) {
    if (options[name]) out[name] = options[name];
  }
  return out;
}

// Every answer the extension asked for, and which tab's conversation it belongs to. It lives in
// the service worker and is the only owner of answer records: panels draw the views it gives
// (`view`, `answerView`) and change nothing but through it, so a panel that was closed (Opera
// destroys closed panels) or reopened re-attaches to an answer still streaming; snapshots
// survive a service-worker restart. Pure state: frames and user actions in, change
// notifications out; no browser APIs.

import { t } from './i18n.js';

export const RequestState = Object.freeze({ STREAMING: 'streaming', DONE: 'done', ERROR: 'error' });

// Kinds whose conversation the next question in the same tab continues.
const CONVERSATION_KINDS = new Set(['summarize', 'ask', 'explain', 'summarize-selection', 'page-action']);
const KEEP_PER_THREAD = 50;

/** The one place a record is made: a new request, a turn from history, one read back. */
export function newRecord({ id, kind, tabId, ...fields }) {
  return {
    id, kind, tabId,
    label: fields.label ?? '',
    params: fields.params ?? null, // what to send again on Regenerate/Retry; null: cannot be
    format: fields.format ?? 'markdown',
    target: fields.target ?? null, // where a rewrite's selection is, for Replace
    state: fields.state ?? RequestState.STREAMING,
    text: fields.text ?? '',
    citations: fields.citations ?? [],
    progress: fields.progress ?? null,
    conversationId: fields.conversationId ?? null,
    page: fields.page ?? null,
    error: fields.error ?? null,
    finishReason: fields.finishReason ?? null,
    notice: fields.notice ?? null,
    replaces: fields.replaces ?? null,
    restored: fields.restored ?? false, // from the service's history
    sent: fields.sent ?? false, // its frame went out on the socket
    createdAt: fields.createdAt ?? Date.now(),
  };
}

/**
 * An answer as panels see it: what they draw and which actions it offers. The one shape of
 * an answer outside the book (a fresh object each time: nothing shares the record).
 */
export function answerView(record) {
  const options = record.params?.options ?? {};
  return {
    id: record.id, tabId: record.tabId, kind: record.kind, label: record.label, format: record.format,
    state: record.state, text: record.text, citations: record.citations.map((c) => ({ ...c })),
    progress: record.progress && { ...record.progress }, error: record.error && { ...record.error },
    finishReason: record.finishReason, notice: record.notice,
    // The page the service read (start frame): what an export names and links.
    page: record.page ? { title: record.page.title ?? '', url: record.page.url ?? '', lang: record.page.lang ?? null } : null,
    // The request's options the panel shows: answer language, a rewrite's tone and length.
    language: options.output_language || null, tone: options.tone ?? null, length: options.length ?? null,
    canRetry: record.params !== null, editable: Boolean(record.target?.editable), restored: record.restored,
  };
}

export class RequestBook {
  /**
   * `onChange(record)` after every change of an answer but deltas; `onDelta(record, text)` per
   * delta; `onThread(tabId)` when a tab's list of answers changed (one added or replaced, a new
   * or restored conversation).
   */
  constructor({ onChange = () => {}, onDelta = () => {}, onThread = () => {} } = {}) {
    this.onChange = onChange;
    this.onDelta = onDelta;
    this.onThread = onThread;
    this.records = new Map();
    this.threads = new Map();
  }

  thread(tabId) {
    const key = String(tabId);
    let thread = this.threads.get(key);
    if (!thread) {
      thread = { conversationId: null, url: null, ids: [] };
      this.threads.set(key, thread);
    }
    return thread;
  }

  /** A new request: `replaces` puts it where an earlier answer was (Regenerate, Retry). */
  create({ id, kind, tabId, label, params, format = 'markdown', target = null, replaces = null }) {
    const record = newRecord({ id, kind, tabId, label, params, format, target, replaces });
    this.records.set(id, record);
    const thread = this.thread(tabId);
    const at = replaces ? thread.ids.indexOf(replaces) : -1;
    if (at >= 0) {
      thread.ids[at] = id;
      this.records.delete(replaces);
    } else {
      thread.ids.push(id);
      for (const old of thread.ids.splice(0, Math.max(0, thread.ids.length - KEEP_PER_THREAD))) this.records.delete(old);
    }
    this.onThread(tabId);
    return record;
  }

  get(id) {
    return this.records.get(id);
  }

  /** Applies one request frame from the server; frames for unknown ids are ignored. */
  apply(frame) {
    const record = this.records.get(frame.id);
    if (!record) return;
    const conversation = frame.conversation_id;
    if (conversation && CONVERSATION_KINDS.has(record.kind)) {
      record.conversationId = conversation;
      const thread = this.thread(record.tabId);
      if (thread.ids.at(-1) === record.id || !thread.conversationId) {
        thread.conversationId = conversation;
        if (frame.page?.url) thread.url = frame.page.url;
      }
    } else if (conversation) {
      record.conversationId = conversation;
    }
    // After Stop the answer is final on screen; late frames only update bookkeeping.
    if (record.state !== RequestState.STREAMING) return;
    switch (frame.type) {
      case 'start':
        record.page = frame.page;
        record.progress = null;
        break;
      case 'progress':
        record.progress = { stage: frame.stage, done: frame.done, total: frame.total };
        break;
      case 'delta':
        record.progress = null;
        record.text += frame.text;
        this.onDelta(record, frame.text);
        return;
      case 'citation':
        record.citations = [...record.citations.filter((c) => c.n !== frame.n), citationOf(frame)].sort((a, b) => a.n - b.n);
        break;
      case 'done':
        record.state = RequestState.DONE;
        record.finishReason = frame.finish_reason;
        record.progress = null;
        break;
      case 'error':
        record.state = RequestState.ERROR;
        record.error = { code: frame.code, message: frame.message, retryable: frame.retryable };
        record.progress = null;
        break;
      default:
        return;
    }
    this.onChange(record);
  }

  /** Stop pressed: the answer ends now, whatever the server still sends. The text the
   *  user saw when pressing Stop is the answer (frames already on their way are dropped).
   *  The only place an answer becomes "stopped". */
  stop(id, shownText) {
    const record = this.records.get(id);
    if (!record || record.state !== RequestState.STREAMING) return false;
    if (typeof shownText === 'string' && record.text.startsWith(shownText)) record.text = shownText;
    record.state = RequestState.DONE;
    record.finishReason = 'cancelled';
    record.progress = null;
    this.onChange(record);
    return true;
  }

  fail(id, { code = 'failed', message, retryable = true }) {
    const record = this.records.get(id);
    if (!record || record.state !== RequestState.STREAMING) return;
    record.state = RequestState.ERROR;
    record.error = { code, message, retryable };
    record.progress = null;
    this.onChange(record);
  }

  /** The socket dropped: answers in flight will never finish. */
  connectionLost() {
    for (const record of this.records.values()) {
      if (record.state === RequestState.STREAMING && record.sent) {
        this.fail(record.id, { code: 'connection_lost', message: t('connectionLost') });
      }
    }
  }

  markSent(id) {
    const record = this.records.get(id);
    if (record) record.sent = true;
  }

  note(id, notice) {
    const record = this.records.get(id);
    if (!record) return;
    record.notice = notice;
    this.onChange(record);
  }

  newConversation(tabId) {
    this.threads.set(String(tabId), { conversationId: null, url: null, ids: [] });
    this.onThread(tabId);
  }

  /** Shows a stored conversation (from `history`) as this tab's thread. */
  restoreConversation(tabId, conversation, turns) {
    const thread = { conversationId: null, url: null, ids: [] };
    this.threads.set(String(tabId), thread);
    Object.assign(thread, { conversationId: conversation.id, url: conversation.url || null, title: conversation.title || null });
    let pendingUser = null;
    turns.forEach((turn, i) => {
      if (turn.role === 'user') {
        pendingUser = turn;
        return;
      }
      const id = `${conversation.id}:${turn.request_id ?? i}`;
      const record = newRecord({
        id, kind: turn.kind, tabId, label: pendingUser?.text ?? '',
        state: turn.status === 'incomplete' && turn.finish_reason === 'error' ? RequestState.ERROR : RequestState.DONE,
        text: turn.text, citations: turn.citations ?? [], conversationId: conversation.id,
        finishReason: turn.finish_reason ?? 'stop', restored: true,
        error: turn.finish_reason === 'error' ? { code: 'incomplete', message: t('answerBrokeOff'), retryable: false } : null,
        createdAt: Date.parse(turn.created_at) || Date.now(),
      });
      this.records.set(id, record);
      thread.ids.push(id);
      pendingUser = null;
    });
    this.onThread(tabId);
  }

  /** A tab's thread as panels see it: its conversation and the views of its answers. */
  view(tabId) {
    const thread = this.threads.get(String(tabId)) ?? { conversationId: null, url: null, ids: [] };
    const requests = thread.ids.map((id) => this.records.get(id)).filter(Boolean).map(answerView);
    return { tabId, conversationId: thread.conversationId, url: thread.url, title: thread.title ?? null, requests };
  }

  answerView(id) {
    const record = this.records.get(id);
    return record ? answerView(record) : null;
  }

  snapshot() {
    return { records: [...this.records.values()], threads: [...this.threads.entries()] };
  }

  /** Loads a snapshot after a restart: answers that were streaming were cut off by it. */
  load(snapshot) {
    if (!snapshot) return;
    this.records = new Map(snapshot.records.map((r) => [r.id, newRecord(r)]));
    this.threads = new Map(snapshot.threads);
    for (const record of this.records.values()) {
      if (record.state === RequestState.STREAMING) {
        record.state = RequestState.ERROR;
        record.error = { code: 'interrupted', message: t('interruptedByRestart'), retryable: true };
        record.progress = null;
      }
    }
  }
}

/** A citation as the panel keeps it: the quote, and where it is (PDF page, which tab, when). */
function citationOf({ n, quote, page, source, time }) {
  const citation = { n, quote };
  if (page !== undefined) citation.page = page;
  if (source !== undefined) citation.source = source;
  if (time !== undefined) citation.time = time;
  return citation;
}

// The messages between the side panel (or the options page) and the service worker, defined
// once: both sides import this module, so no op is spelled in two files and every payload is
// checked against its shape here. A panel opens a runtime port named PORT_NAME and sends
//
//   { seq, op, payload }                                   (seq: a positive integer)
//
// The worker answers every one exactly once, and pushes what changes:
//
//   { reply: seq, ok: true, value }
//   { reply: seq, ok: false, error: { code, message } }    (code: one of ErrorCode)
//   { push: 'thread' | 'answer' | 'status', value }
//
// A thread is `RequestBook.view(tabId)`: { tabId, conversationId, url, title, requests: [answer…] };
// an answer is `answerView(record)` (lib/request-book.js); a status is `Connection.status`.
// The panel draws those and keeps no answer of its own.

export const PORT_NAME = 'panel';

export const Op = Object.freeze({
  ATTACH: 'attach',
  SUMMARIZE: 'summarize',
  ASK: 'ask',
  TRANSLATE_SELECTION: 'translate-selection',
  TRANSLATE: 'translate',
  RUN_ACTION: 'run-action',
  STOP: 'stop',
  RETRY: 'retry',
  NEW_CONVERSATION: 'new-conversation',
  HISTORY: 'history',
  OPEN_CONVERSATION: 'open-conversation',
  CITE: 'cite',
  REPLACE: 'replace',
  RECONNECT: 'reconnect',
  PING: 'ping',
});

export const Push = Object.freeze({ THREAD: 'thread', ANSWER: 'answer', STATUS: 'status' });

export const ErrorCode = Object.freeze({
  BAD_REQUEST: 'bad_request', // the message does not fit its shape (a bug on the panel's side)
  FAILED: 'failed', // the op ran and failed; the message says why
  NOT_STARTED: 'not_started', // the worker could not start; a later op tries again
  TIMEOUT: 'timeout', // no reply in time (panel side)
  DISCONNECTED: 'disconnected', // the port closed before the reply (panel side)
});

// Most ops answer at once (a request's reply is its id; its answer comes as pushes); the two
// that ask the service wait for it, which itself waits a few seconds for a connection.
const QUICK_MS = 10_000;
const SERVICE_MS = 30_000;

// Payload field types: 'string', 'integer', 'tab' (a tab id, or null for "no tab": the options
// page), 'object', 'tabs' (tab ids), 'seconds' (a time in a video, ≥ 0); a trailing '?' makes the field optional (null allowed).
const OPS = {
  [Op.ATTACH]: { fields: { tabId: 'tab' }, reply: '{ thread, status, workerStarted, limits }' },
  [Op.SUMMARIZE]: { fields: { tabId: 'integer', options: 'object', tabIds: 'tabs?' }, reply: '{ id }' },
  [Op.ASK]: { fields: { tabId: 'integer', question: 'string', tabIds: 'tabs?', outputLanguage: 'string?' }, reply: '{ id }' },
  [Op.TRANSLATE_SELECTION]: { fields: { tabId: 'integer', language: 'string' }, reply: '{ id }' },
  [Op.TRANSLATE]: { fields: { id: 'string', language: 'string' }, reply: '{ id }' },
  [Op.RUN_ACTION]: { fields: { tabId: 'integer', actionId: 'string' }, reply: '{ id }' },
  [Op.STOP]: { fields: { id: 'string', shownText: 'string?' }, reply: '{ stopped }' },
  [Op.RETRY]: { fields: { id: 'string', options: 'object?' }, reply: '{ id }' },
  [Op.NEW_CONVERSATION]: { fields: { tabId: 'integer' }, reply: '{}' },
  [Op.HISTORY]: { fields: {}, reply: '{ conversations }', timeoutMs: SERVICE_MS },
  [Op.OPEN_CONVERSATION]: { fields: { tabId: 'integer', conversationId: 'string' }, reply: '{}', timeoutMs: SERVICE_MS },
  [Op.CITE]: {
    fields: { tabId: 'integer', n: 'integer', quote: 'string', requestId: 'string?', source: 'integer?', page: 'integer?', time: 'seconds?' },
    reply: '{ found, reason?, tabId?, page?, time? }',
  },
  [Op.REPLACE]: { fields: { id: 'string' }, reply: '{ ok, reason? }' },
  [Op.RECONNECT]: { fields: {}, reply: '{}' },
  [Op.PING]: { fields: {}, reply: '{}' },
};

/** The ops and their shapes, for documentation and tests: op -> { fields, reply, timeoutMs }. */
export function opShapes() {
  return Object.fromEntries(Object.entries(OPS).map(([op, shape]) => [op, { timeoutMs: QUICK_MS, ...shape }]));
}

/** How long a panel waits for the reply to `op`. */
export function replyTimeoutMs(op) {
  return OPS[op]?.timeoutMs ?? QUICK_MS;
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

const CHECKS = {
  string: (v) => typeof v === 'string',
  integer: Number.isInteger,
  tab: (v) => v === null || Number.isInteger(v),
  object: isObject,
  tabs: (v) => Array.isArray(v) && v.every(Number.isInteger),
  seconds: (v) => Number.isFinite(v) && v >= 0,
};

/** What is wrong with `payload` for `op`, in a sentence; null when it fits. */
export function payloadProblem(op, payload) {
  const shape = Object.hasOwn(OPS, op) ? OPS[op] : null;
  if (!shape) return `unknown op ${JSON.stringify(op)}; expected one of ${Object.keys(OPS).join(', ')}`;
  if (!isObject(payload)) return `${op}: the payload must be an object`;
  for (const name of Object.keys(payload)) {
    if (!Object.hasOwn(shape.fields, name)) return `${op}: unexpected field ${name}`;
  }
  for (const [name, type] of Object.entries(shape.fields)) {
    const optional = type.endsWith('?');
    const value = payload[name];
    if (value === undefined || (optional && value === null)) {
      if (optional || type === 'tab') continue;
      return `${op}: ${name} is missing`;
    }
    if (!CHECKS[type.replace('?', '')](value)) return `${op}: ${name} must be ${type.replace('?', '')}`;
  }
  return null;
}

export class PanelError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'PanelError';
    this.code = code;
  }
}

export const requestMessage = (seq, op, payload) => ({ seq, op, payload });
export const okReply = (seq, value) => ({ reply: seq, ok: true, value: value ?? {} });
export const errorReply = (seq, code, message) => ({ reply: seq, ok: false, error: { code, message } });
export const pushMessage = (kind, value) => ({ push: kind, value });

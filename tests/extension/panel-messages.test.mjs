// The panel↔worker messages: the panel's link (lib/panel-link.js) and the worker's hub
// (lib/panel-hub.js), both real, joined by an in-memory pair of ports that behaves like
// Chrome's runtime ports (JSON-cloned messages delivered later, a disconnect seen by the other
// side only). The handlers are small stand-ins except in the last tests, which drive a real
// RequestBook the way the service worker does.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import './i18n-shim.mjs';
import { PanelHub } from '../../extension/lib/panel-hub.js';
import { PanelLink } from '../../extension/lib/panel-link.js';
import { ErrorCode, Op, PORT_NAME, Push, opShapes, payloadProblem, replyTimeoutMs } from '../../extension/lib/panel-messages.js';
import { RequestBook, answerView } from '../../extension/lib/request-book.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

class Side {
  constructor(name) {
    this.name = name;
    this.other = null;
    this.closed = false;
    this.messageListeners = [];
    this.disconnectListeners = [];
    this.onMessage = { addListener: (f) => this.messageListeners.push(f) };
    this.onDisconnect = { addListener: (f) => this.disconnectListeners.push(f) };
  }

  postMessage(message) {
    if (this.closed) throw new Error('Attempting to use a disconnected port object');
    const copy = JSON.parse(JSON.stringify(message));
    const to = this.other;
    setImmediate(() => {
      if (!to.closed) for (const f of to.messageListeners) f(copy);
    });
  }

  disconnect() {
    if (this.closed) return;
    this.closed = true;
    this.other.closed = true;
    setImmediate(() => this.other.disconnectListeners.forEach((f) => f()));
  }
}

function portPair(name = PORT_NAME) {
  const panel = new Side(name);
  const worker = new Side(name);
  panel.other = worker;
  worker.other = panel;
  return { panel, worker };
}

// A manual clock for reply timeouts, reopening and coalescing.
class Clock {
  constructor() { this.t = 0; this.timers = new Map(); this.next = 1; }
  setTimeout(fn, ms) { const id = this.next++; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  advance(ms) {
    const until = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = until;
  }
}

/** A hub and a link that opens ports to it; `pushes` collects what the panel was pushed. */
function setup({ handlers = {}, ready, answerDelayMs } = {}) {
  const clock = new Clock();
  const hub = new PanelHub({ handlers, ready, clock, answerDelayMs });
  const ports = [];
  const pushes = [];
  let opened = 0;
  const link = new PanelLink({
    clock,
    connect: () => {
      const pair = portPair();
      ports.push(pair);
      hub.accept(pair.worker);
      return pair.panel;
    },
    onOpen: () => { opened += 1; },
    onPush: (kind, value) => pushes.push({ kind, value }),
  });
  return { clock, hub, link, ports, pushes, opened: () => opened };
}

// A payload that fits each op, as the panel sends it.
const SAMPLES = {
  [Op.ATTACH]: { tabId: 3 },
  [Op.SUMMARIZE]: { tabId: 3, options: { type: 'tldr', length: 'short', format: 'markdown' }, tabIds: null },
  [Op.ASK]: { tabId: 3, question: 'Why?', tabIds: [3, 4], outputLanguage: 'fr' },
  [Op.TRANSLATE_SELECTION]: { tabId: 3, language: 'ar' },
  [Op.TRANSLATE]: { id: 'q-1', language: 'zh-CN' },
  [Op.RUN_ACTION]: { tabId: 3, actionId: 'builtin-key-terms' },
  [Op.STOP]: { id: 'q-1', shownText: 'One ' },
  [Op.RETRY]: { id: 'w-1', options: { tone: 'more-formal' } },
  [Op.NEW_CONVERSATION]: { tabId: 3 },
  [Op.HISTORY]: {},
  [Op.OPEN_CONVERSATION]: { tabId: 3, conversationId: 'c-1' },
  [Op.CITE]: { tabId: 3, n: 2, quote: 'A quote.', requestId: 'q-1', source: null, page: 7 },
  [Op.REPLACE]: { id: 'w-1' },
  [Op.RECONNECT]: {},
  [Op.PING]: {},
};

test('every op is defined once with its shape, and each reaches its handler and answers', async () => {
  assert.deepEqual(Object.keys(opShapes()).sort(), Object.values(Op).sort());
  const seen = [];
  const handlers = Object.fromEntries(Object.values(Op).map((op) => [op, (payload) => {
    seen.push([op, payload]);
    return { echoed: op };
  }]));
  const { link } = setup({ handlers });
  for (const op of Object.values(Op)) {
    assert.deepEqual(await link.request(op, SAMPLES[op]), { echoed: op });
  }
  assert.deepEqual(seen, Object.values(Op).map((op) => [op, SAMPLES[op]]));
});

test('a payload that does not fit its op is refused, naming the field, before and after sending', async () => {
  assert.equal(payloadProblem(Op.ASK, { tabId: 3 }), 'ask: question is missing');
  assert.equal(payloadProblem(Op.ASK, { tabId: '3', question: 'q' }), 'ask: tabId must be integer');
  assert.equal(payloadProblem(Op.STOP, { id: 'q', text: 'x' }), 'stop: unexpected field text');
  assert.match(payloadProblem('cancel', {}), /unknown op "cancel"; expected one of attach, /);
  assert.equal(payloadProblem(Op.ATTACH, {}), null, 'the options page attaches with no tab');
  // A citation of a video carries the second to seek to.
  assert.equal(payloadProblem(Op.CITE, { tabId: 3, n: 1, quote: 'q', time: 4.2 }), null);
  assert.equal(payloadProblem(Op.CITE, { tabId: 3, n: 1, quote: 'q', time: -1 }), 'cite: time must be seconds');
  assert.equal(payloadProblem(Op.CITE, { tabId: 3, n: 1, quote: 'q', time: '4' }), 'cite: time must be seconds');

  const { link, ports } = setup({ handlers: { [Op.ASK]: () => assert.fail('a bad payload ran'), [Op.PING]: () => ({}) } });
  await assert.rejects(link.request(Op.ASK, { tabId: 3, question: 7 }), { code: ErrorCode.BAD_REQUEST, message: 'ask: question must be string' });
  // Past the link (a panel of another version, say), the worker refuses it the same way.
  await link.request(Op.PING);
  const replies = [];
  ports[0].panel.onMessage.addListener((m) => replies.push(m));
  ports[0].panel.postMessage({ seq: 99, op: Op.ASK, payload: { tabId: 3 } });
  await settle();
  await settle();
  assert.deepEqual(replies, [{ reply: 99, ok: false, error: { code: ErrorCode.BAD_REQUEST, message: 'ask: question is missing' } }]);
});

test('an op that fails answers with an error reply saying why', async () => {
  const { link } = setup({ handlers: { [Op.HISTORY]: async () => { throw new Error('Server not running: start it with make run'); } } });
  await assert.rejects(link.request(Op.HISTORY), { code: ErrorCode.FAILED, message: /make run/ });
  await assert.rejects(link.request(Op.PING), { code: ErrorCode.BAD_REQUEST, message: 'ping is not served by this worker' });
});

test('a worker that failed to start says why to every op, and starts again when asked again', async () => {
  let attempts = 0;
  let starting = null;
  // Restartable the way the service worker's ready() is.
  const ready = () => {
    starting ??= (async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('cannot read schema/client.json: HTTP 404');
    })().catch((error) => {
      starting = null;
      throw error;
    });
    return starting;
  };
  const { link } = setup({ ready, handlers: { [Op.ATTACH]: () => ({ attached: true }) } });
  await assert.rejects(link.request(Op.ATTACH, { tabId: 1 }), (error) => {
    assert.equal(error.code, ErrorCode.NOT_STARTED);
    assert.match(error.message, /could not start: cannot read schema\/client\.json: HTTP 404/);
    assert.match(error.message, /Retry/);
    return true;
  });
  assert.deepEqual(await link.request(Op.ATTACH, { tabId: 1 }), { attached: true });
  assert.equal(attempts, 2);
});

test('a worker that does not answer is given up on: the op fails with a clear message, not a wait forever', async () => {
  const clock = new Clock();
  // Messages go out and nothing ever comes back (a worker that never got to listen).
  const link = new PanelLink({ clock, connect: () => portPair().panel });
  const attaching = link.request(Op.ATTACH, { tabId: 1 });
  const history = link.request(Op.HISTORY);
  let attachFailed = null;
  attaching.catch((error) => { attachFailed = error; });
  clock.advance(replyTimeoutMs(Op.ATTACH) - 1);
  await settle();
  assert.equal(attachFailed, null, 'not before its time');
  clock.advance(1);
  await assert.rejects(attaching, { code: ErrorCode.TIMEOUT, message: /not answering.*Retry/ });
  assert.ok(replyTimeoutMs(Op.HISTORY) > replyTimeoutMs(Op.ATTACH), 'an op that waits for the service waits longer');
  clock.advance(replyTimeoutMs(Op.HISTORY));
  await assert.rejects(history, { code: ErrorCode.TIMEOUT });
});

test('a port that closes fails the ops in flight and is opened again, which attaches again', async () => {
  const { link, ports, clock, opened } = setup({ handlers: { [Op.HISTORY]: () => new Promise(() => {}) } });
  link.open();
  assert.equal(opened(), 1);
  const waiting = link.request(Op.HISTORY);
  await settle();
  ports[0].worker.disconnect(); // the worker stopped
  await assert.rejects(waiting, { code: ErrorCode.DISCONNECTED, message: 'The extension restarted.' });
  clock.advance(200);
  assert.equal(ports.length, 2);
  assert.equal(opened(), 2, 'the panel attaches on the new port');
});

test('a reply that comes after its timeout is dropped, and the next op still works', async () => {
  let release;
  const handlers = { [Op.HISTORY]: () => new Promise((resolve) => { release = resolve; }), [Op.PING]: () => ({ pong: true }) };
  const { link, clock } = setup({ handlers });
  const slow = link.request(Op.HISTORY);
  await settle();
  clock.advance(replyTimeoutMs(Op.HISTORY));
  await assert.rejects(slow, { code: ErrorCode.TIMEOUT });
  release({ conversations: [] });
  await settle();
  assert.deepEqual(await link.request(Op.PING), { pong: true });
});

test('threads go to the panels showing that tab, the status to every panel', async () => {
  const a = setup({ handlers: { [Op.ATTACH]: () => ({}) } });
  await a.link.request(Op.ATTACH, { tabId: 1 });
  // A second panel on the same hub, showing tab 2.
  const pair = portPair();
  a.hub.accept(pair.worker);
  const other = [];
  pair.panel.onMessage.addListener((m) => other.push(m));
  pair.panel.postMessage({ seq: 1, op: Op.ATTACH, payload: { tabId: 2 } });
  await settle();
  await settle();
  a.hub.pushThread({ tabId: 1, conversationId: null, url: null, requests: [] });
  a.hub.pushStatus({ state: 'connected', url: 'ws://x' });
  await settle();
  assert.deepEqual(a.pushes.map((p) => p.kind), [Push.THREAD, Push.STATUS]);
  assert.deepEqual(other.filter((m) => m.push).map((m) => m.push), [Push.STATUS]);
});

// -- with a real RequestBook, wired to the hub as the service worker wires it ----------------

function bookSetup() {
  let book = null;
  const handlers = {
    [Op.ATTACH]: ({ tabId }) => ({ thread: book.view(tabId) }),
    [Op.STOP]: ({ id, shownText }) => ({ stopped: book.stop(id, shownText) }),
  };
  const s = setup({ handlers, answerDelayMs: 50 });
  book = new RequestBook({
    onThread: (tabId) => s.hub.pushThread(book.view(tabId)),
    onChange: (record) => s.hub.pushAnswer(answerView(record)),
    onDelta: (record) => s.hub.pushAnswerSoon(record.id, () => book.answerView(record.id)),
  });
  return { ...s, book };
}

test('a streaming answer reaches the panel as whole views, a burst of deltas as one', async () => {
  const { link, book, pushes, clock } = bookSetup();
  await link.request(Op.ATTACH, { tabId: 5 });
  book.create({ id: 'q1', kind: 'ask', tabId: 5, label: 'Why?', params: {} });
  for (const text of ['Because ', 'it ', 'rains.']) book.apply({ type: 'delta', id: 'q1', text });
  clock.advance(50);
  await settle();
  assert.deepEqual(pushes.map((p) => p.kind), [Push.THREAD, Push.ANSWER]);
  assert.deepEqual(pushes[0].value.requests.map((r) => [r.id, r.state]), [['q1', 'streaming']]);
  assert.equal(pushes[1].value.text, 'Because it rains.');
  assert.equal(pushes[1].value.params, undefined, 'a view, not the record: no request params, no page target');
});

test('Stop goes through the book: the panel gets the answer ended with the text it showed', async () => {
  const { link, book, pushes, clock } = bookSetup();
  await link.request(Op.ATTACH, { tabId: 5 });
  book.create({ id: 'q1', kind: 'ask', tabId: 5, label: 'Why?', params: {} });
  book.apply({ type: 'delta', id: 'q1', text: 'One ' });
  clock.advance(50);
  book.apply({ type: 'delta', id: 'q1', text: 'two ' }); // reached the worker, not yet drawn
  assert.deepEqual(await link.request(Op.STOP, { id: 'q1', shownText: 'One ' }), { stopped: true });
  book.apply({ type: 'delta', id: 'q1', text: 'three' });
  clock.advance(50);
  await settle();
  const last = pushes.at(-1).value;
  assert.deepEqual([last.state, last.finishReason, last.text], ['done', 'cancelled', 'One ']);
  assert.ok(pushes.every((p) => p.kind !== Push.ANSWER || !p.value.text.includes('three')));
  assert.deepEqual(await link.request(Op.STOP, { id: 'q1', shownText: 'One ' }), { stopped: false });
});

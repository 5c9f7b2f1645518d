import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Connection, State, backoffDelay, httpBase, originVerdict } from '../../extension/lib/connection.js';
import { describeStatus, needsPairing } from '../../extension/sidepanel/status-view.js';
import { realCodec } from './helpers.mjs';

const codec = await realCodec();
const WELCOME = {
  type: 'welcome',
  protocol: 1,
  server: { version: '0.1.0' },
  engine: { name: 'extractive', model: 'page sentences', capabilities: ['ask', 'summarize'], context_tokens: 100, state: 'ready' },
  limits: { page_frame_bytes: 5000, frame_bytes: 1000, requests_per_connection: 8 },
};

// A manual clock: timers fire only when the test advances time.
class Clock {
  constructor() { this.t = 0; this.timers = new Map(); this.next = 1; }
  setTimeout(fn, ms) { const id = this.next++; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  now() { return this.t; }
  pendingDelays() { return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b); }
  async advance(ms) {
    const until = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await Promise.resolve();
    }
    this.t = until;
  }
}

// A scripted stand-in for the browser's WebSocket: the test plays the server.
function socketClass(sockets) {
  return class FakeSocket {
    // Like the browser's, the constructor throws on a URL it cannot parse.
    constructor(url) { new URL(url); this.url = url; this.sent = []; this.closed = false; sockets.push(this); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { if (!this.closed) { this.closed = true; this.onclose?.({ code: 1000 }); } }
    // server side
    accept() { this.onopen?.(); }
    refuse() { this.onerror?.({}); this.closed = true; this.onclose?.({ code: 1006 }); }
    deliver(frame) { this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) }); }
  };
}

function setup(extra = {}) {
  const sockets = [];
  const clock = new Clock();
  const conn = new Connection({ codec, WebSocketImpl: socketClass(sockets), clock, random: () => 0.5, client: { name: 't', version: '1' }, ...extra });
  const states = [];
  conn.onStatus((s) => states.push(s.state));
  const frames = [];
  conn.onFrame((frame, info) => frames.push(frame ?? info));
  return { conn, sockets, clock, states, frames };
}

test('without a token nothing connects and the status asks for pairing', () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: '' });
  assert.equal(sockets.length, 0);
  assert.equal(conn.status.state, State.UNPAIRED);
  assert.match(conn.status.message, /pairing token/);
});

test('connecting sends hello with the token first and welcome makes it connected', () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  assert.equal(conn.status.state, State.CONNECTING);
  sockets[0].accept();
  assert.deepEqual(sockets[0].sent, [{ type: 'hello', protocol: 1, token: 'tok', client: { name: 't', version: '1' } }]);
  sockets[0].deliver(WELCOME);
  assert.equal(conn.status.state, State.CONNECTED);
  assert.equal(conn.status.engine.name, 'extractive');
  assert.equal(conn.limits.page_frame_bytes, 5000);
});

test('a server that is not running gives the start command and retries with growing delays', async () => {
  const { conn, sockets, clock } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  const delays = [];
  for (let i = 0; i < 6; i += 1) {
    sockets.at(-1).refuse();
    assert.equal(conn.status.state, State.OFFLINE);
    assert.match(conn.status.message, /make run/);
    assert.match(conn.status.message, /tiangong serve/);
    delays.push(clock.pendingDelays()[0]);
    await clock.advance(delays.at(-1));
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 5000, 5000]);
  assert.equal(sockets.length, 7);
});

test('backoff jitter stays within a quarter of the base delay', () => {
  assert.equal(backoffDelay(0, { initialMs: 1000, maxMs: 8000 }, () => 0), 750);
  assert.equal(backoffDelay(0, { initialMs: 1000, maxMs: 8000 }, () => 1), 1250);
  assert.equal(backoffDelay(10, { initialMs: 1000, maxMs: 8000 }, () => 0.5), 8000);
});

test('after a lost connection it reconnects quickly and answers in flight learn they were cut off', async () => {
  const { conn, sockets, clock, frames } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  for (let i = 0; i < 3; i += 1) { sockets.at(-1).refuse(); await clock.advance(clock.pendingDelays()[0]); }
  sockets.at(-1).accept();
  sockets.at(-1).deliver(WELCOME);
  sockets.at(-1).close(); // the server went away
  assert.ok(frames.some((f) => f.lost));
  assert.equal(conn.status.state, State.OFFLINE);
  assert.match(conn.status.message, /Connection lost/);
  assert.deepEqual(clock.pendingDelays(), [500]); // the backoff starts over after a good connection
});

test('a wrong token stops retrying until the token changes', async () => {
  const { conn, sockets, clock } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'bad' });
  sockets[0].accept();
  sockets[0].deliver({ type: 'error', code: 'unauthorized', message: 'wrong pairing token: run `tiangong token` to see the right one', retryable: false });
  sockets[0].close();
  assert.equal(conn.status.state, State.REFUSED);
  assert.match(conn.status.message, /tiangong token/);
  assert.deepEqual(clock.pendingDelays(), []);
  await assert.rejects(conn.send({ type: 'history', id: 'h1' }), /wrong pairing token/);
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'good' });
  assert.equal(sockets.length, 2);
  sockets[1].accept();
  assert.equal(sockets[1].sent[0].token, 'good');
});

test('send waits for the connection, then delivers the frame', async () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  const sending = conn.send({ type: 'history', id: 'h1' });
  sockets[0].accept();
  sockets[0].deliver(WELCOME);
  await sending;
  assert.deepEqual(sockets[0].sent.at(-1), { type: 'history', id: 'h1' });
});

test('send gives up with the offline message when the server stays down', async () => {
  const { conn, sockets, clock } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].refuse();
  const sending = conn.send({ type: 'history', id: 'h1' }, { waitMs: 300 });
  assert.equal(sockets.length, 2, 'a send retries at once instead of waiting out the backoff');
  sockets[1].refuse();
  await clock.advance(300);
  await assert.rejects(sending, /Server not running/);
});

test('an invalid frame is refused before sending and never reaches the socket', async () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].accept();
  sockets[0].deliver(WELCOME);
  await assert.rejects(conn.send({ type: 'ask', id: 'q1', question: '' , conversation_id: 'c' }), /question/);
  assert.equal(sockets[0].sent.length, 1);
});

test('request frames go to listeners; a frame that breaks the schema is reported with its id', () => {
  const { conn, sockets, frames } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].accept();
  sockets[0].deliver(WELCOME);
  sockets[0].deliver({ type: 'delta', id: 'r1', text: 'Hi' });
  sockets[0].deliver({ type: 'delta', id: 'r1', text: 5 });
  assert.deepEqual(frames[0], { type: 'delta', id: 'r1', text: 'Hi' });
  assert.equal(frames[1].requestId, 'r1');
  assert.match(frames[1].invalid, /text/);
});

test('status frames carry model loading progress into the status', () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].accept();
  sockets[0].deliver(WELCOME);
  sockets[0].deliver({ type: 'status', engine: { ...WELCOME.engine, state: 'loading' }, loading: { stage: 'download', done: 5, total: 10 } });
  assert.deepEqual(conn.status.loading, { stage: 'download', done: 5, total: 10 });
  sockets[0].deliver({ type: 'status', engine: WELCOME.engine });
  assert.equal(conn.status.loading, undefined);
});

test('a server that accepts but never welcomes is given up on and retried', async () => {
  const { conn, sockets, clock } = setup({ handshakeTimeoutMs: 1000 });
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].accept();
  await clock.advance(1000);
  assert.equal(conn.status.state, State.OFFLINE);
  await clock.advance(clock.pendingDelays()[0]);
  assert.equal(sockets.length, 2);
});

test('the probe tells a refused origin apart from a server that is down', async () => {
  const { conn, sockets } = setup({ probe: async () => ({ forbidden: true, message: 'refuses this extension: --allow-origin x' }) });
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].refuse();
  await new Promise((r) => setImmediate(r));
  assert.match(conn.status.message, /--allow-origin/);
});

test('a refused origin is told from /health: a 403 in Chromium, origin_allowed false in Firefox', () => {
  const base = 'http://127.0.0.1:8765';
  const firefox = 'moz-extension://0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b';
  const command = `\`tiangong serve --allow-origin ${firefox}\``;
  // Chromium: the fetch carries the Origin, and the service's Origin check answers 403.
  const chromium = originVerdict(403, null, base, firefox);
  assert.equal(chromium.forbidden, true);
  assert.ok(chromium.message.includes(command), chromium.message);
  // Firefox: the fetch carries no Origin (200), the body says the named origin is refused.
  const refused = originVerdict(200, { status: 'ok', origin_allowed: false }, base, firefox);
  assert.equal(refused.forbidden, true);
  assert.ok(refused.message.includes(command) && refused.message.includes(base), refused.message);
  // Allowed, a service too old to say, or a server error: not a refusal (the offline message stays).
  assert.deepEqual(originVerdict(200, { status: 'ok', origin_allowed: true }, base, firefox), { forbidden: false });
  assert.deepEqual(originVerdict(200, { status: 'ok' }, base, firefox), { forbidden: false });
  assert.deepEqual(originVerdict(200, null, base, firefox), { forbidden: false });
  assert.deepEqual(originVerdict(500, { origin_allowed: false }, base, firefox), { forbidden: false });
});

test('the health URL is derived from the socket URL', () => {
  assert.equal(httpBase('ws://127.0.0.1:8765/ws'), 'http://127.0.0.1:8765');
  assert.equal(httpBase('wss://[::1]:9/ws'), 'https://[::1]:9');
});

test('each status replaces the last: a refusal after a wrong token does not ask for the token again', () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'bad' });
  sockets[0].accept();
  sockets[0].deliver({ type: 'error', code: 'unauthorized', message: 'wrong pairing token: run `tiangong token`', retryable: false });
  sockets[0].close();
  assert.ok(needsPairing(conn.status), 'a refused token shows the pairing card');

  // An unrelated refusal: a server URL the browser cannot open.
  conn.configure({ url: 'ws://127.0.0.1:port/ws', token: 'bad' });
  assert.equal(conn.status.state, State.REFUSED);
  assert.match(conn.status.message, /127\.0\.0\.1:port/);
  assert.equal(conn.status.code, undefined, 'nothing of the earlier refusal is left');
  assert.equal(needsPairing(conn.status), false, 'no pairing card for a refusal that is not about the token');
  assert.equal(describeStatus(conn.status).line, 'Connection refused');
});

test('a lost connection keeps nothing of the session: no engine, no loading progress', () => {
  const { conn, sockets } = setup();
  conn.configure({ url: 'ws://127.0.0.1:9/ws', token: 'tok' });
  sockets[0].accept();
  sockets[0].deliver(WELCOME);
  sockets[0].deliver({ type: 'status', engine: { ...WELCOME.engine, state: 'loading' }, loading: { stage: 'download', done: 5, total: 10 } });
  sockets[0].close();
  assert.equal(conn.status.state, State.OFFLINE);
  assert.equal(conn.status.engine, undefined);
  assert.equal(conn.status.loading, undefined);
  assert.equal(conn.limits.page_frame_bytes, 5000, 'the limits the server gave still size the next request');
});

// The native host link's decisions, with a fake port playing the browser and the host: when
// the host is asked (and when never), what is stored from its answer, and every way it fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Connection, State } from '../../extension/lib/connection.js';
import { HOST_NAME, NativeLink, NativeStarter, hostCanHelp, isLoopbackUrl } from '../../extension/lib/native-link.js';
import { describeStatus, needsPairing } from '../../extension/sidepanel/status-view.js';
import { realCodec } from './helpers.mjs';

const LOCAL = 'ws://127.0.0.1:8765/ws';
const TEAM = 'wss://tiangong.team.example/ws';

// runtime.connectNative's port; the test plays the host on the other side.
class FakePort {
  constructor(name) {
    Object.assign(this, { name, sent: [], disconnected: false, error: null, messageListeners: [], disconnectListeners: [] });
    this.onMessage = { addListener: (f) => this.messageListeners.push(f) };
    this.onDisconnect = { addListener: (f) => this.disconnectListeners.push(f) };
  }
  postMessage(message) { this.sent.push(message); }
  disconnect() { this.disconnected = true; }
  // the host's side
  reply(message) { for (const f of this.messageListeners) f(message); }
  close(error) { this.error = error; for (const f of this.disconnectListeners) f(this); }
}

class ManualClock {
  constructor() { this.timers = new Map(); this.next = 1; }
  setTimeout(fn, ms) { const id = this.next++; this.timers.set(id, { fn, ms }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  fireAll() { const due = [...this.timers.values()]; this.timers.clear(); for (const t of due) t.fn(); }
}

function linkWith(options = {}) {
  const ports = [];
  const link = new NativeLink({
    connectNative: (name) => { const port = new FakePort(name); ports.push(port); return port; },
    clock: new ManualClock(),
    ...options,
  });
  return { link, ports };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('loopback URLs are the ones the host may answer for; a team server never', () => {
  assert.equal(isLoopbackUrl(LOCAL), true);
  assert.equal(isLoopbackUrl('ws://localhost:9000/ws'), true);
  assert.equal(isLoopbackUrl('ws://[::1]:8765/ws'), true);
  assert.equal(isLoopbackUrl(TEAM), false);
  assert.equal(isLoopbackUrl('ws://127.0.0.1.example.com/ws'), false);
  assert.equal(isLoopbackUrl('not a url'), false);
});

test('the host is asked for no token, a refused token and a service that does not answer', () => {
  assert.equal(hostCanHelp({ state: 'unpaired', url: LOCAL }), true);
  assert.equal(hostCanHelp({ state: 'refused', code: 'unauthorized', url: LOCAL }), true);
  assert.equal(hostCanHelp({ state: 'offline', code: 'offline', url: LOCAL }), true);
  assert.equal(hostCanHelp({ state: 'offline', code: 'forbidden', url: LOCAL }), true);
  // a protocol mismatch is not the host's to mend; nor is a state that may still work out
  assert.equal(hostCanHelp({ state: 'refused', code: 'unsupported', url: LOCAL }), false);
  assert.equal(hostCanHelp({ state: 'connecting', url: LOCAL }), false);
  assert.equal(hostCanHelp({ state: 'connected', url: LOCAL }), false);
  // a team server keeps token pairing, whatever its state
  assert.equal(hostCanHelp({ state: 'unpaired', url: TEAM }), false);
  assert.equal(hostCanHelp({ state: 'offline', url: TEAM }), false);
});

test('a connect request gets the URL and token; "starting" is reported; the port is closed after', async () => {
  const { link, ports } = linkWith();
  const starts = [];
  const answer = link.ask({ onStarting: (port) => starts.push(port) });
  const [port] = ports;
  assert.equal(port.name, HOST_NAME);
  assert.deepEqual(port.sent, [{ type: 'connect', id: 'c1' }]); // no origin outside Firefox
  port.reply({ type: 'starting', id: 'c1', port: 8766 });
  assert.deepEqual(starts, [8766]);
  port.reply({ type: 'service', id: 'c1', url: 'ws://127.0.0.1:8766/ws', token: 'tok', started: true });
  assert.deepEqual(await answer, { url: 'ws://127.0.0.1:8766/ws', token: 'tok', started: true });
  assert.equal(port.disconnected, true);
});

test('Firefox sends its own origin; replies to another request id are ignored', async () => {
  const origin = 'moz-extension://0b8c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b/';
  const { link, ports } = linkWith({ origin });
  const answer = link.ask();
  assert.deepEqual(ports[0].sent, [{ type: 'connect', id: 'c1', origin }]);
  ports[0].reply({ type: 'service', id: 'c0', url: 'ws://127.0.0.1:1/ws', token: 'stale' });
  ports[0].reply({ type: 'service', id: 'c1', url: LOCAL, token: 'fresh' });
  assert.equal((await answer).token, 'fresh');
});

test('no host installed: the port closes with the browser\'s reason', async () => {
  const { link, ports } = linkWith();
  const answer = link.ask();
  ports[0].close({ message: 'Specified native messaging host not found.' });
  await assert.rejects(answer, { code: 'unavailable', message: 'Specified native messaging host not found.' });
});

test('a browser without native messaging (connectNative throws) is "unavailable" too', async () => {
  const link = new NativeLink({ connectNative: () => { throw new Error('connectNative is not a function'); }, clock: new ManualClock() });
  await assert.rejects(link.ask(), { code: 'unavailable' });
});

test('the host\'s error reply is passed on with its code and message', async () => {
  const { link, ports } = linkWith();
  const answer = link.ask();
  ports[0].reply({ type: 'error', id: 'c1', code: 'start_failed', message: 'the service stopped at start (exit 2); see logs/service.log', retryable: true });
  await assert.rejects(answer, { code: 'start_failed', message: /logs\/service\.log/ });
  assert.equal(ports[0].disconnected, true);
});

test('only a loopback ws:// URL and a token are taken from the host', async () => {
  for (const bad of [
    { url: 'ws://evil.example:8765/ws', token: 'tok' },
    { url: 'wss://127.0.0.1:8765/ws', token: 'tok' },
    { url: 'ws://127.0.0.1:99999/ws', token: 'tok' },
    { url: LOCAL },
    { url: LOCAL, token: 'x'.repeat(600) },
  ]) {
    const { link, ports } = linkWith();
    const answer = link.ask();
    ports[0].reply({ type: 'service', id: 'c1', ...bad });
    await assert.rejects(answer, { code: 'bad_reply' }, JSON.stringify(bad));
  }
});

test('a host that never answers times out, and its port is closed', async () => {
  const clock = new ManualClock();
  const { link, ports } = linkWith({ clock });
  const answer = link.ask();
  clock.fireAll();
  await assert.rejects(answer, { code: 'timeout' });
  assert.equal(ports[0].disconnected, true);
});

// -- the starter: when to ask, what to store ------------------------------------------------

class FakeConnection {
  constructor(status) {
    Object.assign(this, { current: status, listeners: [], configured: [], nows: 0, waited: [] });
  }
  get status() { return { ...this.current }; }
  onStatus(listener) { this.listeners.push(listener); }
  set(status) { this.current = status; for (const f of this.listeners) f(this.status); }
  configure(values) { this.configured.push(values); }
  connectNow() { this.nows += 1; }
  waitFor(promise) { this.waited.push(promise); }
}

function starterWith(status, host) {
  const connection = new FakeConnection(status);
  const stored = [];
  const ports = [];
  const link = new NativeLink({
    connectNative: (name) => {
      const port = new FakePort(name);
      ports.push(port);
      port.postMessage = (message) => { port.sent.push(message); queueMicrotask(() => host(port, message)); };
      return port;
    },
    clock: new ManualClock(),
  });
  const starter = new NativeStarter({ link, connection, store: async (values) => { stored.push(values); } });
  return { starter, connection, stored, ports };
}

const serviceHost = (port, message) => {
  port.reply({ type: 'starting', id: message.id, port: 8765 });
  port.reply({ type: 'service', id: message.id, url: LOCAL, token: 'from-host', started: true });
};
const noHost = (port) => port.close({ message: 'Specified native messaging host not found.' });

test('nobody looking, nobody asked: the worker waking alone does not start the service', async () => {
  const { ports, connection } = starterWith({ state: 'unpaired', url: LOCAL }, serviceHost);
  connection.set({ state: 'offline', code: 'offline', url: LOCAL });
  await tick();
  assert.equal(ports.length, 0);
});

test('an opened panel without a token: the host starts the service, its URL and token are stored and used', async () => {
  const { starter, connection, stored, ports } = starterWith({ state: 'unpaired', url: LOCAL }, serviceHost);
  const seen = [];
  starter.onChange = () => seen.push(starter.overlay(connection.status));
  starter.wanted();
  await tick();
  assert.equal(ports.length, 1);
  assert.equal(connection.waited.length, 1, 'requests wait for the start');
  assert.deepEqual(stored, [{ serverUrl: LOCAL, token: 'from-host' }]);
  assert.deepEqual(connection.configured, [{ url: LOCAL, token: 'from-host' }]);
  assert.equal(connection.nows, 1);
  // "Starting Tiangong…" while the host started it; no pairing card meanwhile
  const starting = seen.find((s) => s.code === 'starting');
  assert.equal(describeStatus(starting).line, 'Starting Tiangong…');
  assert.equal(needsPairing(starting), false);
  assert.equal(starter.phase, 'idle');
});

test('a service the host started still says "Starting Tiangong…" while its model loads', async () => {
  const { starter, connection } = starterWith({ state: 'unpaired', url: LOCAL }, serviceHost);
  starter.wanted();
  await tick();
  const engine = { name: 'transformers', model: 'SmolLM2', state: 'loading' };
  connection.set({ state: 'connected', url: LOCAL, engine, loading: { stage: 'weights', done: 1, total: 4 } });
  assert.equal(describeStatus(starter.overlay(connection.status)).line, 'Starting Tiangong… Loading SmolLM2: weights 25%');
  connection.set({ state: 'connected', url: LOCAL, engine: { ...engine, state: 'ready' } });
  assert.equal(describeStatus(starter.overlay(connection.status)).line, 'Connected · transformers · SmolLM2');
});

test('a team server keeps token pairing: the host is never asked', async () => {
  const { starter, connection, ports } = starterWith({ state: 'unpaired', url: TEAM }, serviceHost);
  starter.wanted();
  connection.set({ state: 'refused', code: 'unauthorized', url: TEAM });
  connection.set({ state: 'offline', code: 'offline', url: TEAM });
  await tick();
  assert.equal(ports.length, 0);
});

test('a panel opened while connecting asks once the service turns out not to answer', async () => {
  const { starter, connection, ports, stored } = starterWith({ state: 'connecting', url: LOCAL }, serviceHost);
  starter.wanted();
  assert.equal(ports.length, 0);
  connection.set({ state: 'offline', code: 'offline', url: LOCAL });
  await tick();
  assert.equal(ports.length, 1);
  assert.equal(stored.length, 1);
});

test('once connected, a later failure waits for the next look (a panel, Retry, a request)', async () => {
  const { starter, connection, ports } = starterWith({ state: 'connecting', url: LOCAL }, serviceHost);
  starter.wanted();
  connection.set({ state: 'connected', url: LOCAL });
  connection.set({ state: 'offline', code: 'offline', url: LOCAL });
  await tick();
  assert.equal(ports.length, 0);
  starter.wanted(); // e.g. the service was killed and the user asks again
  await tick();
  assert.equal(ports.length, 1);
});

test('no host: the pairing card stays as today, "not running" names tiangong install, and it is asked only once', async () => {
  const { starter, connection, ports, stored } = starterWith({ state: 'unpaired', url: LOCAL }, noHost);
  starter.wanted();
  await tick();
  assert.equal(ports.length, 1);
  assert.deepEqual(stored, []);
  const unpaired = starter.overlay(connection.status);
  assert.deepEqual(unpaired, { state: 'unpaired', url: LOCAL });
  assert.equal(needsPairing(unpaired), true);
  // the user pastes a token for a service that then stops: no second ask on its own
  connection.set({ state: 'offline', code: 'offline', url: LOCAL, message: 'Server not running.' });
  await tick();
  assert.equal(ports.length, 1);
  assert.match(describeStatus(starter.overlay(connection.status)).detail, /Server not running\. Run `tiangong install` once/);
});

test('the host\'s failure to start the service shows in the status detail', async () => {
  const failing = (port, message) => port.reply({ type: 'error', id: message.id, code: 'bad_settings', message: 'serve.json: port must be a whole number' });
  const { starter, connection } = starterWith({ state: 'offline', code: 'offline', url: LOCAL }, failing);
  starter.wanted();
  await tick();
  const { detail } = describeStatus(starter.overlay(connection.status));
  assert.match(detail, /Tiangong could not be started: serve\.json: port must be a whole number/);
  // and a success clears it
  connection.set({ state: 'connected', url: LOCAL });
  assert.equal(starter.overlay(connection.status).hostProblem, undefined);
});

// -- the connection holds requests while the service starts -------------------------------

test('a request sent while the host starts the service waits past its usual wait and goes through', async () => {
  const codec = await realCodec();
  const sockets = [];
  class Socket {
    constructor(url) { this.url = url; this.sent = []; sockets.push(this); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { this.onclose?.({}); }
  }
  const clock = new ManualClock();
  const connection = new Connection({ codec, WebSocketImpl: Socket, clock, client: { name: 't', version: '1' } });
  connection.configure({ url: LOCAL, token: '' });
  assert.equal(connection.status.state, State.UNPAIRED);
  let started;
  connection.waitFor(new Promise((resolve) => { started = resolve; }));
  const sent = connection.send({ type: 'cancel', id: 'r1' }, { waitMs: 10 });
  clock.fireAll(); // the usual wait is over: still waiting, the start is not
  connection.configure({ url: LOCAL, token: 'from-host' });
  started();
  await tick();
  const socket = sockets.at(-1);
  socket.onopen();
  socket.onmessage({
    data: JSON.stringify({
      type: 'welcome', protocol: 1, server: { version: '0.1.0' },
      engine: { name: 'extractive', model: 'm', capabilities: ['ask', 'summarize'], context_tokens: 100, state: 'ready' },
      limits: { page_frame_bytes: 5000, frame_bytes: 1000, requests_per_connection: 8 },
    }),
  });
  await sent;
  assert.deepEqual(socket.sent.map((f) => f.type), ['hello', 'cancel']);
  assert.equal(socket.sent[0].token, 'from-host');
});

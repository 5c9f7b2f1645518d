// The one WebSocket to the service: hello with the pairing token, welcome/status bookkeeping,
// automatic reconnect with jittered exponential backoff. It lives in the service worker (or a
// panel), never in a content script, whose socket would carry the page's origin.
// No browser globals are read here: the socket class, timers and the health probe are passed
// in, so the node tests drive every path with fakes of exactly those three seams.

import { PROTOCOL_VERSION, ProtocolError } from './codec.js';
import { t } from './i18n.js';
import { frameLimits } from './limits.js';

export const DEFAULT_SERVER_URL = 'ws://127.0.0.1:8765/ws';
export const START_COMMAND = 'make run';
export const START_COMMAND_ALT = 'tiangong serve';

export const State = Object.freeze({
  UNPAIRED: 'unpaired', // no token yet: nothing to connect with
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  OFFLINE: 'offline', // the server is not reachable; retrying
  REFUSED: 'refused', // the server said no (token, protocol): retrying would not help
});

const FATAL_CODES = new Set(['unauthorized', 'unsupported']);

export class ConnectionError extends Error {
  constructor(message, code = 'offline') {
    super(message);
    this.name = 'ConnectionError';
    this.code = code;
  }
}

/** Delay before retry number `attempt` (0-based): doubling from initialMs up to maxMs, ±25%. */
export function backoffDelay(attempt, { initialMs, maxMs }, random = Math.random) {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/** The HTTP base of a ws:// URL, for the health probe (ws://h:p/ws -> http://h:p). */
export function httpBase(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return url.origin;
}

export function offlineMessage(url) {
  return t('serverNotRunning', url, `\`${START_COMMAND}\``, `\`${START_COMMAND_ALT}\``);
}

export class Connection {
  constructor({
    codec,
    WebSocketImpl,
    clock = { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t), now: () => Date.now() },
    random = Math.random,
    probe = null,
    client = { name: 'tiangong-extension', version: '0' },
    backoff = { initialMs: 500, maxMs: 5000 },
    handshakeTimeoutMs = 5000,
  }) {
    Object.assign(this, { codec, WebSocketImpl, clock, random, probe, client, backoff, handshakeTimeoutMs });
    this.url = DEFAULT_SERVER_URL;
    this.token = '';
    this.socket = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.handshakeTimer = null;
    this.statusListeners = new Set();
    this.frameListeners = new Set();
    this.waiters = new Set();
    // While the service is being started for us (lib/native-link.js), requests wait for it.
    this.starting = null;
    // What the current socket's welcome (and later status frames) said; null without one.
    this.session = null;
    // The frame limits of the last welcome: they still size requests while reconnecting.
    this.serverLimits = {};
    this.current = { state: State.UNPAIRED, url: this.url, message: t('notPairedYet') };
  }

  get status() {
    return { ...this.current };
  }

  /** Frame sizes the service takes: its last welcome's, else the schema's defaults. */
  get limits() {
    return frameLimits(this.codec.limits, this.serverLimits);
  }

  onStatus(listener) {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** `listener(frame)` for request frames; `listener(null, {lost: true})` when the socket drops. */
  onFrame(listener) {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  /** Sets the server URL and token; reconnects when either changed. */
  configure({ url, token }) {
    const next = { url: url || DEFAULT_SERVER_URL, token: token || '' };
    if (next.url === this.url && next.token === this.token && this.current.state !== State.UNPAIRED) return;
    this.url = next.url;
    this.token = next.token;
    this.attempt = 0;
    this.serverLimits = {}; // another server, or another pairing: its welcome will say
    this.drop();
    if (!this.token) {
      this.update(State.UNPAIRED, { message: t('notPairedHelp') });
      return;
    }
    this.open();
  }

  /** Retry at once instead of waiting out the backoff (the user is looking). */
  connectNow() {
    if (this.current.state === State.OFFLINE && this.token) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.open();
    }
  }

  /** Sends one client frame, waiting up to `waitMs` for a connection first. */
  async send(frame, { waitMs = 4000 } = {}) {
    const text = this.codec.encodeClient(frame, this.limits);
    if (this.current.state !== State.CONNECTED) {
      this.connectNow();
      await this.waitConnected(waitMs);
    }
    this.socket.send(text);
  }

  waitConnected(waitMs) {
    if (this.current.state === State.CONNECTED) return Promise.resolve();
    if (this.isFinal() && !this.starting) {
      return Promise.reject(new ConnectionError(this.current.message, this.current.state));
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      const expire = () => {
        if (this.starting) {
          // Not yet: the wait starts over once the start is over (whichever way it went).
          const again = () => {
            if (this.waiters.has(waiter)) waiter.timer = this.clock.setTimeout(expire, waitMs);
          };
          this.starting.then(again, again);
          return;
        }
        this.waiters.delete(waiter);
        reject(new ConnectionError(this.current.message ?? offlineMessage(this.url), this.current.state));
      };
      waiter.timer = this.clock.setTimeout(expire, waitMs);
      this.waiters.add(waiter);
    });
  }

  /** The service is being started (`promise` settles when that is over): until then requests
   * wait for the connection instead of failing after their usual wait. */
  waitFor(promise) {
    this.starting = promise;
    const over = () => {
      if (this.starting === promise) this.starting = null;
    };
    promise.then(over, over);
  }

  isFinal() {
    return this.current.state === State.UNPAIRED || this.current.state === State.REFUSED;
  }

  close() {
    this.drop();
    this.update(State.OFFLINE, { message: t('closed') });
  }

  // -- internals ----------------------------------------------------------------------------

  /**
   * Sets the status to a whole new one: `state`, this URL and `fields`, plus the session's
   * engine while connected. Nothing of the previous status is carried over, so a stale
   * `code` (say `unauthorized`) cannot outlive the refusal that set it.
   */
  update(state, fields) {
    const connected = state === State.CONNECTED && this.session ? this.session : {};
    this.current = { state, url: this.url, ...connected, ...fields };
    for (const waiter of this.waiters) {
      if (this.current.state === State.CONNECTED) waiter.resolve();
      else if (this.isFinal() && !this.starting) {
        waiter.reject(new ConnectionError(this.current.message, this.current.state));
      } else continue;
      this.clock.clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
    }
    for (const listener of this.statusListeners) listener(this.status);
  }

  drop() {
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.handshakeTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    this.session = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close(1000, 'reconfigured');
      } catch {
        // a socket that never opened may refuse to close; it is dropped either way
      }
      this.lost();
    }
  }

  open() {
    let socket;
    try {
      socket = new this.WebSocketImpl(this.url);
    } catch (error) {
      this.update(State.REFUSED, { message: t('badServerUrl', this.url, error.message) });
      return;
    }
    this.socket = socket;
    let opened = false;
    this.update(State.CONNECTING, { message: t('connectingTo', this.url), attempt: this.attempt });
    this.handshakeTimer = this.clock.setTimeout(() => {
      if (this.socket === socket) socket.close(4000, 'no welcome in time');
    }, this.handshakeTimeoutMs);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      opened = true;
      socket.send(this.codec.encodeClient({ type: 'hello', protocol: PROTOCOL_VERSION, token: this.token, client: this.client }));
    };
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onerror = () => {}; // onclose follows and says what to do
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.session = null;
      this.clock.clearTimeout(this.handshakeTimer);
      const wasConnected = this.current.state === State.CONNECTED;
      this.lost();
      if (this.current.state === State.REFUSED) return;
      if (wasConnected) this.attempt = 0;
      this.scheduleRetry(opened ? t('connectionLostShort') : null);
    };
  }

  lost() {
    for (const listener of this.frameListeners) listener(null, { lost: true });
  }

  receive(data) {
    let frame;
    try {
      frame = this.codec.decodeServer(data);
    } catch (error) {
      const requestId = error instanceof ProtocolError ? error.requestId : null;
      for (const listener of this.frameListeners) listener(null, { invalid: error.message, requestId });
      return;
    }
    if (frame.type === 'welcome') {
      this.clock.clearTimeout(this.handshakeTimer);
      this.attempt = 0;
      this.serverLimits = frame.limits ?? {};
      this.session = { engine: frame.engine, serverVersion: frame.server.version };
      this.update(State.CONNECTED, { message: t('connectedDot') });
    } else if (frame.type === 'status') {
      this.session = { ...this.session, engine: frame.engine };
      const loading = frame.engine.state === 'loading' && frame.loading ? { loading: frame.loading } : {};
      this.update(State.CONNECTED, { message: t('connectedDot'), ...loading });
    } else if (frame.type === 'error' && frame.id === undefined) {
      // A connection-level refusal: the socket closes right after it.
      const state = FATAL_CODES.has(frame.code) ? State.REFUSED : this.current.state;
      this.update(state, { message: frame.message, code: frame.code });
    } else {
      for (const listener of this.frameListeners) listener(frame);
    }
  }

  async scheduleRetry(reason) {
    const delay = backoffDelay(this.attempt, this.backoff, this.random);
    this.attempt += 1;
    let message = reason ? `${reason} ${offlineMessage(this.url)}` : offlineMessage(this.url);
    const token = this.token;
    this.update(State.OFFLINE, { message, retryInMs: delay, code: 'offline' });
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
    if (this.probe) {
      // Tell "not running" from "running but refusing this extension" (Origin check).
      const verdict = await this.probe(httpBase(this.url)).catch(() => null);
      if (verdict?.forbidden && this.token === token && this.current.state === State.OFFLINE) {
        message = verdict.message;
        this.update(State.OFFLINE, { message, retryInMs: delay, code: 'forbidden' });
      }
    }
  }
}

/**
 * What a `/health` answer says of this extension's origin. Refused: a 403 (Chromium's fetch
 * carries the extension's Origin, which the service checks), or `origin_allowed: false` (Firefox
 * sends no Origin on an add-on's fetch, only on its WebSocket upgrade, so the probe names the
 * origin in `?origin=`). A service too old to say is taken as not refusing.
 */
export function originVerdict(status, body, base, origin) {
  if (status === 403 || (status === 200 && body?.origin_allowed === false)) {
    return {
      forbidden: true,
      message: t('originRefused', base, origin, `\`tiangong serve --allow-origin ${origin}\``),
    };
  }
  return { forbidden: false };
}

/** The browser's health probe: does the service at `base` refuse `origin`? null: no answer. */
export async function probeHealth(base, origin = globalThis.location?.origin ?? '') {
  try {
    const query = origin ? `?origin=${encodeURIComponent(origin)}` : '';
    const response = await fetch(`${base}/health${query}`, { cache: 'no-store' });
    const body = response.status === 200 ? await response.json().catch(() => null) : null;
    return originVerdict(response.status, body, base, origin);
  } catch {
    return null;
  }
}

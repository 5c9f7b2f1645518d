// Zero set-up: when the service on this computer does not answer, or there is no token or the
// service refused it, the worker asks the native host (`tiangong native-host`, registered with
// the browser by `tiangong install`) for the service's URL and token; the host starts the
// service when it is not running (docs/native-host.md). Without a host the browser refuses
// the port and pairing works as before. A server URL that is not loopback (a team server) is
// never handed to the host: it keeps token pairing.
// No browser globals are read here: connectNative, storage and the clock are passed in, so the
// node tests drive every path with a fake port.

import { t } from './i18n.js';

export const HOST_NAME = 'local.tiangong.host';
export const INSTALL_COMMAND = 'tiangong install';
// The host waits up to 90 s for a service it started to answer; a little longer here.
export const REPLY_TIMEOUT_MS = 100_000;
const MAX_TOKEN = 512;
// The only URL shape the host answers with, and the only one taken from it: loopback.
const SERVICE_URL = /^ws:\/\/127\.0\.0\.1:(\d{1,5})\/ws$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const REAL_CLOCK = { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (id) => clearTimeout(id) };

export class NativeError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'NativeError';
    this.code = code; // 'unavailable' (no host), 'timeout', 'bad_reply', or the host's own code
  }
}

/** Whether a server URL names this computer (the host may replace it with its own). */
export function isLoopbackUrl(text) {
  try {
    return LOOPBACK_HOSTS.has(new URL(text).hostname);
  } catch {
    return false;
  }
}

/** Whether this connection status is one the host can mend: no token, token refused, or
 * nothing answering (or the origin refused: the host registers Firefox's), on loopback. */
export function hostCanHelp(status) {
  if (!isLoopbackUrl(status.url)) return false;
  if (status.state === 'unpaired') return true;
  if (status.state === 'refused') return status.code === 'unauthorized';
  return status.state === 'offline';
}

/** The URL and token of a `service` reply, or a NativeError: only a loopback URL is taken. */
export function serviceFromReply(reply) {
  const match = typeof reply.url === 'string' ? SERVICE_URL.exec(reply.url) : null;
  const port = match ? Number(match[1]) : 0;
  if (port < 1 || port > 65535) throw new NativeError('bad_reply', t('hostBadReply', 'url'));
  if (typeof reply.token !== 'string' || !reply.token || reply.token.length > MAX_TOKEN) {
    throw new NativeError('bad_reply', t('hostBadReply', 'token'));
  }
  return { url: reply.url, token: reply.token, started: reply.started === true };
}

/** One question to the host over a fresh port: resolves with {url, token, started}. */
export class NativeLink {
  /**
   * `connectNative(name)` returns a port (runtime.connectNative); `lastError()` the reason a
   * port closed (Chromium: runtime.lastError; Firefox: port.error); `origin` is sent where the
   * host must register it (Firefox's moz-extension:// origin), else null.
   */
  constructor({ connectNative, lastError = (port) => port.error, origin = null, clock = REAL_CLOCK, timeoutMs = REPLY_TIMEOUT_MS }) {
    Object.assign(this, { connectNative, lastError, origin, clock, timeoutMs });
    this.count = 0;
  }

  ask({ onStarting = () => {} } = {}) {
    const id = `c${++this.count}`;
    return new Promise((resolve, reject) => {
      let port;
      let timer = null;
      let done = false;
      const finish = (error, value) => {
        if (done) return;
        done = true;
        this.clock.clearTimeout(timer);
        try {
          port?.disconnect(); // the host exits; a service it started keeps running
        } catch {
          // already closed
        }
        if (error) reject(error);
        else resolve(value);
      };
      try {
        port = this.connectNative(HOST_NAME);
      } catch (error) {
        finish(new NativeError('unavailable', error?.message ?? String(error)));
        return;
      }
      timer = this.clock.setTimeout(() => finish(new NativeError('timeout', t('hostTimeout'))), this.timeoutMs);
      port.onDisconnect.addListener((closed) => {
        const reason = this.lastError(closed ?? port);
        finish(new NativeError('unavailable', reason?.message ?? t('hostGone')));
      });
      port.onMessage.addListener((message) => {
        if (message?.id !== undefined && message.id !== id) return;
        if (message?.type === 'starting') onStarting(message.port);
        else if (message?.type === 'service') {
          try {
            finish(null, serviceFromReply(message));
          } catch (error) {
            finish(error);
          }
        } else if (message?.type === 'error') {
          finish(new NativeError(String(message.code ?? 'error'), String(message.message ?? '')));
        }
      });
      const request = { type: 'connect', id };
      if (this.origin) request.origin = this.origin;
      port.postMessage(request);
    });
  }
}

/**
 * Decides when to ask the host and what to do with its answer. It asks only when someone is
 * looking (`wanted()`: a panel opened, Retry, a request) and the status is one the host can
 * mend; at most once per `wanted()`, so a refusal after its answer cannot loop. The answer is
 * stored (`store({serverUrl, token})`) and the connection pointed at it.
 */
export class NativeStarter {
  constructor({ link, connection, store, onChange = () => {} }) {
    Object.assign(this, { link, connection, store, onChange });
    this.phase = 'idle'; // 'asking' | 'starting' (the host is starting the service)
    this.pending = false;
    this.problem = null; // the last failure, {code, message}; null after a success
    this.started = false; // the host's last answer started the service (its model may load)
    connection.onStatus((status) => this.observe(status));
  }

  /** Someone is looking: ask the host once if the connection needs it (now or soon). */
  wanted() {
    this.pending = true;
    this.observe(this.connection.status);
  }

  observe(status) {
    if (status.state === 'connected') {
      this.pending = false;
      return;
    }
    if (this.pending && this.phase === 'idle' && hostCanHelp(status)) {
      this.pending = false;
      this.connection.waitFor(this.ask());
    }
  }

  async ask() {
    this.phase = 'asking';
    this.onChange();
    try {
      const service = await this.link.ask({
        onStarting: () => {
          this.phase = 'starting';
          this.onChange();
        },
      });
      this.problem = null;
      this.started = service.started;
      await this.store({ serverUrl: service.url, token: service.token });
      this.connection.configure({ url: service.url, token: service.token });
      this.connection.connectNow();
    } catch (error) {
      this.problem = { code: error?.code ?? 'error', message: error?.message ?? String(error) };
    } finally {
      this.phase = 'idle';
      this.onChange();
    }
  }

  /** The status panels see: the connection's, told that the host is starting the service, or
   * with what the host said when it could not help. */
  overlay(status) {
    if (status.state === 'connected') {
      // A service the host just started is still starting while its model loads.
      return this.started && status.engine?.state === 'loading' ? { ...status, code: 'starting' } : status;
    }
    if (this.phase === 'starting') return { ...status, state: 'connecting', code: 'starting', message: t('statusStarting') };
    if (this.phase === 'asking') return { ...status, state: 'connecting', code: 'asking' };
    if (!this.problem || !hostCanHelp(status)) return status;
    if (this.problem.code === 'unavailable') {
      return status.state === 'offline' ? { ...status, hostProblem: t('hostMissing', `\`${INSTALL_COMMAND}\``) } : status;
    }
    return { ...status, hostProblem: t('hostFailed', this.problem.message) };
  }
}

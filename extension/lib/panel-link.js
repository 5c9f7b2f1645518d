// The panel's side of the panel messages (lib/panel-messages.js): one runtime port to the
// service worker, ops that resolve with their reply or reject with a PanelError (the worker's
// error reply, no reply in time, or the port closing first), pushes handed to `onPush`, and a
// new port when the old one closes (the worker stopped: connecting wakes it). No browser API
// is read here: the port factory and the clock are passed in.

import { t } from './i18n.js';
import { ErrorCode, PanelError, payloadProblem, replyTimeoutMs, requestMessage } from './panel-messages.js';

const REAL_CLOCK = { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (id) => clearTimeout(id) };

export class PanelLink {
  /**
   * `connect()` returns a new port (runtime.connect({name: PORT_NAME})); `onOpen()` runs after
   * every new port (the panel attaches there); `onPush(kind, value)` gets the worker's pushes.
   */
  constructor({ connect, onOpen = () => {}, onPush = () => {}, clock = REAL_CLOCK, reopenMs = 200, timeoutFor = replyTimeoutMs }) {
    Object.assign(this, { connect, onOpen, onPush, clock, reopenMs, timeoutFor });
    this.port = null;
    this.seq = 0;
    this.waiting = new Map(); // seq -> { resolve, reject, timer }
    this.reopenTimer = null;
  }

  /** Opens a port (closing one that is open) and runs `onOpen`; throws when none can be had. */
  open() {
    this.clock.clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    this.drop(new PanelError(ErrorCode.DISCONNECTED, t('extensionRestarted')));
    const port = this.connect();
    this.port = port;
    port.onMessage.addListener((message) => {
      if (this.port === port) this.receive(message);
    });
    port.onDisconnect.addListener(() => {
      if (this.port !== port) return;
      this.port = null;
      this.failAll(new PanelError(ErrorCode.DISCONNECTED, t('extensionRestarted')));
      this.reopenTimer = this.clock.setTimeout(() => this.reopen(), this.reopenMs);
    });
    this.onOpen();
  }

  reopen() {
    try {
      this.open();
    } catch {
      // The extension is gone (reloaded, removed): ops now fail with what `request` says.
    }
  }

  /** Closes the port without opening another. */
  drop(reason) {
    const port = this.port;
    this.port = null;
    if (port) {
      try {
        port.disconnect();
      } catch {
        // already closed
      }
    }
    this.failAll(reason);
  }

  failAll(reason) {
    for (const waiter of this.waiting.values()) {
      this.clock.clearTimeout(waiter.timer);
      waiter.reject(reason);
    }
    this.waiting.clear();
  }

  /** Sends `op`; resolves with the reply's value, rejects with a PanelError. */
  request(op, payload = {}) {
    const problem = payloadProblem(op, payload);
    if (problem) return Promise.reject(new PanelError(ErrorCode.BAD_REQUEST, problem));
    if (!this.port) {
      try {
        this.open();
      } catch (error) {
        return Promise.reject(new PanelError(ErrorCode.DISCONNECTED, t('extensionUnreachable', error?.message ?? String(error))));
      }
    }
    this.seq += 1;
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.waiting.delete(seq);
        reject(new PanelError(ErrorCode.TIMEOUT, t('workerNotAnswering')));
      }, this.timeoutFor(op));
      this.waiting.set(seq, { resolve, reject, timer });
      try {
        this.port.postMessage(requestMessage(seq, op, payload));
      } catch (error) {
        this.clock.clearTimeout(timer);
        this.waiting.delete(seq);
        reject(new PanelError(ErrorCode.DISCONNECTED, t('extensionUnreachable', error?.message ?? String(error))));
      }
    });
  }

  receive(message) {
    if (message?.push) {
      this.onPush(message.push, message.value);
      return;
    }
    const waiter = this.waiting.get(message?.reply);
    if (!waiter) return; // a reply after its timeout
    this.waiting.delete(message.reply);
    this.clock.clearTimeout(waiter.timer);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new PanelError(message.error?.code ?? ErrorCode.FAILED, message.error?.message ?? t('somethingFailed')));
  }
}

// The service worker's side of the panel messages (lib/panel-messages.js): the open panel
// ports, which tab each shows, one reply to every op (an error reply when the op does not fit
// its shape, fails, or the worker could not start), and the pushes: a tab's thread to the
// panels showing it, an answer's changes (coalesced while it streams), the status to all.
// No browser API is read here: ports and the clock are passed in.

import { t } from './i18n.js';
import { ErrorCode, Op, PORT_NAME, Push, errorReply, okReply, payloadProblem, pushMessage } from './panel-messages.js';

const REAL_CLOCK = { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (id) => clearTimeout(id) };

export class PanelHub {
  /**
   * `handlers[op](payload, panel)` returns the reply's value (or a promise of it); `ready()`
   * resolves once the worker has started and rejects when it could not (asked again per op,
   * so a later op retries). `answerDelayMs`: how often a streaming answer is pushed at most.
   */
  constructor({ handlers, ready = () => Promise.resolve(), clock = REAL_CLOCK, answerDelayMs = 50 }) {
    Object.assign(this, { handlers, ready, clock, answerDelayMs });
    this.panels = new Set(); // { port, tabId }
    this.soon = new Map(); // answer id -> () => its view now (null once it is gone)
    this.soonTimer = null;
  }

  /** Takes a port from runtime.onConnect; ports of another name are left alone. */
  accept(port) {
    if (port.name !== PORT_NAME) return false;
    const panel = { port, tabId: null };
    this.panels.add(panel);
    port.onDisconnect.addListener(() => this.panels.delete(panel));
    port.onMessage.addListener((message) => this.serve(panel, message));
    return true;
  }

  async serve(panel, message) {
    const seq = message?.seq;
    if (!Number.isInteger(seq) || seq < 1) {
      console.warn('Tiangong: a panel message without a seq was dropped', message);
      return;
    }
    const handler = Object.hasOwn(this.handlers, message.op) ? this.handlers[message.op] : null;
    const problem = payloadProblem(message.op, message.payload) ?? (handler ? null : `${message.op} is not served by this worker`);
    if (problem) {
      this.post(panel, errorReply(seq, ErrorCode.BAD_REQUEST, problem));
      return;
    }
    try {
      await this.ready();
    } catch (error) {
      this.post(panel, errorReply(seq, ErrorCode.NOT_STARTED, t('workerNotStarted', error?.message ?? String(error))));
      return;
    }
    if (message.op === Op.ATTACH) panel.tabId = message.payload.tabId ?? null;
    try {
      const value = await handler(message.payload, panel);
      this.post(panel, okReply(seq, value));
    } catch (error) {
      this.post(panel, errorReply(seq, ErrorCode.FAILED, error?.message || t('somethingFailed')));
    }
  }

  post(panel, message) {
    if (!this.panels.has(panel)) return;
    try {
      panel.port.postMessage(message);
    } catch {
      this.panels.delete(panel); // closed in the meantime
    }
  }

  toTab(tabId, message) {
    for (const panel of this.panels) {
      if (panel.tabId !== null && String(panel.tabId) === String(tabId)) this.post(panel, message);
    }
  }

  pushStatus(status) {
    for (const panel of this.panels) this.post(panel, pushMessage(Push.STATUS, status));
  }

  /** A tab's whole thread (answers added, replaced, or a conversation opened). */
  pushThread(thread) {
    this.toTab(thread.tabId, pushMessage(Push.THREAD, thread));
  }

  /** One answer changed: pushed now (a pending streaming push of it is then not needed). */
  pushAnswer(answer) {
    this.soon.delete(answer.id);
    this.toTab(answer.tabId, pushMessage(Push.ANSWER, answer));
  }

  /** A streaming answer grew: pushed within `answerDelayMs`, as it is by then. */
  pushAnswerSoon(id, read) {
    this.soon.set(id, read);
    this.soonTimer ??= this.clock.setTimeout(() => this.flush(), this.answerDelayMs);
  }

  flush() {
    this.clock.clearTimeout(this.soonTimer);
    this.soonTimer = null;
    const due = [...this.soon.values()];
    this.soon.clear();
    for (const read of due) {
      const answer = read();
      if (answer) this.toTab(answer.tabId, pushMessage(Push.ANSWER, answer));
    }
  }
}

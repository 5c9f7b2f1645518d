// The background of the extension: owns the one WebSocket (lib/connection.js), the book of
// answers (lib/request-book.js), the context menu and the shortcuts. Panels connect with a
// runtime port named 'panel', ask for things and get the book's changes pushed back.
// Listeners are registered synchronously at the top level, as MV3 requires; they await
// `ready` (schemas, settings, restored answers) before they act.

import { Assistant } from './lib/assistant.js';
import { api, openPanelWindow, openSidebar, sidebarKind } from './lib/browser-api.js';
import { Codec, loadSchemas } from './lib/codec.js';
import { Connection, probeHealth } from './lib/connection.js';
import { createMenus, parseMenuId } from './lib/menus.js';
import { RequestBook } from './lib/request-book.js';
import { loadSettings } from './lib/settings.js';

const SNAPSHOT_KEY = 'requestBook';
// When this worker started: a panel shows it, so a restart is visible (and testable).
const STARTED_AT = Date.now();
const ports = new Set(); // { port, tabId }

function broadcast(tabId, message) {
  for (const entry of ports) {
    if (entry.tabId === null || String(entry.tabId) === String(tabId)) entry.port.postMessage(message);
  }
}

// The book goes to storage.session (kept across worker restarts, gone with the browser):
// at once when an answer ends, at most every 250 ms while one streams.
let saveTimer = null;
function saveNow() {
  clearTimeout(saveTimer);
  saveTimer = null;
  api.storage.session?.set({ [SNAPSHOT_KEY]: book.snapshot() }).catch(() => {});
}
function saveSoon() {
  saveTimer ??= setTimeout(saveNow, 250);
}

const book = new RequestBook({
  onChange: (record) => {
    broadcast(record.tabId, { event: 'request', request: record });
    if (record.state === 'streaming') saveSoon();
    else saveNow();
  },
  onDelta: (record, text) => {
    broadcast(record.tabId, { event: 'delta', id: record.id, text });
    saveSoon();
  },
});

let connection = null;
let assistant = null;

const ready = (async () => {
  const codec = new Codec(await loadSchemas());
  const { version } = api.runtime.getManifest();
  connection = new Connection({
    codec,
    WebSocketImpl: WebSocket,
    probe: (base) => probeHealth(base, `${location.protocol}//${location.host}`),
    client: { name: 'tiangong-extension', version },
  });
  connection.onStatus((status) => {
    for (const { port } of ports) port.postMessage({ event: 'status', status });
  });
  assistant = new Assistant({ connection, book, limits: codec.limits });
  const stored = await api.storage.session?.get(SNAPSHOT_KEY).catch(() => ({}));
  book.load(stored?.[SNAPSHOT_KEY]);
  const settings = await loadSettings(api.storage.local);
  connection.configure({ url: settings.serverUrl, token: settings.token });
})();
ready.catch((error) => console.error('Tiangong could not start', error));

api.storage.onChanged.addListener(async (changes, area) => {
  if (area !== 'local' || !(changes.serverUrl || changes.token)) return;
  await ready;
  const settings = await loadSettings(api.storage.local);
  connection.configure({ url: settings.serverUrl, token: settings.token });
});

// -- toolbar button, install, shortcuts, context menu --------------------------------------

api.runtime.onInstalled.addListener(() => {
  createMenus(api.contextMenus);
  if (sidebarKind() === 'side_panel') api.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch(() => {});
});

api.action?.onClicked.addListener((tab) => {
  // Reached only where the button does not open the panel by itself.
  if (sidebarKind() === 'firefox') api.sidebarAction.toggle();
  else openPanelWindow(tab);
});

api.commands?.onCommand.addListener(async (command, tab) => {
  if (command !== 'summarize-page') return;
  const target = tab ?? (await api.tabs.query({ active: true, lastFocusedWindow: true }))[0];
  if (!target) return;
  openSidebar(target);
  await ready;
  const { summaryOptions } = await loadSettings(api.storage.local);
  assistant.summarize(target.id, summaryOptions);
});

api.contextMenus.onClicked.addListener(async (info, tab) => {
  const choice = parseMenuId(info.menuItemId);
  if (!choice || !tab) return;
  openSidebar(tab); // first, while the click still counts as the user's gesture
  await ready;
  const settings = await loadSettings(api.storage.local);
  if (choice.kind === 'rewrite') {
    api.storage.local.set({ rewriteOptions: choice.options });
    await assistant.fromMenu('rewrite', tab, info, choice.options);
  } else if (choice.kind === 'translate') {
    await assistant.fromMenu('translate', tab, info, { output_language: choice.language });
  } else if (choice.kind === 'summary-into') {
    await assistant.summarize(tab.id, { ...settings.summaryOptions, output_language: choice.language });
  } else {
    await assistant.fromMenu(choice.kind, tab, info, settings.summaryOptions);
  }
});

// -- panels ------------------------------------------------------------------------------

const handlers = {
  async attach(entry, msg) {
    entry.tabId = msg.tabId ?? null;
    connection.connectNow();
    const { question, minTabs, maxTabs } = assistant.limits;
    const limits = { question, minTabs, maxTabs };
    return { event: 'snapshot', tabId: entry.tabId, thread: book.view(entry.tabId), status: connection.status, sidebar: sidebarKind(), workerStarted: STARTED_AT, limits };
  },
  async summarize(entry, msg) {
    return { event: 'started', id: await assistant.summarize(msg.tabId, msg.options, { tabIds: msg.tabIds }) };
  },
  async ask(entry, msg) {
    const id = await assistant.ask(msg.tabId, msg.question, { tabIds: msg.tabIds, outputLanguage: msg.outputLanguage });
    return { event: 'started', id };
  },
  async 'translate-selection'(entry, msg) {
    const tab = await api.tabs.get(msg.tabId);
    const id = await assistant.fromMenu('translate', tab, { selectionText: '', frameId: 0 }, { output_language: msg.language }, { requireText: true });
    return { event: 'started', id };
  },
  async translate(entry, msg) {
    return { event: 'started', id: await assistant.translateAnswer(msg.id, msg.language) };
  },
  async cancel(entry, msg) {
    assistant.cancel(msg.id, msg.text);
  },
  async retry(entry, msg) {
    return { event: 'started', id: await assistant.retry(msg.id, msg.options) };
  },
  async 'new-conversation'(entry, msg) {
    book.newConversation(msg.tabId);
    return { event: 'snapshot', tabId: msg.tabId, thread: book.view(msg.tabId), status: connection.status };
  },
  async history() {
    const reply = await assistant.history();
    return { event: 'history', conversations: reply.conversations ?? [] };
  },
  async 'open-conversation'(entry, msg) {
    await assistant.openConversation(msg.tabId, msg.conversationId);
    return { event: 'snapshot', tabId: msg.tabId, thread: book.view(msg.tabId), status: connection.status };
  },
  async cite(entry, msg) {
    const where = { requestId: msg.requestId ?? null, source: msg.source ?? null, page: msg.page ?? null };
    return { event: 'cited', n: msg.n, ...(await assistant.cite(msg.tabId, msg.quote, where)) };
  },
  async replace(entry, msg) {
    return { event: 'replaced', id: msg.id, ...(await assistant.replace(msg.id)) };
  },
  async reconnect() {
    connection.connectNow();
  },
  async ping() {
    // The panel pings while it is open: a message resets the worker's idle timer, so the
    // socket stays up while someone is looking.
  },
};

api.runtime.onConnect.addListener((port) => {
  if (port.name !== 'panel') return;
  const entry = { port, tabId: null };
  ports.add(entry);
  port.onDisconnect.addListener(() => ports.delete(entry));
  port.onMessage.addListener(async (msg) => {
    await ready;
    const handler = handlers[msg.op];
    if (!handler) return;
    try {
      const reply = await handler(entry, msg);
      if (reply && ports.has(entry)) port.postMessage({ ...reply, replyTo: msg.seq });
    } catch (error) {
      if (ports.has(entry)) port.postMessage({ event: 'failed', op: msg.op, message: error.message, replyTo: msg.seq });
    }
  });
});



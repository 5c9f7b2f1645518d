// The background of the extension: owns the one WebSocket (lib/connection.js), the book of
// answers (lib/request-book.js), the context menu and the shortcuts. Panels connect a runtime
// port, send the ops of lib/panel-messages.js and get the book's views pushed back
// (lib/panel-hub.js). When the service on this computer needs starting or pairing, it asks the
// native host (lib/native-link.js). Listeners are registered synchronously at the top level, as MV3
// requires; they await `ready()` (schemas, settings, restored answers) before they act.

import { STORAGE_KEY as ACTIONS_KEY, loadActions } from './lib/actions.js';
import { Assistant } from './lib/assistant.js';
import { api, openPanelWindow, openSidebar, sidebarKind } from './lib/browser-api.js';
import { Codec, loadSchemas } from './lib/codec.js';
import { Connection, probeHealth } from './lib/connection.js';
import { createMenus, parseMenuId } from './lib/menus.js';
import { NativeLink, NativeStarter } from './lib/native-link.js';
import { PanelHub } from './lib/panel-hub.js';
import { Op } from './lib/panel-messages.js';
import { RequestBook, answerView } from './lib/request-book.js';
import { t } from './lib/i18n.js';
import { loadSettings } from './lib/settings.js';

const SNAPSHOT_KEY = 'requestBook';
// When this worker started: a panel shows it, so a restart is visible (and testable).
const STARTED_AT = Date.now();

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

// The book owns every answer; the hub pushes its views to the panels showing that tab.
const book = new RequestBook({
  onThread: (tabId) => {
    hub.pushThread(book.view(tabId));
    saveNow();
  },
  onChange: (record) => {
    hub.pushAnswer(answerView(record));
    if (record.state === 'streaming') saveSoon();
    else saveNow();
  },
  onDelta: (record) => {
    hub.pushAnswerSoon(record.id, () => book.answerView(record.id));
    saveSoon();
  },
});

let connection = null;
let assistant = null;
// Asks the native host to start the service and hand over URL + token (lib/native-link.js).
let starter = null;

// Start-up reads everything first and builds only once all of it came, so a start that failed
// (say the schema could not be read) leaves nothing half made, and the next call tries again.
let starting = null;
function ready() {
  starting ??= start().catch((error) => {
    console.error('Tiangong could not start', error);
    starting = null;
    throw error;
  });
  return starting;
}

async function start() {
  const schemas = await loadSchemas();
  const stored = await api.storage.session?.get(SNAPSHOT_KEY).catch(() => ({}));
  const settings = await loadSettings(api.storage.local);
  const codec = new Codec(schemas);
  const { version } = api.runtime.getManifest();
  connection = new Connection({
    codec,
    WebSocketImpl: WebSocket,
    probe: (base) => probeHealth(base, `${location.protocol}//${location.host}`),
    client: { name: 'tiangong-extension', version },
  });
  connection.onStatus((status) => hub.pushStatus(panelStatus(status)));
  starter = new NativeStarter({
    link: new NativeLink({
      connectNative: (name) => api.runtime.connectNative(name),
      // Chromium says why a port closed in runtime.lastError, Firefox in port.error.
      lastError: (port) => api.runtime.lastError ?? port?.error,
      origin: sidebarKind() === 'firefox' ? api.runtime.getURL('') : null,
    }),
    connection,
    store: (values) => api.storage.local.set(values),
    onChange: () => hub.pushStatus(panelStatus(connection.status)),
  });
  assistant = new Assistant({ connection, book, limits: codec.limits });
  book.load(stored?.[SNAPSHOT_KEY]);
  connection.configure({ url: settings.serverUrl, token: settings.token });
}

/** The connection's status as panels see it: with the native host's part (starting, failed). */
function panelStatus(status) {
  return starter ? starter.overlay(status) : status;
}

/** The user's actions as stored (lib/actions.js), checked against the schema's limits. */
async function userActions() {
  await ready();
  return loadActions(api.storage.local, { promptChars: assistant.limits.instruction });
}

async function findAction(actionId) {
  const action = (await userActions()).find((candidate) => candidate.id === actionId);
  if (!action) throw new Error(t('actionUnknown'));
  return action;
}

async function buildMenus() {
  createMenus(api.contextMenus, await userActions().catch(() => []));
}

api.storage.onChanged.addListener(async (changes, area) => {
  if (area === 'local' && changes[ACTIONS_KEY]) buildMenus();
  if (area !== 'local' || !(changes.serverUrl || changes.token)) return;
  await ready();
  const settings = await loadSettings(api.storage.local);
  connection.configure({ url: settings.serverUrl, token: settings.token });
});

// -- toolbar button, install, shortcuts, context menu --------------------------------------

api.runtime.onInstalled.addListener(() => {
  buildMenus();
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
  await ready();
  starter.wanted();
  const { summaryOptions } = await loadSettings(api.storage.local);
  assistant.summarize(target.id, summaryOptions);
});

api.contextMenus.onClicked.addListener(async (info, tab) => {
  const choice = parseMenuId(info.menuItemId);
  if (!choice || !tab) return;
  openSidebar(tab); // first, while the click still counts as the user's gesture
  await ready();
  starter.wanted();
  const settings = await loadSettings(api.storage.local);
  if (choice.kind === 'rewrite') {
    api.storage.local.set({ rewriteOptions: choice.options });
    await assistant.fromMenu('rewrite', tab, info, choice.options);
  } else if (choice.kind === 'translate') {
    await assistant.fromMenu('translate', tab, info, { output_language: choice.language });
  } else if (choice.kind === 'action') {
    const action = await findAction(choice.actionId);
    await assistant.runAction(action, tab, info, { outputLanguage: settings.summaryOptions.output_language });
  } else if (choice.kind === 'summary-into') {
    await assistant.summarize(tab.id, { ...settings.summaryOptions, output_language: choice.language });
  } else {
    await assistant.fromMenu(choice.kind, tab, info, settings.summaryOptions);
  }
});

// -- panels: the ops of lib/panel-messages.js ---------------------------------------------

// What a panel needs of the schema's limits (lib/limits.js).
function panelLimits() {
  const { question, minTabs, maxTabs, instruction } = assistant.limits;
  return { question, minTabs, maxTabs, instruction };
}

const handlers = {
  [Op.ATTACH]({ tabId = null }) {
    connection.connectNow();
    const thread = tabId === null ? null : book.view(tabId);
    return { thread, status: panelStatus(connection.status), sidebar: sidebarKind(), workerStarted: STARTED_AT, limits: panelLimits() };
  },
  async [Op.SUMMARIZE]({ tabId, options, tabIds }) {
    return { id: await assistant.summarize(tabId, options, { tabIds }) };
  },
  async [Op.ASK]({ tabId, question, tabIds, outputLanguage }) {
    return { id: await assistant.ask(tabId, question, { tabIds, outputLanguage }) };
  },
  async [Op.TRANSLATE_SELECTION]({ tabId, language }) {
    const tab = await api.tabs.get(tabId);
    const id = await assistant.fromMenu('translate', tab, { selectionText: '', frameId: 0 }, { output_language: language }, { requireText: true });
    return { id };
  },
  async [Op.TRANSLATE]({ id, language }) {
    return { id: await assistant.translateAnswer(id, language) };
  },
  async [Op.RUN_ACTION]({ tabId, actionId }) {
    const [tab, action, settings] = await Promise.all([api.tabs.get(tabId), findAction(actionId), loadSettings(api.storage.local)]);
    const info = { selectionText: '', frameId: 0 };
    return { id: await assistant.runAction(action, tab, info, { outputLanguage: settings.summaryOptions.output_language }) };
  },
  [Op.STOP]({ id, shownText }) {
    return { stopped: assistant.stop(id, shownText) };
  },
  async [Op.RETRY]({ id, options }) {
    return { id: await assistant.retry(id, options ?? {}) };
  },
  [Op.NEW_CONVERSATION]({ tabId }) {
    book.newConversation(tabId);
    return {};
  },
  async [Op.HISTORY]() {
    const reply = await assistant.history();
    return { conversations: reply.conversations ?? [] };
  },
  async [Op.OPEN_CONVERSATION]({ tabId, conversationId }) {
    await assistant.openConversation(tabId, conversationId);
    return {};
  },
  async [Op.CITE]({ tabId, n, quote, requestId, source, page, time }) {
    const where = { requestId: requestId ?? null, source: source ?? null, page: page ?? null, time: time ?? null };
    return { n, ...(await assistant.cite(tabId, quote, where)) };
  },
  async [Op.REPLACE]({ id }) {
    return { id, ...(await assistant.replace(id)) };
  },
  [Op.RECONNECT]() {
    connection.connectNow();
    return {};
  },
  [Op.PING]() {
    // The panel pings while it is open: a message resets the worker's idle timer, so the
    // socket stays up while someone is looking.
    return {};
  },
};

// The ops that open a panel or reach the service: each is someone looking, so the native host
// may be asked to start the service (lib/native-link.js).
const LOOKING = [
  Op.ATTACH, Op.RECONNECT, Op.SUMMARIZE, Op.ASK, Op.TRANSLATE_SELECTION, Op.TRANSLATE, Op.RUN_ACTION,
  Op.RETRY, Op.HISTORY, Op.OPEN_CONVERSATION,
];
for (const op of LOOKING) {
  const handler = handlers[op];
  handlers[op] = (payload, panel) => {
    starter.wanted();
    return handler(payload, panel);
  };
}

const hub = new PanelHub({ handlers, ready });
api.runtime.onConnect.addListener((port) => hub.accept(port));

// Start now (a failure is logged; the next panel op or listener tries again and says why).
ready().catch(() => {});

// The side panel (Chrome side_panel, Opera/Firefox sidebar_action, or a tab with ?tabId=N):
// a view of the service worker's answers for one tab. It holds no socket and no answer
// state of its own, so a panel that was closed and reopened re-attaches to an answer that is
// still streaming. <body> carries data-tab-id, data-connection, data-request-id and
// data-request-state for tests (and for anyone debugging) to wait on.

import { api } from '../lib/browser-api.js';
import { localize, t } from '../lib/i18n.js';
import { LANGUAGES } from '../lib/languages.js';
import { loadSettings } from '../lib/settings.js';
import { StatusView } from './status-view.js';
import { ThreadView } from './thread-view.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const fixedTab = params.has('tabId') ? Number(params.get('tabId')) : null;
const PING_MS = 20_000;

let tabId = fixedTab;
let port = null;
let seq = 0;
const waiting = new Map();
let current = null; // the latest answer in the thread
// Sizes from the protocol schema, as the worker read them (the attach reply); until it comes
// no set of tabs counts as several.
let limits = { minTabs: Infinity, maxTabs: 0 };

function applyLimits(given) {
  limits = given;
  $('question').maxLength = limits.question;
  $('tabs-hint').textContent = t('tabsPickerHint', limits.minTabs, limits.maxTabs);
  showChosenTabs();
}

localize();
const status = new StatusView({ root: $('status'), detail: $('status-detail'), pairing: $('pairing') });
const thread = new ThreadView({ root: $('thread'), act: request, onChange: showLatest });

function showLatest(record) {
  current = record;
  document.body.dataset.requestId = record?.id ?? '';
  document.body.dataset.requestState = record?.state ?? '';
  const streaming = record?.state === 'streaming';
  $('stop').hidden = !streaming;
  $('send').hidden = streaming;
}

function toast(message) {
  const node = $('toast');
  node.textContent = message;
  node.hidden = !message;
  clearTimeout(toast.timer);
  if (message) toast.timer = setTimeout(() => { node.hidden = true; }, 8000);
}

/** Sends one op to the service worker; resolves with its reply (if it sends one). */
function request(op, fields = {}) {
  seq += 1;
  const message = { op, seq, tabId, ...fields };
  const reply = new Promise((resolve) => waiting.set(seq, resolve));
  try {
    port.postMessage(message);
  } catch {
    connect();
    port.postMessage(message);
  }
  return reply;
}

function receive(msg) {
  const resolve = waiting.get(msg.replyTo);
  if (resolve) {
    waiting.delete(msg.replyTo);
    resolve(msg);
  }
  switch (msg.event) {
    case 'snapshot':
      if (String(msg.tabId) === String(tabId)) thread.reset(msg.thread);
      if (msg.workerStarted) document.body.dataset.workerStarted = String(msg.workerStarted);
      if (msg.limits) applyLimits(msg.limits);
      status.update(msg.status);
      break;
    case 'status':
      status.update(msg.status);
      break;
    case 'request':
      if (String(msg.request.tabId) === String(tabId)) thread.upsert(msg.request);
      break;
    case 'delta':
      thread.appendDelta(msg.id, msg.text);
      break;
    case 'cited':
      document.body.dataset.citation = msg.found ? `found-${msg.n}` : `missing-${msg.n}`;
      if (!msg.found) toast(msg.reason ?? t('citationNotFound'));
      break;
    case 'failed':
      toast(msg.message);
      break;
    default:
  }
}

function connect() {
  port = api.runtime.connect({ name: 'panel' });
  port.onMessage.addListener(receive);
  port.onDisconnect.addListener(() => {
    // The service worker stopped (idle, update, crash): wake it again and re-attach.
    port = null;
    for (const resolve of waiting.values()) resolve({ event: 'failed', message: t('extensionRestarted') });
    waiting.clear();
    setTimeout(connect, 200);
  });
  port.postMessage({ op: 'attach', seq: 0, tabId });
}

async function activeTab() {
  const [tab] = await api.tabs.query({ active: true, currentWindow: true });
  return tab?.id ?? null;
}

function follow(newTabId) {
  if (newTabId === tabId || newTabId === null) return;
  tabId = newTabId;
  document.body.dataset.tabId = String(tabId);
  port?.postMessage({ op: 'attach', seq: 0, tabId });
}

// -- controls -----------------------------------------------------------------------------

async function setUpSummaryOptions() {
  const { summaryOptions } = await loadSettings(api.storage.local);
  for (const node of document.querySelectorAll('#summary-options select')) {
    node.value = summaryOptions[node.dataset.option] ?? '';
    node.addEventListener('change', async () => {
      const { summaryOptions: saved } = await loadSettings(api.storage.local);
      await api.storage.local.set({ summaryOptions: { ...saved, [node.dataset.option]: node.value } });
    });
  }
}

function currentSummaryOptions() {
  const options = {};
  for (const node of document.querySelectorAll('#summary-options select')) options[node.dataset.option] = node.value;
  return options;
}

// -- translate the selection on the page -------------------------------------------------

for (const [code, name] of LANGUAGES) $('translate-selection').append(new Option(name, code));
$('translate-selection').addEventListener('change', async () => {
  const language = $('translate-selection').value;
  $('translate-selection').value = '';
  if (!language) return;
  toast('');
  const reply = await request('translate-selection', { language });
  if (reply.event === 'failed') toast(reply.message);
});

// -- several tabs: a checklist of the window's web pages; 2–8 ticked are read together ------

function chosenTabs() {
  return [...document.querySelectorAll('#tab-list input:checked')].map((box) => Number(box.value));
}

function showChosenTabs() {
  const count = chosenTabs().length;
  const many = count >= limits.minTabs;
  $('summarize').textContent = many ? t('summarizeTabs', count) : t('summarizePage');
  $('question').placeholder = many ? t('askTabsPlaceholder', count) : t('askPlaceholder');
  document.body.dataset.tabsChosen = String(count);
  for (const box of document.querySelectorAll('#tab-list input:not(:checked)')) box.disabled = count >= limits.maxTabs;
}

async function listTabs() {
  const chosen = new Set(chosenTabs());
  const tabs = await api.tabs.query({ currentWindow: true });
  const list = $('tab-list');
  list.replaceChildren();
  for (const tab of tabs) {
    if (!/^(https?|file):/.test(tab.url ?? '')) continue; // pages the extension can read
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = String(tab.id);
    box.checked = chosen.has(tab.id) || (chosen.size === 0 && tab.id === tabId);
    box.dataset.testid = 'tab-choice';
    box.addEventListener('change', showChosenTabs);
    const label = document.createElement('label');
    label.dir = 'auto';
    label.append(box, ` ${tab.title || tab.url}`);
    const item = document.createElement('li');
    item.append(label);
    list.append(item);
  }
  showChosenTabs();
}

$('tabs-picker').addEventListener('toggle', () => {
  if ($('tabs-picker').open) listTabs();
  else {
    for (const box of document.querySelectorAll('#tab-list input')) box.checked = false;
    showChosenTabs();
  }
});

function manyTabs() {
  const chosen = chosenTabs();
  return $('tabs-picker').open && chosen.length >= limits.minTabs ? chosen : null;
}

$('summarize').addEventListener('click', () => {
  toast('');
  request('summarize', { options: currentSummaryOptions(), tabIds: manyTabs() });
});

$('ask-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const question = $('question').value.trim();
  if (!question) return;
  $('question').value = '';
  toast('');
  request('ask', { question, tabIds: manyTabs(), outputLanguage: currentSummaryOptions().output_language });
});

$('question').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (current?.state !== 'streaming') $('ask-form').requestSubmit();
  }
});

$('stop').addEventListener('click', () => {
  if (current?.state === 'streaming') {
    // The panel stops at once with the text it shows (deltas update the view's record, not
    // `current`); the worker keeps exactly that text and tells the service.
    const live = thread.get(current.id) ?? current;
    const stopped = { ...live, state: 'done', finishReason: 'cancelled', progress: null };
    thread.upsert(stopped);
    request('cancel', { id: stopped.id, text: stopped.text });
  }
});

$('new-button').addEventListener('click', async () => {
  await request('new-conversation');
  $('question').focus();
});

$('options-button').addEventListener('click', () => api.runtime.openOptionsPage());

$('history-button').addEventListener('click', async () => {
  const panel = $('history');
  const opening = panel.hidden;
  panel.hidden = !opening;
  $('history-button').setAttribute('aria-expanded', String(opening));
  if (!opening) return;
  const reply = await request('history');
  const list = $('history-list');
  list.replaceChildren();
  if (reply.event !== 'history') {
    panel.querySelector('.empty').hidden = false;
    panel.querySelector('.empty').textContent = reply.message ?? t('conversationsUnavailable');
    return;
  }
  panel.querySelector('.empty').hidden = reply.conversations.length > 0;
  panel.querySelector('.empty').textContent = t('noConversations');
  for (const conv of reply.conversations) {
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.conversationId = conv.id;
    button.dir = 'auto';
    button.append(conv.title || conv.url || t('untitled'));
    const small = document.createElement('small');
    small.textContent = `${new Date(conv.updated_at).toLocaleString()} · ${conv.url || t('rewriteWord')}`;
    button.append(small);
    button.addEventListener('click', async () => {
      panel.hidden = true;
      $('history-button').setAttribute('aria-expanded', 'false');
      await request('open-conversation', { conversationId: conv.id });
    });
    const item = document.createElement('li');
    item.append(button);
    list.append(item);
  }
});

$('pairing-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = $('pairing-token').value.trim();
  if (token) await api.storage.local.set({ token });
  $('pairing-token').value = '';
});

// -- start ------------------------------------------------------------------------------

(async () => {
  if (tabId === null) {
    tabId = await activeTab();
    // A sidebar shared by all tabs follows the tab the user is looking at.
    api.tabs.onActivated.addListener(({ tabId: id, windowId }) => {
      api.windows.getCurrent().then((win) => {
        if (win.id === windowId) follow(id);
      });
    });
  }
  document.body.dataset.tabId = String(tabId);
  await setUpSummaryOptions();
  connect();
  setInterval(() => port?.postMessage({ op: 'ping' }), PING_MS);
})();

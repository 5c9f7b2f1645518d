// The side panel (Chrome side_panel, Opera/Firefox sidebar_action, or a tab with ?tabId=N):
// a view of the service worker's answers for one tab. It holds no socket and no answer of its
// own: it draws the views the worker pushes (lib/panel-messages.js) and sends every action
// back as an op, so a panel that was closed and reopened re-attaches to an answer that is
// still streaming. <body> carries data-tab-id, data-connection, data-worker, data-request-id
// and data-request-state for tests (and for anyone debugging) to wait on.

import { api } from '../lib/browser-api.js';
import { localize, t } from '../lib/i18n.js';
import { LANGUAGES } from '../lib/languages.js';
import { PanelLink } from '../lib/panel-link.js';
import { ErrorCode, Op, PORT_NAME, Push } from '../lib/panel-messages.js';
import { loadSettings } from '../lib/settings.js';
import { ActionList } from './action-list.js';
import { download, exportFile } from './export-actions.js';
import { ReadAloud } from './read-aloud.js';
import { StatusView } from './status-view.js';
import { TabFollower, isOtherPage } from './tab-follower.js';
import { ThreadView } from './thread-view.js';

const $ = (id) => document.getElementById(id);
const PING_MS = 20_000;

// The tab shown: the sidebar's (or ?windowId=W's) active tab, or ?tabId=N's.
const follower = new TabFollower({
  api,
  params: new URLSearchParams(location.search),
  onTab: (id) => follow(id),
  onNavigate: (_id, url) => showPageChange(url),
});
let tabId = follower.tabId;
// Sizes from the protocol schema, as the worker read them (the attach reply); until it comes
// no set of tabs counts as several.
let limits = { minTabs: Infinity, maxTabs: 0 };

localize();
const status = new StatusView({ root: $('status'), detail: $('status-detail'), pairing: $('pairing') });
const readAloud = new ReadAloud({ onChange: () => thread.showSpeaking() });
const thread = new ThreadView({
  root: $('thread'),
  onChange: showLatest,
  readAloud,
  actions: {
    cite: cite,
    replace: (id) => call(Op.REPLACE, { id }),
    retry: (id, options) => call(Op.RETRY, { id, options }),
    translate: (id, language) => call(Op.TRANSLATE, { id, language }),
  },
});
const actionList = new ActionList({
  root: $('action-list'),
  storage: api.storage.local,
  onChanged: api.storage.onChanged,
  run: (actionId) => call(Op.RUN_ACTION, { tabId, actionId }),
});
const link = new PanelLink({ connect: () => api.runtime.connect({ name: PORT_NAME }), onOpen: attach, onPush: receive });

function showLatest(view) {
  document.body.dataset.requestId = view?.id ?? '';
  document.body.dataset.requestState = view?.state ?? '';
  const streaming = view?.state === 'streaming';
  $('stop').hidden = !streaming;
  $('send').hidden = streaming;
  const shown = thread.current();
  $('export-bar').hidden = !shown.requests.some((answer) => answer.text);
  if (shown.url !== checkedUrl) checkPage();
}

// -- the page in the tab: a notice when it is no longer the one the conversation read ----

let checkedUrl = null; // the conversation's page the notice was last worked out for

function showPageChange(url) {
  checkedUrl = thread.current().url;
  const changed = isOtherPage(url, checkedUrl);
  document.body.dataset.pageChanged = String(changed);
  $('page-changed').hidden = !changed;
}

async function checkPage() {
  showPageChange(await follower.currentUrl());
}

function showThread(value) {
  thread.show(value);
  checkPage();
}

function toast(message) {
  const node = $('toast');
  node.textContent = message;
  node.hidden = !message;
  clearTimeout(toast.timer);
  if (message) toast.timer = setTimeout(() => { node.hidden = true; }, 8000);
}

/** Sends one op; resolves with its reply's value, or null after showing why it failed. */
async function call(op, payload = {}) {
  try {
    return await link.request(op, payload);
  } catch (error) {
    toast(error.message);
    return null;
  }
}

const forThisTab = (value) => value && String(value.tabId) === String(tabId);

function receive(kind, value) {
  if (kind === Push.STATUS) status.update(value);
  else if (kind === Push.THREAD && forThisTab(value)) showThread(value);
  else if (kind === Push.ANSWER && forThisTab(value)) thread.update(value);
}

// -- the worker: attach on every new port; say so when it does not answer -------------------

function applyLimits(given) {
  limits = given;
  $('question').maxLength = limits.question;
  $('tabs-hint').textContent = t('tabsPickerHint', limits.minTabs, limits.maxTabs);
  actionList.setLimits(limits);
  showChosenTabs();
}

function showWorkerProblem(error) {
  document.body.dataset.worker = error ? error.code : 'attached';
  $('worker-problem').hidden = !error;
  $('worker-problem-text').textContent = error?.message ?? '';
}

async function attach() {
  const attaching = tabId;
  try {
    const value = await link.request(Op.ATTACH, { tabId: attaching });
    showWorkerProblem(null);
    document.body.dataset.workerStarted = String(value.workerStarted);
    applyLimits(value.limits);
    status.update(value.status);
    if (value.thread && attaching === tabId) showThread(value.thread);
  } catch (error) {
    // A port that closed is opened again, and attaches again, by the link itself.
    if (error.code !== ErrorCode.DISCONNECTED) showWorkerProblem(error);
  }
}

$('worker-retry').addEventListener('click', () => {
  $('worker-problem-text').textContent = t('statusConnecting');
  // A new port wakes a worker that stopped; attaching asks one that failed to start again.
  try {
    link.open();
  } catch (error) {
    showWorkerProblem({ code: ErrorCode.DISCONNECTED, message: t('extensionUnreachable', error.message) });
  }
});

function follow(newTabId) {
  if (newTabId === tabId || newTabId === null) return;
  tabId = newTabId;
  document.body.dataset.tabId = String(tabId);
  readAloud.stop();
  attach();
}

async function cite(payload) {
  const { n } = payload;
  const shown = await call(Op.CITE, { tabId, ...payload, source: payload.source ?? null, page: payload.page ?? null, time: payload.time ?? null });
  if (!shown) return;
  document.body.dataset.citation = shown.found ? `found-${n}` : `missing-${n}`;
  if (!shown.found) toast(shown.reason ?? t('citationNotFound'));
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
  await call(Op.TRANSLATE_SELECTION, { tabId, language });
});

// -- several tabs: a checklist of the window's web pages; as many as `pages` takes are read together

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
  call(Op.SUMMARIZE, { tabId, options: currentSummaryOptions(), tabIds: manyTabs() });
});

$('ask-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const question = $('question').value.trim();
  if (!question) return;
  $('question').value = '';
  toast('');
  call(Op.ASK, { tabId, question, tabIds: manyTabs(), outputLanguage: currentSummaryOptions().output_language });
});

$('question').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (thread.latest()?.state !== 'streaming') $('ask-form').requestSubmit();
  }
});

$('stop').addEventListener('click', () => {
  // The book stops the answer with the text shown here (later frames add nothing) and pushes
  // it back ended; the panel changes nothing of it itself.
  const shown = thread.latest();
  if (shown?.state === 'streaming') call(Op.STOP, { id: shown.id, shownText: shown.text });
});

$('new-button').addEventListener('click', async () => {
  await call(Op.NEW_CONVERSATION, { tabId });
  $('question').focus();
});

$('options-button').addEventListener('click', () => api.runtime.openOptionsPage());

for (const [id, format] of [['export-markdown', 'markdown'], ['export-json', 'json']]) {
  $(id).addEventListener('click', () => download(exportFile(thread.current(), format)));
}

$('history-button').addEventListener('click', async () => {
  const panel = $('history');
  const opening = panel.hidden;
  panel.hidden = !opening;
  $('history-button').setAttribute('aria-expanded', String(opening));
  if (!opening) return;
  const list = $('history-list');
  let reply;
  try {
    reply = await link.request(Op.HISTORY);
  } catch (error) {
    list.replaceChildren();
    panel.querySelector('.empty').hidden = false;
    panel.querySelector('.empty').textContent = error.message || t('conversationsUnavailable');
    return;
  }
  list.replaceChildren();
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
      await call(Op.OPEN_CONVERSATION, { tabId, conversationId: conv.id });
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
  tabId = await follower.start();
  document.body.dataset.tabId = String(tabId);
  await setUpSummaryOptions();
  try {
    link.open(); // attaches
  } catch (error) {
    showWorkerProblem({ code: ErrorCode.DISCONNECTED, message: t('extensionUnreachable', error.message) });
  }
  setInterval(() => {
    if (link.port) link.request(Op.PING).catch(() => {}); // a lost port is opened again by the link
  }, PING_MS);
})();

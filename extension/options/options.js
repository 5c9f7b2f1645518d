// The options page: server URL and pairing token, stored in storage.local; the service
// worker reconnects when they change. The connection line mirrors the worker's status. The
// user's own actions are edited by options/actions-editor.js.

import { api } from '../lib/browser-api.js';
import { loadSchemas } from '../lib/codec.js';
import { readLimits } from '../lib/limits.js';
import { ActionsEditor } from './actions-editor.js';
import { localize, t } from '../lib/i18n.js';
import { PanelLink } from '../lib/panel-link.js';
import { Op, PORT_NAME, Push } from '../lib/panel-messages.js';
import { checkServerUrl, loadSettings } from '../lib/settings.js';
import { describeStatus } from '../sidepanel/status-view.js';

const $ = (id) => document.getElementById(id);
localize();

function showStatus(status) {
  const { line, detail } = describeStatus(status);
  $('connection').textContent = detail ? `${line}. ${detail}` : line;
  document.body.dataset.connection = status.state;
}

// The worker's status, as the panel gets it: attached with no tab, then pushed.
const link = new PanelLink({
  connect: () => api.runtime.connect({ name: PORT_NAME }),
  onOpen: () => {
    link.request(Op.ATTACH, { tabId: null }).then(
      (value) => showStatus(value.status),
      (error) => { $('connection').textContent = error.message; },
    );
  },
  onPush: (kind, value) => {
    if (kind === Push.STATUS) showStatus(value);
  },
});

(async () => {
  // The prompt's size limit is the protocol schema's, read from the schema itself.
  const limits = readLimits(await loadSchemas());
  const editor = new ActionsEditor({
    root: $('actions'), message: $('actions-message'), storage: api.storage.local, onChanged: api.storage.onChanged,
    limits: { promptChars: limits.instruction },
  });
  $('action-new').addEventListener('click', () => editor.addDraft());
  $('actions-export').addEventListener('click', () => editor.exportFile());
  $('actions-import').addEventListener('change', async (event) => {
    await editor.importFile(event.target.files?.[0]);
    event.target.value = ''; // the same file can be picked again
  });
  await editor.load();
  document.body.dataset.actions = 'ready';
})();

(async () => {
  const settings = await loadSettings(api.storage.local);
  $('server-url').value = settings.serverUrl;
  $('token').value = settings.token;
  try {
    link.open();
  } catch (error) {
    $('connection').textContent = t('extensionUnreachable', error.message);
  }
})();

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const checked = checkServerUrl($('server-url').value);
  if (checked.error) {
    $('saved').textContent = checked.error;
    return;
  }
  await api.storage.local.set({ serverUrl: checked.url, token: $('token').value.trim() });
  $('saved').textContent = t('saved');
});

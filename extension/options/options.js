// The options page: server URL and pairing token, stored in storage.local; the service
// worker reconnects when they change. The connection line mirrors the worker's status.

import { api } from '../lib/browser-api.js';
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

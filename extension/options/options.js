// The options page: server URL and pairing token, stored in storage.local; the service
// worker reconnects when they change. The connection line mirrors the worker's status.

import { api } from '../lib/browser-api.js';
import { localize, t } from '../lib/i18n.js';
import { checkServerUrl, loadSettings } from '../lib/settings.js';
import { describeStatus } from '../sidepanel/status-view.js';

const $ = (id) => document.getElementById(id);
localize();

function showStatus(status) {
  const { line, detail } = describeStatus(status);
  $('connection').textContent = detail ? `${line}. ${detail}` : line;
  document.body.dataset.connection = status.state;
}

(async () => {
  const settings = await loadSettings(api.storage.local);
  $('server-url').value = settings.serverUrl;
  $('token').value = settings.token;
  const port = api.runtime.connect({ name: 'panel' });
  port.onMessage.addListener((msg) => {
    if (msg.status) showStatus(msg.status);
  });
  port.postMessage({ op: 'attach', seq: 0, tabId: null });
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

// The status line: connected / connecting / server not running / which engine and model
// serve / model loading progress, and the pairing card when there is no (valid) token.

import { t } from '../lib/i18n.js';

export function inlineCode(element, text) {
  // Backquoted parts of a status message (commands) show as code; the rest stays text.
  element.replaceChildren();
  text.split(/(`[^`]+`)/).forEach((part) => {
    if (part.startsWith('`') && part.endsWith('`') && part.length > 2) {
      const code = document.createElement('code');
      code.textContent = part.slice(1, -1);
      element.append(code);
    } else if (part) {
      element.append(part);
    }
  });
}

function percent(done, total) {
  return total > 0 ? ` ${Math.floor((100 * done) / total)}%` : '';
}

/** The one-line summary and the longer detail for a connection status (with what the
 * native host said, when it could not help). */
export function describeStatus(status) {
  const described = describeConnection(status);
  if (!status.hostProblem) return described;
  return { ...described, detail: [described.detail, status.hostProblem].filter(Boolean).join(' ') };
}

function describeConnection(status) {
  const engine = status.engine;
  switch (status.state) {
    case 'connected': {
      if (engine?.state === 'loading') {
        const loading = status.loading;
        const stage = loading ? `${loading.stage}${percent(loading.done, loading.total)}` : 'starting';
        const loadingLine = t('statusLoading', engine.model, stage);
        // Started by the native host: it is still "starting" while the model loads.
        const line = status.code === 'starting' ? `${t('statusStarting')} ${loadingLine}` : loadingLine;
        return { state: 'loading', line, detail: t('statusLoadingDetail') };
      }
      if (engine?.state === 'failed') {
        // The service is up but its engine cannot serve: say why, not "Connected".
        return { state: 'failed', line: t('statusEngineFailed', engine.model), detail: engine.failure || '' };
      }
      const line = engine ? `${t('statusConnected')} · ${engine.name} · ${engine.model}` : t('statusConnected');
      const detail = engine?.fallback_reason ? t('statusFallback', engine.fallback_reason) : '';
      return { state: 'connected', line, detail };
    }
    case 'connecting':
      if (status.code === 'starting') return { state: 'connecting', line: t('statusStarting'), detail: t('statusStartingDetail') };
      return { state: 'connecting', line: t('statusConnecting'), detail: '' };
    case 'offline':
      return { state: 'offline', line: status.code === 'forbidden' ? t('statusForbidden') : t('statusOffline'), detail: status.message };
    case 'refused':
      return { state: 'refused', line: status.code === 'unauthorized' ? t('statusUnauthorized') : t('statusRefused'), detail: status.message };
    default:
      return { state: 'unpaired', line: t('statusUnpaired'), detail: '' };
  }
}

/** The pairing card shows when there is no token, or the service said the token is wrong. */
export function needsPairing(status) {
  return status.state === 'unpaired' || (status.state === 'refused' && status.code === 'unauthorized');
}

export class StatusView {
  constructor({ root, detail, pairing }) {
    Object.assign(this, { root, detail, pairing });
    this.text = root.querySelector('.status-text');
  }

  update(status) {
    const { state, line, detail } = describeStatus(status);
    this.root.dataset.state = state;
    this.root.title = status.url ? `${line} (${status.url})` : line;
    document.body.dataset.connection = status.state;
    this.text.textContent = line;
    this.detail.hidden = !detail;
    if (detail) inlineCode(this.detail, detail);
    this.pairing.hidden = !needsPairing(status);
  }
}

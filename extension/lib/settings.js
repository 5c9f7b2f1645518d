// What the user set, kept in storage.local: server URL and pairing token (options page),
// summary and rewrite choices (remembered between uses).

import { DEFAULT_SERVER_URL } from './connection.js';
import { t } from './i18n.js';

export const SUMMARY_DEFAULTS = Object.freeze({ type: 'key-points', length: 'medium', format: 'markdown', output_language: '' });
export const REWRITE_DEFAULTS = Object.freeze({ tone: 'as-is', length: 'as-is' });
export const DEFAULTS = Object.freeze({
  serverUrl: DEFAULT_SERVER_URL,
  token: '',
  summaryOptions: SUMMARY_DEFAULTS,
  rewriteOptions: REWRITE_DEFAULTS,
});

export async function loadSettings(storage) {
  const stored = await storage.get(Object.keys(DEFAULTS));
  return {
    serverUrl: stored.serverUrl || DEFAULTS.serverUrl,
    token: stored.token || '',
    summaryOptions: { ...SUMMARY_DEFAULTS, ...stored.summaryOptions },
    rewriteOptions: { ...REWRITE_DEFAULTS, ...stored.rewriteOptions },
  };
}

/** Summary options as the protocol wants them (an empty language means "the page's"). */
export function summaryFrameOptions(options) {
  const out = { type: options.type, length: options.length, format: options.format };
  if (options.output_language) out.output_language = options.output_language;
  return out;
}

/** A ws:// or wss:// URL, or an error message for the options page. */
export function checkServerUrl(text) {
  try {
    const url = new URL(text.trim());
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return { error: t('serverUrlScheme') };
    return { url: url.href };
  } catch {
    return { error: t('serverUrlInvalid') };
  }
}

// The browser's i18n for node tests, from the extension's real English messages: code under
// test shows the same text it shows an English-speaking user.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'extension');

export function loadMessages(locale) {
  return JSON.parse(readFileSync(path.join(root, '_locales', locale, 'messages.json'), 'utf8'));
}

export function fill(message, substitutions = []) {
  return message.replace(/\$(\d)/g, (_, n) => String(substitutions[Number(n) - 1] ?? ''));
}

const english = loadMessages('en');
globalThis.chrome ??= {};
globalThis.chrome.i18n ??= {
  getMessage: (key, substitutions) => (english[key] ? fill(english[key].message, substitutions) : ''),
  getUILanguage: () => 'en',
};

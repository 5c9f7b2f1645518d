import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { REPO } from './helpers.mjs';
import { loadMessages } from './i18n-shim.mjs';
import { closestLanguage } from '../../extension/lib/languages.js';

const EXT = path.join(REPO, 'extension');
const LOCALES = readdirSync(path.join(EXT, '_locales'));

function sources() {
  const files = [];
  for (const dir of ['lib', 'sidepanel', 'options', '.']) {
    for (const name of readdirSync(path.join(EXT, dir))) {
      if (/\.(js|html)$/.test(name)) files.push(readFileSync(path.join(EXT, dir, name), 'utf8'));
    }
  }
  return files.join('\n');
}

function keysUsed() {
  const text = sources();
  const keys = new Set();
  for (const [, key] of text.matchAll(/\bt\('([A-Za-z0-9_]+)'/g)) keys.add(key);
  for (const [, key] of text.matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g)) keys.add(key);
  for (const [, key] of readFileSync(path.join(EXT, 'manifest.json'), 'utf8').matchAll(/__MSG_([A-Za-z0-9_]+)__/g)) keys.add(key);
  // Keys built from option values: summary types and lengths, progress stages, menu choices.
  for (const type of ['key_points', 'tldr', 'teaser', 'headline']) keys.add(`summaryType_${type}`).add(`summaryTypeWord_${type}`);
  for (const length of ['short', 'medium', 'long']) keys.add(`length_${length}`).add(`lengthWord_${length}`);
  for (const [, key] of text.matchAll(/'((?:progress|menu|tone|length)[A-Z][A-Za-z]+)'/g)) keys.add(key);
  return keys;
}

test('English and Simplified Chinese are both there and the UI language picks between them', () => {
  assert.deepEqual(LOCALES.sort(), ['en', 'zh_CN']);
  assert.equal(JSON.parse(readFileSync(path.join(EXT, 'manifest.json'), 'utf8')).default_locale, 'en');
});

test('every string the extension shows has a message in every locale', () => {
  const used = keysUsed();
  assert.ok(used.size > 100, `only ${used.size} keys found`);
  for (const locale of LOCALES) {
    const messages = loadMessages(locale);
    const missing = [...used].filter((key) => !messages[key]?.message);
    assert.deepEqual(missing, [], `${locale} lacks ${missing.join(', ')}`);
  }
});

test('both locales have the same messages with the same substitutions', () => {
  const en = loadMessages('en');
  const zh = loadMessages('zh_CN');
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  for (const [key, { message }] of Object.entries(en)) {
    const slots = (m) => [...m.matchAll(/\$\d/g)].map((x) => x[0]).sort();
    assert.deepEqual(slots(zh[key].message), slots(message), key);
  }
});

test('the Chinese messages are Chinese, not English left untranslated', () => {
  const zh = loadMessages('zh_CN');
  const han = /[\u4e00-\u9fff]/;
  const untranslated = Object.entries(zh).filter(([key, { message }]) => !han.test(message) && !['summaryType_tldr'].includes(key));
  assert.deepEqual(untranslated.map(([key]) => key), []);
});

test('no user-facing English is left hard-coded in the panel markup', () => {
  const html = readFileSync(path.join(EXT, 'sidepanel', 'panel.html'), 'utf8');
  const body = html.split('<body')[1];
  const texts = [...body.matchAll(/>([^<>]*[A-Za-z]{3,}[^<>]*)</g)].map((m) => m[1].trim());
  const tagged = [...body.matchAll(/<([a-z0-9]+)([^>]*)>([^<>]*[A-Za-z]{3,}[^<>]*)</g)]
    .filter(([, tag, attrs]) => tag !== 'code' && !attrs.includes('data-i18n='))
    .map(([, , , text]) => text.trim())
    .filter((text) => !/^(Markdown|JSON|English|Español|Français|Deutsch|Português \(Brasil\))$/.test(text));
  assert.ok(texts.length > 10);
  assert.deepEqual(tagged, []);
});

test('a browser language finds the closest offered language', () => {
  assert.equal(closestLanguage('zh-CN'), 'zh-CN');
  assert.equal(closestLanguage('zh'), 'zh-CN');
  assert.equal(closestLanguage('zh-Hant-TW'), 'zh-TW');
  assert.equal(closestLanguage('en-GB'), 'en');
  assert.equal(closestLanguage('ar-EG'), 'ar');
  assert.equal(closestLanguage('xx'), 'en');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ReadAloud, pickVoice, speechPieces } from '../../extension/sidepanel/read-aloud.js';
import { isOtherPage } from '../../extension/sidepanel/tab-follower.js';

const voice = (name, lang, localService, isDefault = false) => ({ name, lang, localService, default: isDefault });
const VOICES = [
  voice('Cloud English', 'en-US', false, true),
  voice('Cloud Chinese', 'zh-CN', false),
  voice('Local British', 'en-GB', true),
  voice('Local American', 'en-US', true),
  voice('Local French', 'fr_FR', true),
];

test('only a voice of this computer is chosen, the closest to the answer language', () => {
  assert.equal(pickVoice(VOICES, 'en-US').name, 'Local American');
  assert.equal(pickVoice(VOICES, 'en').name, 'Local British');
  assert.equal(pickVoice(VOICES, 'fr-CA').name, 'Local French');
  assert.equal(pickVoice(VOICES, 'zh-CN'), null, 'a cloud voice would send the text away');
  assert.equal(pickVoice([], 'en'), null);
});

test('a long answer is read in pieces cut after sentences, none of them lost', () => {
  const sentence = 'Night trains are coming back across Europe as travellers look for low-carbon journeys. ';
  const text = `First line\n\n${sentence.repeat(6)}`;
  const pieces = speechPieces(text);
  assert.equal(pieces[0], 'First line');
  assert.ok(pieces.every((piece) => piece.length <= 220));
  assert.equal(pieces.join(' ').replace(/\s+/g, ' '), text.replace(/\s+/g, ' ').trim());
  assert.deepEqual(speechPieces(' \n '), []);
});

/** A stand-in for speechSynthesis that records what it is asked (node has none). */
function recorder(voices) {
  const spoken = [];
  let cancelled = 0;
  return {
    spoken, cancelled: () => cancelled,
    speech: { getVoices: () => voices, speak: (u) => spoken.push(u), cancel: () => { cancelled += 1; } },
    Utterance: class { constructor(text) { this.text = text; } },
  };
}

test('reading speaks with the local voice, says which answer it reads, and Stop cancels', async () => {
  const r = recorder(VOICES);
  const changes = [];
  const reader = new ReadAloud({ onChange: (id) => changes.push(id), speech: r.speech, Utterance: r.Utterance });
  assert.equal(await reader.read('a1', 'Bonjour à tous.', 'fr'), null);
  assert.equal(r.spoken.length, 1);
  assert.equal(r.spoken[0].voice.name, 'Local French');
  assert.equal(reader.speaking, 'a1');
  reader.stop();
  assert.equal(r.cancelled(), 1);
  assert.deepEqual(changes, ['a1', null]);
  r.spoken[0].onend?.(); // the browser's end after cancel changes nothing
  assert.deepEqual(changes, ['a1', null]);
});

test('without a local voice for the language nothing is spoken', async () => {
  const r = recorder(VOICES);
  const reader = new ReadAloud({ onChange: () => {}, speech: r.speech, Utterance: r.Utterance });
  assert.deepEqual(await reader.read('a1', '你好', 'zh-CN'), { reason: 'no-voice' });
  assert.equal(r.spoken.length, 0);
  assert.equal(new ReadAloud({ onChange: () => {}, speech: undefined, Utterance: undefined }).supported, false);
});

test('a jump to a fragment is the same page; another address is another page', () => {
  assert.equal(isOtherPage('https://a.example/x#part', 'https://a.example/x'), false);
  assert.equal(isOtherPage('https://a.example/y', 'https://a.example/x'), true);
  assert.equal(isOtherPage('https://a.example/y', null), false, 'nothing read yet: nothing changed');
});

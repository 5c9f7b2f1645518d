import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { ProtocolError } from '../../extension/lib/codec.js';
import { readLimits } from '../../extension/lib/limits.js';
import { SCHEMA_DIR, realCodec } from './helpers.mjs';

const codec = await realCodec();
const schemas = {
  client: JSON.parse(await readFile(path.join(SCHEMA_DIR, 'client.json'), 'utf8')),
  server: JSON.parse(await readFile(path.join(SCHEMA_DIR, 'server.json'), 'utf8')),
};

test('before any welcome, a page frame over the schema\'s default size is refused before sending', () => {
  const { page_frame_bytes: limit } = codec.limits;
  const page = (chars) => ({ type: 'summarize', id: 's1', page: { url: 'https://a.test/', text: 'x'.repeat(chars) } });
  assert.ok(codec.encodeClient(page(limit - 1024)));
  assert.throws(() => codec.encodeClient(page(limit)), (error) => error instanceof ProtocolError && error.code === 'too_large');
});

test('before any welcome, an ordinary frame over the schema\'s default frame size is refused', () => {
  const question = 'y'.repeat(codec.limits.question);
  // The longest question the schema allows fits; a rewrite of the longest text does not.
  assert.ok(codec.encodeClient({ type: 'ask', id: 'q1', question, conversation_id: 'c1' }));
  const rewrite = { type: 'rewrite', id: 'w1', text: 'z'.repeat(codec.limits.rewriteText) };
  assert.throws(() => codec.encodeClient(rewrite), /over the \d+-byte limit/);
});

test('every field limit the extension keeps to is one the schema itself enforces', () => {
  const { limits } = codec;
  const page = { url: `https://a.test/${'p'.repeat(limits.url)}`, title: 't', html: '<p>x</p>' };
  assert.throws(() => codec.decodeClient(JSON.stringify({ type: 'summarize', id: 's', page })), /url/);
  page.url = page.url.slice(0, limits.url);
  assert.ok(codec.decodeClient(JSON.stringify({ type: 'summarize', id: 's', page })));
  const tabs = (n) => Array.from({ length: n }, (_, i) => ({ url: `https://a.test/${i}`, text: 'x' }));
  assert.ok(codec.decodeClient(JSON.stringify({ type: 'ask', id: 'q', question: 'q', pages: tabs(limits.maxTabs) })));
  assert.throws(() => codec.decodeClient(JSON.stringify({ type: 'ask', id: 'q', question: 'q', pages: tabs(limits.maxTabs + 1) })), /pages/);
  assert.throws(() => codec.decodeClient(JSON.stringify({ type: 'ask', id: 'q', question: 'q', pages: tabs(limits.minTabs - 1) })), /pages/);
});

test('a schema that states no frame default is refused with what is missing', () => {
  const broken = structuredClone(schemas);
  delete broken.server.$defs.welcome.properties.limits.properties.page_frame_bytes.default;
  assert.throws(() => readLimits(broken), /page_frame_bytes default/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

import { ProtocolError } from '../../extension/lib/codec.js';
import { EXAMPLES, REPO, SCHEMA_DIR, realCodec } from './helpers.mjs';

const codec = await realCodec();
const valid = (await readdir(path.join(EXAMPLES, 'valid'))).sort();
const invalid = (await readdir(path.join(EXAMPLES, 'invalid'))).sort();
const expected = JSON.parse(await readFile(path.join(EXAMPLES, 'expected-errors.json'), 'utf8'));
const read = (...parts) => readFile(path.join(EXAMPLES, ...parts), 'utf8');

test('the extension reads the protocol schema folder itself, not a copy', async () => {
  assert.equal(await realpath(path.join(REPO, 'extension', 'schema')), await realpath(SCHEMA_DIR));
});

test('message types come from the schema and every one has a valid example', async () => {
  for (const side of ['client', 'server']) {
    const types = new Set();
    for (const name of valid.filter((n) => n.startsWith(`${side}-`))) {
      types.add(JSON.parse(await read('valid', name)).type);
    }
    assert.deepEqual([...types].sort(), codec.types(side).sort());
  }
});

for (const name of valid) {
  const side = name.startsWith('client-') ? 'client' : 'server';
  test(`valid example ${name} passes the ${side} schema`, async () => {
    const text = await read('valid', name);
    const frame = side === 'client' ? codec.decodeClient(text) : codec.decodeServer(text);
    assert.equal(frame.type, JSON.parse(text).type);
  });
}

for (const name of invalid) {
  test(`invalid example ${name} is refused with a message naming the problem`, async () => {
    const text = await read('invalid', name);
    assert.throws(() => codec.decodeClient(text), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, expected[name].code);
      assert.ok(error.message.includes(expected[name].message_mentions), error.message);
      return true;
    });
  });
}

test('every invalid example has an expected error and the reverse', () => {
  assert.deepEqual(invalid, Object.keys(expected).sort());
});

test('a request refused before sending keeps its id so the answer can show the error', () => {
  const frame = { type: 'rewrite', id: 'w9', text: 'hi', options: { tone: 'angry' } };
  assert.throws(() => codec.encodeClient(frame), (e) => e.requestId === 'w9' && /options\.tone/.test(e.message));
});

test('a page frame over the limit the server announced is refused as too large', () => {
  const frame = { type: 'summarize', id: 'r1', page: { url: 'https://a.test/', text: 'é'.repeat(600) } };
  assert.ok(codec.encodeClient(frame, { page_frame_bytes: 2000, frame_bytes: 100 }));
  assert.throws(
    () => codec.encodeClient(frame, { page_frame_bytes: 1000, frame_bytes: 100 }),
    (e) => e.code === 'too_large' && /1000-byte limit/.test(e.message),
  );
});

test('small frames are held to frame_bytes even when pages may be larger', () => {
  const frame = { type: 'rewrite', id: 'w1', text: 'x'.repeat(500) };
  assert.throws(() => codec.encodeClient(frame, { page_frame_bytes: 10_000, frame_bytes: 200 }), /rewrite frame/);
});

test('server frames that break the schema are refused with the field named', () => {
  assert.throws(() => codec.decodeServer('{"type":"delta","id":"r1"}'), /'text' is a required property/);
  assert.throws(() => codec.decodeServer('{"type":"citation","id":"r1","n":0,"quote":"q"}'), /n: 0 is less than the minimum/);
  assert.throws(() => codec.decodeServer('{"type":"done","id":"r1","finish_reason":"tired","usage":{"prompt_tokens":1,"completion_tokens":1},"timing":{"ttft_ms":null,"total_ms":1}}'), /finish_reason/);
  assert.throws(() => codec.decodeServer('{"type":"welcome","protocol":1,"server":{"version":"1"},"engine":{"name":"x","model":"m","capabilities":["ask","ask"],"context_tokens":1,"state":"ready"}}'), /repeated item/);
});

test('string lengths count characters, not UTF-16 units', () => {
  const emoji = '😀'.repeat(35);
  const frame = { type: 'summarize', id: 'r1', page: { url: 'u', text: 't', lang: 'en' }, options: { output_language: 'en' } };
  assert.ok(codec.encodeClient(frame));
  assert.throws(() => codec.encodeClient({ ...frame, page: { ...frame.page, title: emoji.repeat(60) } }), /page\.title: is 2100 characters long; the limit is 2000/);
});

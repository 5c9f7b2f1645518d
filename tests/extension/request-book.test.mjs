import { test } from 'node:test';
import assert from 'node:assert/strict';

import './i18n-shim.mjs';
import { RequestBook } from '../../extension/lib/request-book.js';

function book() {
  const changes = [];
  const deltas = [];
  const b = new RequestBook({ onChange: (r) => changes.push(r.state), onDelta: (r, t) => deltas.push(t) });
  return { b, changes, deltas };
}

const start = (id, conversation) => ({ type: 'start', id, conversation_id: conversation, page: { title: 'T', url: 'https://a.test/', words: 3, tokens: 4, plan: { strategy: 'whole', coverage: 1 } } });
const done = (id, conversation, reason = 'stop') => ({ type: 'done', id, conversation_id: conversation, finish_reason: reason, usage: { prompt_tokens: 1, completion_tokens: 1 }, timing: { ttft_ms: 1, total_ms: 2 } });

test('an answer streams, gathers citations and ends done', () => {
  const { b, deltas } = book();
  b.create({ id: 'q1', kind: 'ask', tabId: 7, label: 'Why?', params: {} });
  b.apply(start('q1', 'c1'));
  b.apply({ type: 'delta', id: 'q1', text: 'Because ' });
  b.apply({ type: 'delta', id: 'q1', text: 'so.' });
  b.apply({ type: 'citation', id: 'q1', n: 2, quote: 'B' });
  b.apply({ type: 'citation', id: 'q1', n: 1, quote: 'A' });
  b.apply(done('q1', 'c1'));
  const record = b.get('q1');
  assert.equal(record.text, 'Because so.');
  assert.deepEqual(record.citations.map((c) => c.n), [1, 2]);
  assert.equal(record.state, 'done');
  assert.deepEqual(deltas, ['Because ', 'so.']);
  assert.equal(b.view(7).conversationId, 'c1', 'the next question continues this conversation');
});

test('after Stop, late frames add no text but the conversation is still learned', () => {
  const { b } = book();
  b.create({ id: 'q1', kind: 'ask', tabId: 1, label: 'x', params: {} });
  b.apply({ type: 'delta', id: 'q1', text: 'One ' });
  assert.equal(b.stop('q1'), true);
  b.apply({ type: 'delta', id: 'q1', text: 'two' });
  b.apply(done('q1', 'c9', 'cancelled'));
  assert.equal(b.get('q1').text, 'One ');
  assert.equal(b.get('q1').finishReason, 'cancelled');
  assert.equal(b.view(1).conversationId, 'c9');
  assert.equal(b.stop('q1'), false);
});

test('a rewrite does not become the conversation follow-ups continue', () => {
  const { b } = book();
  b.create({ id: 's1', kind: 'summarize', tabId: 1, label: 'S', params: {} });
  b.apply(done('s1', 'page-conv'));
  b.create({ id: 'w1', kind: 'rewrite', tabId: 1, label: 'W', params: {} });
  b.apply(done('w1', 'rewrite-conv'));
  assert.equal(b.view(1).conversationId, 'page-conv');
});

test('a lost connection fails only answers that were sent and still streaming', () => {
  const { b } = book();
  b.create({ id: 'a', kind: 'ask', tabId: 1, label: 'a', params: {} });
  b.create({ id: 'b', kind: 'ask', tabId: 1, label: 'b', params: {} });
  b.create({ id: 'c', kind: 'ask', tabId: 1, label: 'c', params: {} });
  b.markSent('a');
  b.markSent('c');
  b.apply(done('c', 'x'));
  b.connectionLost();
  assert.equal(b.get('a').state, 'error');
  assert.match(b.get('a').error.message, /connection/);
  assert.equal(b.get('b').state, 'streaming');
  assert.equal(b.get('c').state, 'done');
});

test('Regenerate puts the new answer where the old one was', () => {
  const { b } = book();
  b.create({ id: 'a', kind: 'ask', tabId: 1, label: 'a', params: {} });
  b.create({ id: 'b', kind: 'ask', tabId: 1, label: 'b', params: {} });
  b.create({ id: 'a2', kind: 'ask', tabId: 1, label: 'a', params: {}, replaces: 'a' });
  assert.deepEqual(b.view(1).requests.map((r) => r.id), ['a2', 'b']);
  assert.equal(b.get('a'), undefined);
});

test('a snapshot survives a restart and answers cut off by it say so', () => {
  const { b } = book();
  b.create({ id: 'a', kind: 'ask', tabId: 3, label: 'a', params: {} });
  b.apply(done('a', 'c1'));
  b.create({ id: 'b', kind: 'ask', tabId: 3, label: 'b', params: {} });
  const restored = new RequestBook();
  restored.load(JSON.parse(JSON.stringify(b.snapshot())));
  const view = restored.view(3);
  assert.deepEqual(view.requests.map((r) => r.state), ['done', 'error']);
  assert.match(view.requests[1].error.message, /restarted/);
  assert.equal(view.conversationId, 'c1');
});

test('a stored conversation from history becomes the tab thread', () => {
  const { b } = book();
  b.restoreConversation(4, { id: 'c1', url: 'https://a.test/' }, [
    { role: 'user', kind: 'ask', text: 'Q1', created_at: '2026-01-01T00:00:00Z' },
    { role: 'assistant', kind: 'ask', text: 'A1', request_id: 'q1', status: 'complete', finish_reason: 'stop', citations: [{ n: 1, quote: 'x' }], created_at: '2026-01-01T00:00:01Z' },
    { role: 'user', kind: 'ask', text: 'Q2', created_at: '2026-01-01T00:00:02Z' },
    { role: 'assistant', kind: 'ask', text: 'A', request_id: 'q2', status: 'incomplete', finish_reason: 'error', created_at: '2026-01-01T00:00:03Z' },
  ]);
  const view = b.view(4);
  assert.equal(view.conversationId, 'c1');
  assert.deepEqual(view.requests.map((r) => [r.label, r.text, r.state]), [['Q1', 'A1', 'done'], ['Q2', 'A', 'error']]);
  assert.deepEqual(view.requests[0].citations, [{ n: 1, quote: 'x' }]);
});

test('frames for requests this book never made are ignored', () => {
  const { b, changes } = book();
  b.apply({ type: 'delta', id: 'nope', text: 'x' });
  assert.deepEqual(changes, []);
});

test('Stop keeps exactly the text the panel showed, not frames that were still on their way', () => {
  const { b } = book();
  b.create({ id: 'q1', kind: 'ask', tabId: 1, label: 'x', params: {} });
  b.apply({ type: 'delta', id: 'q1', text: 'One ' });
  b.apply({ type: 'delta', id: 'q1', text: 'two ' }); // reached the worker, not yet drawn
  assert.equal(b.stop('q1', 'One '), true);
  assert.equal(b.get('q1').text, 'One ');
  // Text that is not what the answer began with is not taken.
  b.create({ id: 'q2', kind: 'ask', tabId: 1, label: 'y', params: {} });
  b.apply({ type: 'delta', id: 'q2', text: 'Alpha' });
  b.stop('q2', 'Beta');
  assert.equal(b.get('q2').text, 'Alpha');
});

test('a stored book whose records lack newer fields loads whole, and its answers still draw', () => {
  const restored = new RequestBook();
  restored.load({
    records: [{ id: 'old', kind: 'ask', tabId: 2, label: 'Q', state: 'done', text: 'A', finishReason: 'stop' }],
    threads: [['2', { conversationId: 'c1', url: null, ids: ['old'] }]],
  });
  const [answer] = restored.view(2).requests;
  assert.deepEqual([answer.text, answer.state, answer.citations, answer.canRetry], ['A', 'done', [], false]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { REPO } from './helpers.mjs';
import { RequestBook } from '../../extension/lib/request-book.js';
import {
  answerWithSources, conversationDocument, conversationMarkdown, exportFileName,
} from '../../extension/lib/conversation-export.js';

const FIXTURE = path.join(REPO, 'tests', 'fixtures', 'export');
const fixtureDoc = () => JSON.parse(readFileSync(path.join(FIXTURE, 'conversation.json'), 'utf8'));

const start = (id, conversation, url = 'https://news.example/night-trains', title = 'Night trains return to Europe') => ({
  type: 'start', id, conversation_id: conversation,
  page: { title, url, words: 3, tokens: 4, plan: { strategy: 'whole', coverage: 1 } },
});
const done = (id, conversation, reason = 'stop') => ({
  type: 'done', id, conversation_id: conversation, finish_reason: reason,
  usage: { prompt_tokens: 1, completion_tokens: 1 }, timing: { ttft_ms: 1, total_ms: 2 },
});

function bookWithConversation() {
  const book = new RequestBook();
  book.create({ id: 's1', kind: 'summarize', tabId: 3, label: 'Summary · Key points, short', params: {} });
  book.apply(start('s1', 'c1'));
  book.apply({ type: 'delta', id: 's1', text: '- Night trains are back.' });
  book.apply({ type: 'citation', id: 's1', n: 1, quote: 'Night trains are coming back across Europe.' });
  book.apply(done('s1', 'c1'));
  book.create({ id: 'q1', kind: 'ask', tabId: 3, label: 'Which cities?', params: {} });
  book.apply(start('q1', 'c1', 'https://news.example/timetable.pdf', 'Timetable'));
  book.apply({ type: 'delta', id: 'q1', text: 'Brussels and Prague.' });
  book.apply({ type: 'citation', id: 'q1', n: 1, quote: 'It links Brussels and Prague.', page: 2 });
  book.apply(done('q1', 'c1'));
  book.create({ id: 'q2', kind: 'ask', tabId: 3, label: 'Still reading', params: {} }); // no text yet
  return book;
}

test('the Markdown of a conversation is the one the CLI writes for the same document', () => {
  const expected = readFileSync(path.join(FIXTURE, 'conversation.md'), 'utf8');
  assert.equal(conversationMarkdown(fixtureDoc()), expected);
});

test('a thread becomes a document: each answer with its question, citations and their page URL', () => {
  const doc = conversationDocument(bookWithConversation().view(3));
  assert.equal(doc.format, 'tiangong-conversation');
  assert.equal(doc.conversation_id, 'c1');
  assert.equal(doc.title, 'Timetable'); // the page the conversation reads now
  assert.equal(doc.exchanges.length, 2, 'an answer with no text yet is left out');
  const [summary, question] = doc.exchanges;
  assert.equal(summary.question, 'Summary · Key points, short');
  assert.deepEqual(summary.citations, [{ n: 1, quote: 'Night trains are coming back across Europe.', url: 'https://news.example/night-trains' }]);
  assert.equal(question.url, 'https://news.example/timetable.pdf');
  assert.equal(question.citations[0].url, 'https://news.example/timetable.pdf#page=2');
  const markdown = conversationMarkdown(doc);
  assert.match(markdown, /^# Timetable\n/);
  assert.match(markdown, /## Which cities\?\n\nBrussels and Prague\.\n\nSources:\n\n- \[1\] “It links Brussels and Prague\.” \(p\. 2\) — <https:\/\/news\.example\/timetable\.pdf#page=2>/);
});

test('a stopped answer says so in the Markdown, and the localized words are used', () => {
  const doc = fixtureDoc();
  const labels = { sources: '来源', page: (n) => `第 ${n} 页`, unfinished: { cancelled: '已停止。', error: '不完整。' } };
  const markdown = conversationMarkdown(doc, labels);
  assert.match(markdown, /Old rolling stock\n\n_已停止。_\n$/);
  assert.match(markdown, /来源:\n\n- \[1\] “A new sleeper service .*” \(第 2 页\)/);
});

test('a conversation restored from history is named after its stored page title', () => {
  const book = new RequestBook();
  const conversation = { id: 'c9', url: 'https://news.example/night-trains', title: 'Night trains return' };
  book.restoreConversation(5, conversation, [
    { role: 'user', kind: 'ask', text: 'Which cities?', created_at: '2026-01-01T00:00:00Z' },
    { role: 'assistant', kind: 'ask', text: 'Brussels and Prague.', request_id: 'q1', finish_reason: 'stop',
      citations: [{ n: 1, quote: 'It links Brussels and Prague.' }], created_at: '2026-01-01T00:00:01Z' },
  ]);
  const doc = conversationDocument(book.view(5));
  assert.equal(doc.title, 'Night trains return');
  assert.equal(doc.exchanges[0].question, 'Which cities?');
  assert.equal(doc.exchanges[0].citations[0].url, 'https://news.example/night-trains');
  assert.equal(exportFileName(doc.title, 'md'), 'Night trains return.md');
});

test('a citation from another tab keeps its tab index and claims no URL', () => {
  const thread = { tabId: 1, conversationId: null, url: 'https://a.example/', requests: [
    { id: 'q', kind: 'ask', label: 'Compare', text: 'They differ.', finishReason: 'stop', page: null,
      citations: [{ n: 1, quote: 'A says so.', source: 1 }] },
  ] };
  const [exchange] = conversationDocument(thread).exchanges;
  assert.deepEqual(exchange.citations, [{ n: 1, quote: 'A says so.', source: 1 }]);
});

test('Copy with sources puts the citations under the answer', () => {
  const view = bookWithConversation().view(3).requests[0];
  assert.equal(answerWithSources(view), '- Night trains are back.\n\nSources:\n\n- [1] “Night trains are coming back across Europe.” — <https://news.example/night-trains>');
  assert.equal(answerWithSources({ ...view, citations: [] }), '- Night trains are back.');
});

test('a file name made from a hostile page title is safe on every system', () => {
  assert.equal(exportFileName('Night trains: return / Europe?', 'md'), 'Night trains return Europe.md');
  assert.equal(exportFileName('../../etc/passwd', 'json'), 'etc passwd.json');
  assert.equal(exportFileName('..', 'md'), 'tiangong-conversation.md');
  assert.equal(exportFileName('a\u0000b\u202ec\tt', 'md'), 'a b c t.md');
  assert.equal(exportFileName('', 'json'), 'tiangong-conversation.json');
  assert.equal(exportFileName('长'.repeat(200), 'md'), `${'长'.repeat(80)}.md`);
});

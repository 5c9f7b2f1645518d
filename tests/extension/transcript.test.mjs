import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clockTime, parseVtt, parseYoutube, transcriptOf } from '../../extension/lib/transcript.js';
import { realCodec } from './helpers.mjs';

const codec = await realCodec();
const ROOM = { maxCues: codec.limits.cues, cueChars: codec.limits.cueText, maxBytes: 100_000 };

const VTT = `WEBVTT - Tides

NOTE a comment that is no cue

1
00:00:00.000 --> 00:00:04.200 align:start
<v Narrator>Tides are caused mostly by the <i>Moon's</i> gravity.</v>

00:04.200 --> 00:07.000
The Sun adds a smaller pull,
which makes spring tides higher &amp; neap tides lower.

01:02:03.5 --> 01:02:05.000
An hour in.
`;

test('WebVTT cues keep their times, lose their markup and settings, and read as one line', () => {
  assert.deepEqual(parseVtt(VTT), [
    { start: 0, end: 4.2, text: "Tides are caused mostly by the Moon's gravity." },
    { start: 4.2, end: 7, text: 'The Sun adds a smaller pull, which makes spring tides higher & neap tides lower.' },
    { start: 3723.5, end: 3725, text: 'An hour in.' },
  ]);
  assert.deepEqual(parseVtt(VTT.replace(/\n/g, '\r\n')), parseVtt(VTT));
});

test('YouTube timed text is read in its three shapes: classic XML, srv3 and json3', () => {
  const classic = '<?xml version="1.0"?><transcript><text start="1.5" dur="2.25">It&amp;#39;s high &amp;amp; dry</text><text start="3.75" dur="1">Next</text></transcript>';
  assert.deepEqual(parseYoutube(classic), [
    { start: 1.5, end: 3.75, text: "It's high & dry" },
    { start: 3.75, end: 4.75, text: 'Next' },
  ]);
  const srv3 = '<timedtext format="3"><body><p t="1500" d="2250">Low <s>water</s></p><p t="3750">Next</p></body></timedtext>';
  assert.deepEqual(parseYoutube(srv3), [
    { start: 1.5, end: 3.75, text: 'Low water' },
    { start: 3.75, text: 'Next' },
  ]);
  const json3 = JSON.stringify({ events: [{ tStartMs: 0, dDurationMs: 1000 }, { tStartMs: 1500, dDurationMs: 500, segs: [{ utf8: 'Spring ' }, { utf8: 'tide' }] }] });
  assert.deepEqual(parseYoutube(json3), [{ start: 1.5, end: 2, text: 'Spring tide' }]);
});

test('the transcript fits the schema: repeats and empty cues dropped, a bad language tag left out', () => {
  const body = 'WEBVTT\n\n00:00.000 --> 00:01.000\nSame\n\n00:01.000 --> 00:02.000\nSame\n\n00:02.000 --> 00:03.000\n<b></b>\n\n00:03.000 --> 00:04.000\nOther';
  const { transcript, cut } = transcriptOf({ format: 'vtt', body, language: 'en-GB' }, ROOM);
  assert.equal(cut, false);
  assert.deepEqual(transcript, { cues: [{ start: 0, end: 1, text: 'Same' }, { start: 3, end: 4, text: 'Other' }], language: 'en-GB' });
  const frame = { type: 'summarize', id: 'v1', page: { url: 'https://v.test/', transcript } };
  assert.ok(codec.decodeClient(codec.encodeClient(frame)));
  assert.equal(transcriptOf({ format: 'vtt', body, language: 'not a tag!' }, ROOM).transcript.language, undefined);
  assert.equal(transcriptOf({ format: 'vtt', body: 'WEBVTT\n\n', language: 'en' }, ROOM), null);
});

test('a transcript over the frame budget or the cue limit is cut, and says so', () => {
  const lines = Array.from({ length: 500 }, (_, i) => `00:${String(Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000 --> 00:59:59.000\nCue number ${i} says something.`);
  const body = `WEBVTT\n\n${lines.join('\n\n')}`;
  const small = transcriptOf({ format: 'vtt', body }, { ...ROOM, maxBytes: 2000 });
  assert.equal(small.cut, true);
  assert.ok(JSON.stringify(small.transcript.cues).length <= 2000);
  assert.equal(small.transcript.cues[0].text, 'Cue number 0 says something.');
  const few = transcriptOf({ format: 'vtt', body }, { ...ROOM, maxCues: 10 });
  assert.equal(few.cut, true);
  assert.equal(few.transcript.cues.length, 10);
  const long = transcriptOf({ format: 'vtt', body: `WEBVTT\n\n00:00.000 --> 00:01.000\n${'w'.repeat(5000)}` }, ROOM);
  assert.equal(long.transcript.cues[0].text.length, codec.limits.cueText);
});

test('chips show times as m:ss, or h:mm:ss past the hour', () => {
  assert.equal(clockTime(0), '0:00');
  assert.equal(clockTime(65.9), '1:05');
  assert.equal(clockTime(3723.5), '1:02:03');
});

test('the transcript panel YouTube shows is read from its stamps, and a body that is no JSON reads as nothing', () => {
  const body = JSON.stringify([{ at: '0:05', text: 'Ice moves.' }, { at: '1:02:03', text: 'Much later.' }, { at: 'soon', text: 'No time.' }]);
  assert.deepEqual(transcriptOf({ format: 'segments', body }, ROOM).transcript.cues, [
    { start: 5, text: 'Ice moves.' },
    { start: 3723, text: 'Much later.' },
  ]);
  assert.equal(transcriptOf({ format: 'segments', body: '{not json' }, ROOM), null);
  assert.equal(transcriptOf({ format: 'youtube', body: '{not json' }, ROOM), null);
});

// A video's caption file (what content/page-functions.js findCaptions fetched) → the
// protocol's `page.transcript` {language?, cues: [{start, end?, text}]}: WebVTT from a <track>,
// YouTube's timed text (its XML formats, or json3), or the segments of the transcript panel a
// YouTube page shows ([{at: "1:05", text}]). Pure functions, no browser globals.

const TIMESTAMP = /(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})/;
const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/;
const MAX_SECONDS = 1_000_000; // the schema's maximum for start and end
const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function seconds(match) {
  const [, hours, minutes, secs, fraction] = match;
  return Number(hours ?? 0) * 3600 + Number(minutes) * 60 + Number(secs) + Number(fraction.padEnd(3, '0')) / 1000;
}

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : Number(name.slice(1));
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** Caption markup (<c>, <v Speaker>, <i>, timestamps) out, entities decoded, spaces folded. */
function plain(text) {
  return decodeEntities(text.replace(/<[^>]*>/g, '')).replace(/\s+/g, ' ').trim();
}

/** WebVTT (or SRT, which differs only in the comma) → cues. */
export function parseVtt(body) {
  const cues = [];
  for (const block of body.replace(/\r\n?/g, '\n').split(/\n{2,}/)) {
    const lines = block.split('\n');
    const at = lines.findIndex((line) => line.includes('-->'));
    if (at < 0) continue; // WEBVTT header, NOTE, STYLE, REGION
    const [from, to] = lines[at].split('-->');
    const start = TIMESTAMP.exec(from);
    const end = TIMESTAMP.exec(to ?? '');
    if (!start) continue;
    cues.push({ start: seconds(start), ...(end ? { end: seconds(end) } : {}), text: plain(lines.slice(at + 1).join(' ')) });
  }
  return cues;
}

/** YouTube timed text → cues: json3 ({events: [{tStartMs, dDurationMs, segs}]}), srv3
 * (<p t="ms" d="ms">) or the classic format (<text start="s" dur="s">). */
export function parseYoutube(body) {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{')) {
    const events = JSON.parse(trimmed).events ?? [];
    return events
      .filter((event) => Array.isArray(event.segs) && Number.isFinite(event.tStartMs))
      .map((event) => ({
        start: event.tStartMs / 1000,
        ...(Number.isFinite(event.dDurationMs) ? { end: (event.tStartMs + event.dDurationMs) / 1000 } : {}),
        text: plain(event.segs.map((seg) => seg.utf8 ?? '').join('')),
      }));
  }
  const cues = [];
  const attribute = (attrs, name) => new RegExp(`\\b${name}="([\\d.]+)"`).exec(attrs)?.[1];
  for (const [, tag, attrs, inner] of trimmed.matchAll(/<(text|p)\b([^>]*)>([\s\S]*?)<\/\1>/g)) {
    const classic = tag === 'text';
    const start = Number(attribute(attrs, classic ? 'start' : 't'));
    const length = Number(attribute(attrs, classic ? 'dur' : 'd'));
    if (!Number.isFinite(start)) continue;
    const scale = classic ? 1 : 1000;
    // The classic format escapes its text twice (&amp;#39;): decode once here, once in plain().
    const text = plain(decodeEntities(inner));
    cues.push({ start: start / scale, ...(Number.isFinite(length) ? { end: (start + length) / scale } : {}), text });
  }
  return cues;
}

/** The transcript panel's segments: "m:ss" or "h:mm:ss" stamps → seconds. */
export function parseSegments(body) {
  const segments = JSON.parse(body);
  if (!Array.isArray(segments)) return [];
  return segments
    .map((segment) => {
      const parts = String(segment?.at ?? '').split(':').map(Number);
      const start = parts.length >= 2 && parts.length <= 3 && parts.every(Number.isFinite) ? parts.reduce((total, part) => total * 60 + part, 0) : NaN;
      return { start, text: plain(String(segment?.text ?? '')) };
    })
    .filter((cue) => Number.isFinite(cue.start));
}

const PARSERS = { vtt: parseVtt, youtube: parseYoutube, segments: parseSegments };

const round = (value) => Math.min(MAX_SECONDS, Math.round(value * 1000) / 1000);

/**
 * The transcript the protocol carries, from what findCaptions found: cues without text and
 * repeats of the cue before (rolling automatic captions) dropped, each cut to `cueChars`, as
 * many as `maxCues` and `maxBytes` (of JSON) allow. null when no cue has text.
 */
export function transcriptOf({ format, body, language }, { maxCues, cueChars, maxBytes }) {
  let parsed;
  try {
    parsed = (PARSERS[format] ?? parseVtt)(body);
  } catch {
    return null; // a JSON body that is not JSON: nothing readable
  }
  const encoder = new TextEncoder();
  const cues = [];
  let bytes = 0;
  let cut = false;
  for (const cue of parsed) {
    const text = cue.text.slice(0, cueChars);
    if (!text || text === cues.at(-1)?.text) continue;
    const item = { start: round(Math.max(0, cue.start)), ...(cue.end !== undefined && cue.end >= cue.start ? { end: round(cue.end) } : {}), text };
    bytes += encoder.encode(JSON.stringify(item)).length + 1;
    if (cues.length >= maxCues || bytes > maxBytes) {
      cut = true;
      break;
    }
    cues.push(item);
  }
  if (!cues.length) return null;
  const transcript = { cues };
  if (language && language.length <= 35 && LANGUAGE_TAG.test(language)) transcript.language = language;
  return { transcript, cut };
}

/** "1:05", "1:02:03": a time in the video as a chip shows it. */
export function clockTime(time) {
  const total = Math.floor(time);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

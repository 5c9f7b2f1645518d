// Read aloud: an answer spoken by the browser's own speechSynthesis, with one of the voices
// installed on this computer (`localService`), in the answer's language. A voice that is not
// local (a cloud voice some browsers list) would send the text away, so none is used: without
// a local voice for the language the panel says so and speaks nothing. One answer at a time.

const WAIT_FOR_VOICES_MS = 1500; // Chromium lists its voices a moment after the page loads
const PIECE_CHARS = 220; // long utterances stop early in Chromium; short pieces do not

const base = (lang) => String(lang ?? '').toLowerCase().replace('_', '-').split('-')[0];

/** The local voice for `lang`: the same tag, else the same language; null when none. */
export function pickVoice(voices, lang) {
  const local = voices.filter((voice) => voice.localService);
  const wanted = String(lang ?? '').toLowerCase().replace('_', '-');
  return (
    local.find((voice) => voice.lang.toLowerCase().replace('_', '-') === wanted && voice.default) ??
    local.find((voice) => voice.lang.toLowerCase().replace('_', '-') === wanted) ??
    local.find((voice) => base(voice.lang) === base(lang) && voice.default) ??
    local.find((voice) => base(voice.lang) === base(lang)) ??
    null
  );
}

/** The text in pieces a voice reads whole: paragraphs, long ones cut after a sentence. */
export function speechPieces(text) {
  const pieces = [];
  for (const paragraph of String(text).split(/\n+/)) {
    let rest = paragraph.replace(/\s+/g, ' ').trim();
    while (rest.length > PIECE_CHARS) {
      const head = rest.slice(0, PIECE_CHARS);
      const cut = Math.max(...['. ', '! ', '? ', '; ', '。', '！', '？', '；', ', ', '，'].map((mark) => head.lastIndexOf(mark)));
      const at = cut > PIECE_CHARS / 3 ? cut + 1 : head.lastIndexOf(' ') > 0 ? head.lastIndexOf(' ') : PIECE_CHARS;
      pieces.push(rest.slice(0, at).trim());
      rest = rest.slice(at).trim();
    }
    if (rest) pieces.push(rest);
  }
  return pieces;
}

export class ReadAloud {
  /** `onChange(id | null)`: which answer is being read now. */
  constructor({ onChange, speech = globalThis.speechSynthesis, Utterance = globalThis.SpeechSynthesisUtterance }) {
    Object.assign(this, { onChange, speech, Utterance });
    this.speaking = null;
  }

  get supported() {
    return Boolean(this.speech && typeof this.Utterance === 'function');
  }

  async voices() {
    let voices = this.speech.getVoices();
    if (voices.length) return voices;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, WAIT_FOR_VOICES_MS);
      this.speech.addEventListener?.('voiceschanged', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    voices = this.speech.getVoices();
    return voices;
  }

  /**
   * Reads `text` for answer `id` in `lang`; resolves with null once it started, or with the
   * reason it could not ({ reason: 'no-voice' }).
   */
  async read(id, text, lang) {
    this.stop();
    const voice = pickVoice(await this.voices(), lang);
    if (!voice) return { reason: 'no-voice' };
    const pieces = speechPieces(text);
    if (!pieces.length) return { reason: 'empty' };
    this.speaking = id;
    this.onChange(id);
    pieces.forEach((piece, i) => {
      const utterance = new this.Utterance(piece);
      utterance.voice = voice;
      utterance.lang = voice.lang;
      if (i === pieces.length - 1) utterance.onend = () => this.finished(id);
      utterance.onerror = () => this.finished(id);
      this.speech.speak(utterance);
    });
    return null;
  }

  finished(id) {
    if (this.speaking !== id) return;
    this.speaking = null;
    this.onChange(null);
  }

  stop() {
    if (this.speaking === null) return;
    const id = this.speaking;
    this.speaking = null;
    this.speech.cancel();
    this.onChange(null);
    return id;
  }
}

// The conversation of one tab: a question (or what was summarized/rewritten) and its answer,
// streamed and rendered as sanitised Markdown, with citation chips and actions. It draws the
// views the service worker's request book pushes (answerView in lib/request-book.js) and keeps
// no answer of its own; every action goes back to the worker through `actions`.

import { answerWithSources } from '../lib/conversation-export.js';
import { t } from '../lib/i18n.js';
import { LANGUAGES, languageName } from '../lib/languages.js';
import { renderAnswer } from '../lib/sanitize.js';
import { clockTime } from '../lib/transcript.js';
import { inlineCode } from './status-view.js';

const PROGRESS_WORDS = {
  queued: 'progressQueued',
  loading_model: 'progressLoadingModel',
  extracting: 'progressReading',
  reading: 'progressReadingParts',
};
const TONES = [['as-is', 'toneSame'], ['more-formal', 'menuMoreFormal'], ['more-casual', 'menuMoreCasual']];
const LENGTHS = [['as-is', 'lengthSame'], ['shorter', 'menuShorter'], ['longer', 'menuLonger']];

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('aria-') || key === 'role') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function select(options, value, label) {
  const node = el('select', { 'aria-label': label });
  for (const [v, key] of options) node.append(el('option', { value: v, textContent: t(key), selected: v === value }));
  return node;
}

function progressText(view) {
  if (!view.progress) return view.text ? '' : t('readingPage');
  const { stage, done, total } = view.progress;
  const words = PROGRESS_WORDS[stage] ? t(PROGRESS_WORDS[stage]) : stage;
  if (stage === 'queued' && total) return t('queuedAhead', words, total);
  return total ? `${words} (${done}/${total})…` : `${words}…`;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el('textarea', { value: text });
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

export class ThreadView {
  /**
   * `actions`: { cite(payload), replace(id), retry(id, options), translate(id, language) }, each
   * a request to the worker (replace resolves with its outcome); `onChange(latest)` after each
   * change, with the view of the last answer (or null). `readAloud`: a ReadAloud
   * (read-aloud.js); its button is left out where the browser has no speechSynthesis.
   */
  constructor({ root, actions, onChange, readAloud = null }) {
    this.root = root;
    this.actions = actions;
    this.onChange = onChange;
    this.readAloud = readAloud?.supported ? readAloud : null;
    this.cards = new Map(); // answer id -> the card drawing the view last pushed for it
    this.pressedChip = null;
    this.meta = { tabId: null, conversationId: null, url: null, title: null };
  }

  /** The thread shown, as `RequestBook.view` gives it (what an export is made of). */
  current() {
    const requests = [...this.cards.values()].map((card) => card.view);
    // The page the conversation read last: the newest answer's, once its start came.
    const url = requests.findLast((view) => view.page?.url)?.page.url ?? this.meta.url;
    return { ...this.meta, url, requests };
  }

  /** The whole thread as the worker has it: cards for new answers, gone ones removed, in order. */
  show(thread) {
    this.meta = { tabId: thread.tabId, conversationId: thread.conversationId ?? null, url: thread.url ?? null, title: thread.title ?? null };
    if (this.readAloud && !thread.requests.some((view) => view.id === this.readAloud.speaking)) this.readAloud.stop();
    const wanted = new Map();
    let added = false;
    for (const view of thread.requests) {
      let card = this.cards.get(view.id);
      if (!card) {
        card = this.build(view);
        added = true;
      }
      wanted.set(view.id, card);
      this.draw(card, view);
    }
    for (const [id, card] of this.cards) if (!wanted.has(id)) card.root.remove();
    this.cards = wanted;
    // Move only what is out of place, so the cards kept keep their focus and scroll.
    [...wanted.values()].forEach((card, i) => {
      if (this.root.children[i] !== card.root) this.root.insertBefore(card.root, this.root.children[i] ?? null);
    });
    if (added) this.root.lastElementChild?.scrollIntoView?.({ block: 'end' });
    this.onChange(this.latest());
  }

  /** One answer's new view; an answer this thread does not show is not drawn. */
  update(view) {
    const card = this.cards.get(view.id);
    if (!card) return;
    this.draw(card, view);
    if (card.root === this.root.lastElementChild) card.root.scrollIntoView?.({ block: 'end' });
    this.onChange(this.latest());
  }

  /** The view the last card shows: what the worker last pushed for it. */
  latest() {
    return [...this.cards.values()].at(-1)?.view ?? null;
  }

  draw(card, view) {
    card.view = Object.freeze(view); // drawn as pushed, never edited here
    this.fill(card);
  }

  build(view) {
    const asked = el('div', { className: view.kind === 'ask' ? 'ask-text' : 'ask-text quoted' });
    const progress = el('p', { className: 'progress' });
    const body = el('div', { className: 'answer-body' });
    const error = el('p', { className: 'error-text', role: 'alert' });
    const notice = el('p', { className: 'notice' });
    const citations = el('ul', { className: 'citations', 'aria-label': t('sourcesOnPage') });
    const actions = el('div', { className: 'actions' });
    const answer = el('div', { className: 'answer', dataset: { testid: 'answer', requestId: view.id } }, progress, body, error, notice, citations, actions);
    const root = el('article', { className: 'turn', dataset: { requestId: view.id } }, asked, answer);
    return { root, asked, answer, progress, body, error, notice, citations, actions, view, shownCitations: '' };
  }

  fill(card) {
    const { view } = card;
    card.asked.textContent = view.kind === 'rewrite' ? t('rewriteLabel', view.label) : view.label;
    card.asked.dir = 'auto';
    // Right-to-left scripts (Arabic) and CJK glyph choice follow the answer's language.
    card.body.dir = 'auto';
    const lang = view.language;
    if (lang) card.body.lang = lang;
    else card.body.removeAttribute('lang');
    card.answer.dataset.state = view.state;
    card.answer.dataset.kind = view.kind;
    card.answer.setAttribute('aria-busy', String(view.state === 'streaming'));
    card.progress.textContent = view.state === 'streaming' ? progressText(view) : '';
    card.progress.hidden = !card.progress.textContent;
    renderAnswer(card.body, view.text, { format: view.format });
    card.error.hidden = view.state !== 'error';
    inlineCode(card.error, view.state === 'error' ? view.error?.message ?? t('answerFailed') : '');
    const notes = [];
    if (view.finishReason === 'cancelled') notes.push(t('stopped'));
    if (view.finishReason === 'length') notes.push(t('lengthLimit'));
    if (view.notice) notes.push(view.notice);
    card.notice.textContent = notes.join(' ');
    card.notice.hidden = !notes.length;
    this.fillCitations(card);
    this.fillActions(card);
  }

  fillCitations(card) {
    const key = JSON.stringify(card.view.citations);
    if (key === card.shownCitations) return;
    card.shownCitations = key;
    card.citations.replaceChildren(
      ...card.view.citations.map(({ n, quote, page, source, time }) => {
        // "2 · p. 7" (a PDF page), "[3] 1" (which tab, in an answer across tabs), "1 · 2:05" (a video).
        let text = String(n);
        if (source !== undefined) text = `[${source + 1}] ${text}`;
        if (page !== undefined) text += ` · ${t('pageShort', page)}`;
        if (time !== undefined) text += ` · ${clockTime(time)}`;
        let where = page !== undefined ? t('citeOnPdfPage', n, page) : source !== undefined ? t('citeInTab', n, source + 1) : t('citeOnPage', n);
        if (time !== undefined) where = t('citeAtTime', n, clockTime(time));
        const chip = el('button', {
          type: 'button', className: 'chip', textContent: text, title: quote, dir: 'auto',
          'aria-label': where, 'aria-pressed': 'false',
          dataset: {
            testid: 'citation', n: String(n),
            ...(page !== undefined ? { page: String(page) } : {}),
            ...(source !== undefined ? { source: String(source) } : {}),
            ...(time !== undefined ? { time: String(time) } : {}),
          },
        });
        chip.addEventListener('click', () => {
          if (this.pressedChip) this.pressedChip.setAttribute('aria-pressed', 'false');
          chip.setAttribute('aria-pressed', 'true');
          this.pressedChip = chip;
          this.actions.cite({ n, quote, requestId: card.view.id, source, page, time });
        });
        return el('li', {}, chip);
      }),
    );
  }

  fillActions(card) {
    const { view } = card;
    const hasText = Boolean(view.text);
    const key = `${view.state}|${view.kind}|${view.restored}|${view.editable}|${view.canRetry}|${hasText}|${view.citations.length > 0}`;
    if (card.actionsKey === key) return;
    card.actionsKey = key;
    const buttons = [];
    const result = el('span', { className: 'result', role: 'status' });
    // Copy copies what the card shows when pressed, also while the answer still streams.
    const copy = el('button', { type: 'button', textContent: t('copy'), 'aria-label': t('copyAnswer'), dataset: { testid: 'copy' } });
    copy.addEventListener('click', async () => {
      result.textContent = (await copyText(card.view.text)) ? t('copied') : t('copyFailed');
    });
    if (hasText) buttons.push(copy);
    if (hasText && view.citations.length) {
      const cited = el('button', { type: 'button', textContent: t('copyWithSources'), 'aria-label': t('copyWithSourcesHelp'), dataset: { testid: 'copy-cited' } });
      cited.addEventListener('click', async () => {
        const text = answerWithSources(card.view, this.meta.url, exportLabels());
        result.textContent = (await copyText(text)) ? t('copied') : t('copyFailed');
      });
      buttons.push(cited);
    }
    if (view.state === 'streaming') {
      card.actions.replaceChildren(...buttons, result);
      return;
    }
    if (hasText && this.readAloud) buttons.push(this.readAloudButton(card, result));
    if (hasText && view.state === 'done') buttons.push(this.translateChoice(card));
    if (view.kind === 'rewrite' && view.canRetry) {
      const replace = this.replaceButton(card, result);
      const tone = select(TONES, view.tone ?? 'as-is', t('tone'));
      const length = select(LENGTHS, view.length ?? 'as-is', t('optionLength'));
      const retry = el('button', { type: 'button', textContent: t('retry'), dataset: { testid: 'retry' }, 'aria-label': t('retryRewrite') });
      retry.addEventListener('click', () => this.retry(card, { tone: tone.value, length: length.value }));
      buttons.push(replace, retry, tone, length);
    } else if (view.canRetry) {
      // A selection action's answer can go back where the selection was, like a rewrite's.
      if (view.kind === 'selection-action') buttons.push(this.replaceButton(card, result));
      const again = el('button', { type: 'button', textContent: view.state === 'error' ? t('retry') : t('regenerate'), dataset: { testid: 'regenerate' } });
      again.addEventListener('click', () => this.retry(card, {}));
      buttons.push(again);
    }
    card.actions.replaceChildren(...buttons, result);
  }

  /** Replace: writes the answer back where its selection was (when that is editable). */
  replaceButton(card, result) {
    const { view } = card;
    const replace = el('button', { type: 'button', textContent: t('replace'), dataset: { testid: 'replace' }, 'aria-label': t('replaceHelp') });
    replace.disabled = !view.editable || !view.text || view.state !== 'done';
    if (!view.editable) replace.title = t('replaceNotEditable');
    replace.addEventListener('click', async () => {
      const outcome = await this.actions.replace(card.view.id);
      result.textContent = outcome?.ok ? t('replaced') : outcome?.reason ?? t('replaceFailed');
      card.answer.dataset.replaced = outcome?.ok ? 'yes' : 'no';
    });
    return replace;
  }

  /** "Translate into…": a menu of languages; choosing one translates this answer. */
  translateChoice(card) {
    const choice = el('select', { 'aria-label': t('translateInto'), dataset: { testid: 'translate' } });
    choice.append(el('option', { value: '', textContent: t('translateInto') }));
    for (const [code, name] of LANGUAGES) choice.append(el('option', { value: code, textContent: name }));
    choice.addEventListener('change', () => {
      if (choice.value) this.actions.translate(card.view.id, choice.value);
      choice.value = '';
    });
    return choice;
  }

  retry(card, options) {
    this.actions.retry(card.view.id, options);
  }

  /** Read aloud / Stop reading, for this answer; `data-speaking` says which it is. */
  readAloudButton(card, result) {
    const button = el('button', { type: 'button', dataset: { testid: 'read-aloud' } });
    card.showSpeaking = () => {
      const speaking = this.readAloud.speaking === card.view.id;
      button.dataset.speaking = String(speaking);
      button.textContent = speaking ? t('stopReading') : t('readAloud');
      button.setAttribute('aria-pressed', String(speaking));
    };
    card.showSpeaking();
    button.addEventListener('click', async () => {
      result.textContent = '';
      if (this.readAloud.speaking === card.view.id) {
        this.readAloud.stop();
        return;
      }
      const lang = card.view.language || card.view.page?.lang || document.documentElement.lang || navigator.language;
      const failed = await this.readAloud.read(card.view.id, card.body.innerText, lang);
      if (failed?.reason === 'no-voice') result.textContent = t('noLocalVoice', languageName(lang) || lang);
    });
    return button;
  }

  /** The answer being read changed: every card's button shows its own state again. */
  showSpeaking() {
    for (const card of this.cards.values()) card.showSpeaking?.();
  }
}

/** The words an export and Copy with sources add, in the UI's language. */
export function exportLabels() {
  return {
    sources: t('exportSources'),
    page: (n) => t('pageShort', n),
    unfinished: { cancelled: t('exportStopped'), error: t('exportIncomplete') },
  };
}

// The conversation of one tab: a question (or what was summarized/rewritten) and its answer,
// streamed and rendered as sanitised Markdown, with citation chips and actions. The view only
// shows records the service worker owns; every action goes back to it through `act`.

import { t } from '../lib/i18n.js';
import { LANGUAGES } from '../lib/languages.js';
import { renderAnswer } from '../lib/sanitize.js';
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

function progressText(record) {
  if (!record.progress) return record.text ? '' : t('readingPage');
  const { stage, done, total } = record.progress;
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
  constructor({ root, act, onChange }) {
    this.root = root;
    this.act = act;
    this.onChange = onChange;
    this.cards = new Map();
    this.pressedChip = null;
  }

  reset(thread) {
    this.root.replaceChildren();
    this.cards.clear();
    for (const record of thread.requests) this.upsert(record);
    this.onChange(this.latest());
  }

  get(id) {
    return this.cards.get(id)?.record ?? null;
  }

  latest() {
    const last = [...this.cards.values()].at(-1);
    return last?.record ?? null;
  }

  upsert(record) {
    let card = this.cards.get(record.id);
    if (!card) {
      card = this.build(record);
      // A regenerated answer takes the place of the one it replaces.
      const replaced = record.replaces ? this.cards.get(record.replaces) : null;
      if (replaced) {
        replaced.root.replaceWith(card.root);
        this.cards.delete(record.replaces);
      } else {
        this.root.append(card.root);
      }
      this.cards.set(record.id, card);
    }
    card.record = record;
    this.fill(card);
    this.root.lastElementChild?.scrollIntoView?.({ block: 'end' });
    this.onChange(this.latest());
  }

  remove(id) {
    this.cards.get(id)?.root.remove();
    this.cards.delete(id);
  }

  appendDelta(id, text) {
    const card = this.cards.get(id);
    if (!card || card.record.state !== 'streaming') return;
    card.record = { ...card.record, text: card.record.text + text, progress: null };
    this.scheduleRender(card);
  }

  scheduleRender(card) {
    if (card.frame) return;
    card.frame = requestAnimationFrame(() => {
      card.frame = null;
      this.fill(card);
    });
  }

  build(record) {
    const asked = el('div', { className: record.kind === 'ask' ? 'ask-text' : 'ask-text quoted' });
    const progress = el('p', { className: 'progress' });
    const body = el('div', { className: 'answer-body' });
    const error = el('p', { className: 'error-text', role: 'alert' });
    const notice = el('p', { className: 'notice' });
    const citations = el('ul', { className: 'citations', 'aria-label': t('sourcesOnPage') });
    const actions = el('div', { className: 'actions' });
    const answer = el('div', { className: 'answer', dataset: { testid: 'answer', requestId: record.id } }, progress, body, error, notice, citations, actions);
    const root = el('article', { className: 'turn', dataset: { requestId: record.id } }, asked, answer);
    return { root, asked, answer, progress, body, error, notice, citations, actions, record, shownCitations: '' };
  }

  fill(card) {
    const { record } = card;
    card.asked.textContent = record.kind === 'rewrite' ? t('rewriteLabel', record.label) : record.label;
    card.asked.dir = 'auto';
    // Right-to-left scripts (Arabic) and CJK glyph choice follow the answer's language.
    card.body.dir = 'auto';
    const lang = record.params?.options?.output_language;
    if (lang) card.body.lang = lang;
    else card.body.removeAttribute('lang');
    card.answer.dataset.state = record.state;
    card.answer.dataset.kind = record.kind;
    card.answer.setAttribute('aria-busy', String(record.state === 'streaming'));
    card.progress.textContent = record.state === 'streaming' ? progressText(record) : '';
    card.progress.hidden = !card.progress.textContent;
    renderAnswer(card.body, record.text, { format: record.format });
    card.error.hidden = record.state !== 'error';
    inlineCode(card.error, record.state === 'error' ? record.error?.message ?? t('answerFailed') : '');
    const notes = [];
    if (record.finishReason === 'cancelled') notes.push(t('stopped'));
    if (record.finishReason === 'length') notes.push(t('lengthLimit'));
    if (record.notice) notes.push(record.notice);
    card.notice.textContent = notes.join(' ');
    card.notice.hidden = !notes.length;
    this.fillCitations(card);
    this.fillActions(card);
  }

  fillCitations(card) {
    const key = JSON.stringify(card.record.citations);
    if (key === card.shownCitations) return;
    card.shownCitations = key;
    card.citations.replaceChildren(
      ...card.record.citations.map(({ n, quote, page, source }) => {
        // "2 · p. 7" (a PDF page), "[3] 1" (which tab, in an answer across tabs).
        let text = String(n);
        if (source !== undefined) text = `[${source + 1}] ${text}`;
        if (page !== undefined) text += ` · ${t('pageShort', page)}`;
        const where = page !== undefined ? t('citeOnPdfPage', n, page) : source !== undefined ? t('citeInTab', n, source + 1) : t('citeOnPage', n);
        const chip = el('button', {
          type: 'button', className: 'chip', textContent: text, title: quote, dir: 'auto',
          'aria-label': where, 'aria-pressed': 'false',
          dataset: { testid: 'citation', n: String(n), ...(page !== undefined ? { page: String(page) } : {}), ...(source !== undefined ? { source: String(source) } : {}) },
        });
        chip.addEventListener('click', () => {
          if (this.pressedChip) this.pressedChip.setAttribute('aria-pressed', 'false');
          chip.setAttribute('aria-pressed', 'true');
          this.pressedChip = chip;
          this.act('cite', { n, quote, requestId: card.record.id, source, page });
        });
        return el('li', {}, chip);
      }),
    );
  }

  fillActions(card) {
    const { record } = card;
    const key = `${record.state}|${record.kind}|${record.restored}|${record.target?.editable}`;
    if (card.actionsKey === key) return;
    card.actionsKey = key;
    const buttons = [];
    if (record.state === 'streaming') {
      card.actions.replaceChildren();
      return;
    }
    const copy = el('button', { type: 'button', textContent: t('copy'), 'aria-label': t('copyAnswer'), dataset: { testid: 'copy' } });
    const result = el('span', { className: 'result', role: 'status' });
    copy.addEventListener('click', async () => {
      result.textContent = (await copyText(card.record.text)) ? t('copied') : t('copyFailed');
    });
    if (record.text) buttons.push(copy);
    if (record.text && record.state === 'done') buttons.push(this.translateChoice(card));
    if (record.kind === 'rewrite' && record.params) {
      const replace = el('button', { type: 'button', textContent: t('replace'), dataset: { testid: 'replace' }, 'aria-label': t('replaceHelp') });
      replace.disabled = !record.target?.editable || !record.text || record.state !== 'done';
      if (!record.target?.editable) replace.title = t('replaceNotEditable');
      replace.addEventListener('click', async () => {
        const outcome = await this.act('replace', { id: card.record.id });
        result.textContent = outcome?.ok ? t('replaced') : outcome?.reason ?? t('replaceFailed');
        card.answer.dataset.replaced = outcome?.ok ? 'yes' : 'no';
      });
      const tone = select(TONES, record.params.options?.tone ?? 'as-is', t('tone'));
      const length = select(LENGTHS, record.params.options?.length ?? 'as-is', t('optionLength'));
      const retry = el('button', { type: 'button', textContent: t('retry'), dataset: { testid: 'retry' }, 'aria-label': t('retryRewrite') });
      retry.addEventListener('click', () => this.retry(card, { tone: tone.value, length: length.value }));
      buttons.push(replace, retry, tone, length);
    } else if (record.params) {
      const again = el('button', { type: 'button', textContent: record.state === 'error' ? t('retry') : t('regenerate'), dataset: { testid: 'regenerate' } });
      again.addEventListener('click', () => this.retry(card, {}));
      buttons.push(again);
    }
    card.actions.replaceChildren(...buttons, result);
  }

  /** "Translate into…": a menu of languages; choosing one translates this answer. */
  translateChoice(card) {
    const choice = el('select', { 'aria-label': t('translateInto'), dataset: { testid: 'translate' } });
    choice.append(el('option', { value: '', textContent: t('translateInto') }));
    for (const [code, name] of LANGUAGES) choice.append(el('option', { value: code, textContent: name }));
    choice.addEventListener('change', () => {
      if (choice.value) this.act('translate', { id: card.record.id, language: choice.value });
      choice.value = '';
    });
    return choice;
  }

  retry(card, options) {
    this.act('retry', { id: card.record.id, options });
  }
}

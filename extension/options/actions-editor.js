// The options page's editor of the user's own actions (lib/actions.js): each action a row of
// name, prompt and target with Save, Delete and Up/Down; New adds a draft row that is stored
// on its first Save; Export downloads the list as JSON; Import reads such a file and adds its
// actions, or refuses the whole file, saying why, with nothing stored changed.

import {
  MAX_FILE_BYTES, STORAGE_KEY, TARGETS, actionProblem, exportActions, loadActions, mergeActions, moveAction,
  newActionId, parseActionsFile, saveActions,
} from '../lib/actions.js';
import { t } from '../lib/i18n.js';

const EXPORT_NAME = 'tiangong-actions.json';

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name in node && !name.includes('-')) node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export class ActionsEditor {
  /** `limits`: { promptChars } from the schema; `storage`: storage.local. */
  constructor({ root, message, storage, onChanged, limits }) {
    this.root = root;
    this.message = message;
    this.storage = storage;
    this.limits = limits;
    this.actions = [];
    this.drafts = [];
    onChanged.addListener((changes, area) => {
      if (area === 'local' && changes[STORAGE_KEY]) this.load();
    });
  }

  async load() {
    this.actions = await loadActions(this.storage, this.limits);
    this.render();
  }

  say(text, { error = false } = {}) {
    this.message.textContent = text;
    this.message.dataset.kind = error ? 'error' : 'ok';
  }

  render() {
    const rows = [...this.actions.map((action, index) => this.row(action, { index })), ...this.drafts.map((action) => this.row(action, { draft: true }))];
    this.root.replaceChildren(...rows);
  }

  row(action, { index = -1, draft = false }) {
    const id = action.id;
    const name = el('input', { type: 'text', value: action.name, maxLength: 200, 'aria-label': t('actionName'), dataset: { testid: 'action-name' } });
    const prompt = el('textarea', { value: action.prompt, rows: 3, 'aria-label': t('actionPrompt'), dataset: { testid: 'action-prompt' } });
    prompt.value = action.prompt;
    const target = el('select', { 'aria-label': t('actionTarget'), dataset: { testid: 'action-target' } });
    for (const value of TARGETS) target.append(el('option', { value, textContent: t(value === 'page' ? 'targetPage' : 'targetSelection') }));
    target.value = action.target;
    const status = el('span', { className: 'row-status', role: 'status' });
    const save = el('button', { type: 'button', className: 'primary', textContent: t('actionSave'), dataset: { testid: 'action-save' } });
    const remove = el('button', { type: 'button', textContent: t('actionDelete'), dataset: { testid: 'action-delete' } });
    const up = el('button', { type: 'button', textContent: '↑', title: t('actionUp'), 'aria-label': t('actionUp'), disabled: draft || index === 0, dataset: { testid: 'action-up' } });
    const down = el('button', { type: 'button', textContent: '↓', title: t('actionDown'), 'aria-label': t('actionDown'), disabled: draft || index === this.actions.length - 1, dataset: { testid: 'action-down' } });
    save.addEventListener('click', () => this.save(id, { name: name.value, prompt: prompt.value, target: target.value }, status));
    remove.addEventListener('click', () => this.remove(id));
    up.addEventListener('click', () => this.move(id, -1));
    down.addEventListener('click', () => this.move(id, 1));
    const fields = el('div', { className: 'action-fields' },
      el('label', {}, el('span', { textContent: t('actionName') }), name),
      el('label', {}, el('span', { textContent: t('actionTarget') }), target),
      el('label', { className: 'wide' }, el('span', { textContent: t('actionPrompt') }), prompt));
    const buttons = el('div', { className: 'row' }, save, remove, up, down, status);
    return el('li', { className: 'action-row', dataset: { actionId: id, draft: String(draft) } }, fields, buttons);
  }

  addDraft() {
    const draft = { id: newActionId(), name: '', prompt: '', target: 'page' };
    this.drafts.push(draft);
    this.render();
    this.root.lastElementChild?.querySelector('input')?.focus();
  }

  async save(id, fields, status) {
    const action = { id, ...fields };
    const problem = actionProblem(action, this.limits);
    if (problem) {
      status.textContent = problem;
      this.say(problem, { error: true });
      return;
    }
    const known = this.actions.some((old) => old.id === id);
    const list = known ? this.actions.map((old) => (old.id === id ? action : old)) : [...this.actions, action];
    if (await this.store(list)) {
      this.drafts = this.drafts.filter((draft) => draft.id !== id);
      this.say(t('actionSaved', action.name.trim()));
      this.render();
    }
  }

  async remove(id) {
    const gone = this.actions.find((action) => action.id === id);
    this.drafts = this.drafts.filter((draft) => draft.id !== id);
    if (gone && (await this.store(this.actions.filter((action) => action.id !== id)))) this.say(t('actionDeleted', gone.name));
    this.render();
  }

  async move(id, by) {
    await this.store(moveAction(this.actions, id, by));
    this.render();
  }

  /** Stores the whole list; on success it is the list shown. */
  async store(list) {
    try {
      this.actions = await saveActions(this.storage, list, this.limits);
      return true;
    } catch (error) {
      this.say(error.message, { error: true });
      return false;
    }
  }

  exportFile() {
    const url = URL.createObjectURL(new Blob([exportActions(this.actions)], { type: 'application/json' }));
    const link = el('a', { href: url, download: EXPORT_NAME });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  async importFile(file) {
    if (!file) return;
    // A file far too big is refused before it is read into memory.
    const text = file.size > MAX_FILE_BYTES ? null : await file.text();
    const { actions, error } = parseActionsFile(text, this.limits);
    if (error) {
      this.say(error, { error: true });
      return;
    }
    const merged = mergeActions(this.actions, actions);
    if (merged.error) {
      this.say(merged.error, { error: true });
      return;
    }
    if (await this.store(merged.actions)) this.say(t('actionsImported', actions.length));
    this.render();
  }
}

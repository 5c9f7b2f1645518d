// The user's own actions: a name, a prompt template and where it applies (the selected text,
// or the page), kept in storage.local in the user's order. Built-ins ship as editable
// defaults. This module checks them, reads and writes the export file, and fills a template's
// placeholders; the options page edits them, the context menu and the panel's action list run
// them (lib/assistant.js).

import { t } from './i18n.js';

export const STORAGE_KEY = 'actions';
export const TARGETS = Object.freeze(['selection', 'page']);
export const PLACEHOLDERS = Object.freeze(['selection', 'page', 'title', 'url', 'language']);
export const EXPORT_FORMAT = 'tiangong-actions';
export const EXPORT_VERSION = 1;
export const MAX_ACTIONS = 50;
export const MAX_NAME_CHARS = 60;
export const MAX_FILE_BYTES = 256 * 1024;
// How much of a page's title and URL a filled prompt takes: enough to name the page.
const TITLE_CHARS = 200;
const URL_CHARS = 500;

const BUILT_INS = Object.freeze([
  { id: 'builtin-new-to-this', key: 'NewToThis', target: 'selection' },
  { id: 'builtin-key-terms', key: 'KeyTerms', target: 'page' },
  { id: 'builtin-action-items', key: 'ActionItems', target: 'page' },
  { id: 'builtin-counter-arguments', key: 'CounterArguments', target: 'page' },
]);

/** The built-in actions, in the UI's language; the user may edit or delete them. */
export function defaultActions() {
  return BUILT_INS.map(({ id, key, target }) => ({ id, name: t(`action${key}Name`), prompt: t(`action${key}Prompt`), target }));
}

export function newActionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `action-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

const chars = (text) => [...text].length;

/** What is wrong with one action, in a sentence for the user; null when it is fine. */
export function actionProblem(action, { promptChars }) {
  if (action === null || typeof action !== 'object' || Array.isArray(action)) return t('actionNotAnObject');
  const { name, prompt, target } = action;
  if (typeof name !== 'string' || !name.trim()) return t('actionNeedsName');
  if (chars(name.trim()) > MAX_NAME_CHARS) return t('actionNameTooLong', MAX_NAME_CHARS);
  const shown = name.trim();
  if (typeof prompt !== 'string' || !prompt.trim()) return t('actionNeedsPrompt', shown);
  if (chars(prompt.trim()) > promptChars) return t('actionPromptTooLong', shown, chars(prompt.trim()), promptChars);
  const unknown = [...prompt.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]).find((word) => !PLACEHOLDERS.includes(word));
  if (unknown) return t('actionUnknownPlaceholder', shown, `{${unknown}}`, PLACEHOLDERS.map((p) => `{${p}}`).join(' '));
  if (!TARGETS.includes(target)) return t('actionBadTarget', shown);
  return null;
}

/** The action as it is stored: trimmed text, its id kept (or a new one). */
export function cleanAction({ id, name, prompt, target }) {
  return { id: typeof id === 'string' && id ? id : newActionId(), name: name.trim(), prompt: prompt.trim(), target };
}

/** The stored actions (the built-ins until the user saved a list of their own). */
export async function loadActions(storage, limits) {
  const stored = (await storage.get(STORAGE_KEY))[STORAGE_KEY];
  if (!Array.isArray(stored)) return defaultActions();
  return stored.filter((action) => !actionProblem(action, limits)).map(cleanAction);
}

/** Stores `actions` after checking every one; refuses (throws) the whole list if one is wrong. */
export async function saveActions(storage, actions, limits) {
  if (actions.length > MAX_ACTIONS) throw new Error(t('actionsTooMany', MAX_ACTIONS));
  for (const action of actions) {
    const problem = actionProblem(action, limits);
    if (problem) throw new Error(problem);
  }
  const clean = actions.map(cleanAction);
  await storage.set({ [STORAGE_KEY]: clean });
  return clean;
}

/** `actions` with the one of `id` moved `by` places (up: -1), clamped at the ends. */
export function moveAction(actions, id, by) {
  const from = actions.findIndex((action) => action.id === id);
  if (from < 0) return [...actions];
  const to = Math.max(0, Math.min(actions.length - 1, from + by));
  const moved = [...actions];
  moved.splice(to, 0, ...moved.splice(from, 1));
  return moved;
}

/** The export file's text: the actions without their ids (an import gives them new ones). */
export function exportActions(actions) {
  const list = actions.map(({ name, prompt, target }) => ({ name, prompt, target }));
  return `${JSON.stringify({ format: EXPORT_FORMAT, version: EXPORT_VERSION, actions: list }, null, 2)}\n`;
}

/**
 * Reads an export file (or a bare array of actions): {actions} when every action in it is
 * sound, else {error} with a message that says what is wrong. Nothing is half imported.
 */
export function parseActionsFile(text, limits) {
  if (typeof text !== 'string' || new TextEncoder().encode(text).length > MAX_FILE_BYTES) {
    return { error: t('importTooLarge', MAX_FILE_BYTES / 1024) };
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { error: t('importNotJson', error.message) };
  }
  let list = data;
  if (!Array.isArray(data)) {
    if (data?.format !== EXPORT_FORMAT || !Array.isArray(data.actions)) return { error: t('importNotActions') };
    if (data.version !== EXPORT_VERSION) return { error: t('importBadVersion', String(data.version)) };
    list = data.actions;
  }
  if (!list.length) return { error: t('importEmpty') };
  if (list.length > MAX_ACTIONS) return { error: t('actionsTooMany', MAX_ACTIONS) };
  for (const [index, action] of list.entries()) {
    const problem = actionProblem(action, limits);
    if (problem) return { error: t('importBadAction', index + 1, problem) };
  }
  return { actions: list.map(({ name, prompt, target }) => cleanAction({ name, prompt, target })) };
}

/**
 * `existing` with `imported` added: an imported action replaces the one of the same name
 * (keeping its place and id), the others come after. {actions} or {error} (too many).
 */
export function mergeActions(existing, imported) {
  const merged = existing.map((action) => ({ ...action }));
  for (const action of imported) {
    const same = merged.findIndex((old) => old.name === action.name);
    if (same >= 0) merged[same] = { ...action, id: merged[same].id };
    else merged.push({ ...action });
  }
  if (merged.length > MAX_ACTIONS) return { error: t('actionsTooMany', MAX_ACTIONS) };
  return { actions: merged };
}

/**
 * The prompt to send: {title}, {url} and {language} become their values; {page} and
 * {selection} become words that point at the material, which travels beside the prompt as
 * data (the page, or the selected text), never pasted into it.
 */
export function fillPrompt(template, { title = '', url = '', language = '' } = {}) {
  const values = {
    page: t('placeholderPage'),
    selection: t('placeholderSelection'),
    title: [...title].slice(0, TITLE_CHARS).join(''),
    url: [...url].slice(0, URL_CHARS).join(''),
    language,
  };
  return template.replace(/\{([A-Za-z_]+)\}/g, (whole, word) => (Object.hasOwn(values, word) ? values[word] : whole));
}

/** Whether a template asks for the selected text (a page action then sends it too). */
export function usesSelection(template) {
  return template.includes('{selection}');
}

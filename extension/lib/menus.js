// The context menu on a selection: Rewrite… (tone and length, in Chrome Rewriter's names),
// Translate selection into…, Summarize selection, Explain; on a page: Translate page summary
// into…; then the user's own actions (lib/actions.js), each where it applies. Ids encode the
// choice, so a click needs no lookup table. The browser shows them all under Tiangong.

import { t } from './i18n.js';
import { LANGUAGES } from './languages.js';

export const MENU_IDS = Object.freeze({
  rewrite: 'tiangong-rewrite',
  summarizeSelection: 'tiangong-summarize-selection',
  explain: 'tiangong-explain',
  translate: 'tiangong-translate',
  summaryInto: 'tiangong-summary-into',
  action: 'tiangong-action',
});

/** The menu item of a user's action (its id, from lib/actions.js). */
export function actionMenuId(actionId) {
  return `${MENU_IDS.action}:${actionId}`;
}

export const REWRITE_CHOICES = Object.freeze([
  { title: 'menuMoreFormal', tone: 'more-formal', length: 'as-is' },
  { title: 'menuMoreCasual', tone: 'more-casual', length: 'as-is' },
  { title: 'menuShorter', tone: 'as-is', length: 'shorter' },
  { title: 'menuLonger', tone: 'as-is', length: 'longer' },
  { title: 'menuSameToneLength', tone: 'as-is', length: 'as-is' },
]);

export function rewriteMenuId(tone, length) {
  return `${MENU_IDS.rewrite}:${tone}:${length}`;
}

/** What a menu id asks for: {kind, options}, or null for an id that is not ours. */
export function parseMenuId(id) {
  if (id === MENU_IDS.summarizeSelection) return { kind: 'summarize-selection' };
  if (id === MENU_IDS.explain) return { kind: 'explain' };
  const text = String(id);
  if (text.startsWith(`${MENU_IDS.action}:`)) return { kind: 'action', actionId: text.slice(MENU_IDS.action.length + 1) };
  const [prefix, tone, length] = text.split(':');
  if (prefix === MENU_IDS.translate && tone) return { kind: 'translate', language: tone };
  if (prefix === MENU_IDS.summaryInto && tone) return { kind: 'summary-into', language: tone };
  if (prefix === MENU_IDS.rewrite && tone && length) return { kind: 'rewrite', options: { tone, length } };
  return null;
}

/** Builds the whole menu again: at install, and whenever the user's actions change. */
export function createMenus(menus, actions = []) {
  menus.removeAll(() => {
    const contexts = ['selection'];
    menus.create({ id: MENU_IDS.rewrite, title: t('menuRewrite'), contexts });
    for (const choice of REWRITE_CHOICES) {
      menus.create({ id: rewriteMenuId(choice.tone, choice.length), parentId: MENU_IDS.rewrite, title: t(choice.title), contexts });
    }
    menus.create({ id: MENU_IDS.translate, title: t('menuTranslateSelection'), contexts });
    for (const [code, name] of LANGUAGES) {
      menus.create({ id: `${MENU_IDS.translate}:${code}`, parentId: MENU_IDS.translate, title: name, contexts });
    }
    menus.create({ id: MENU_IDS.summarizeSelection, title: t('menuSummarizeSelection'), contexts });
    menus.create({ id: MENU_IDS.explain, title: t('menuExplain'), contexts });
    const page = ['page'];
    menus.create({ id: MENU_IDS.summaryInto, title: t('menuSummaryInto'), contexts: page });
    for (const [code, name] of LANGUAGES) {
      menus.create({ id: `${MENU_IDS.summaryInto}:${code}`, parentId: MENU_IDS.summaryInto, title: name, contexts: page });
    }
    for (const action of actions) {
      menus.create({ id: actionMenuId(action.id), title: action.name, contexts: [action.target] });
    }
  });
}

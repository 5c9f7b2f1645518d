// The context menu on a selection: Rewrite… (tone and length, in Chrome Rewriter's names),
// Summarize selection, Explain. Ids encode the choice, so a click needs no lookup table.

export const MENU_IDS = Object.freeze({
  rewrite: 'tiangong-rewrite',
  summarizeSelection: 'tiangong-summarize-selection',
  explain: 'tiangong-explain',
});

export const REWRITE_CHOICES = Object.freeze([
  { title: 'More formal', tone: 'more-formal', length: 'as-is' },
  { title: 'More casual', tone: 'more-casual', length: 'as-is' },
  { title: 'Shorter', tone: 'as-is', length: 'shorter' },
  { title: 'Longer', tone: 'as-is', length: 'longer' },
  { title: 'Same tone and length', tone: 'as-is', length: 'as-is' },
]);

export function rewriteMenuId(tone, length) {
  return `${MENU_IDS.rewrite}:${tone}:${length}`;
}

/** What a menu id asks for: {kind, options}, or null for an id that is not ours. */
export function parseMenuId(id) {
  if (id === MENU_IDS.summarizeSelection) return { kind: 'summarize-selection' };
  if (id === MENU_IDS.explain) return { kind: 'explain' };
  const [prefix, tone, length] = String(id).split(':');
  if (prefix === MENU_IDS.rewrite && tone && length) return { kind: 'rewrite', options: { tone, length } };
  return null;
}

export function createMenus(menus) {
  menus.removeAll(() => {
    const contexts = ['selection'];
    menus.create({ id: MENU_IDS.rewrite, title: 'Rewrite…', contexts });
    for (const choice of REWRITE_CHOICES) {
      menus.create({ id: rewriteMenuId(choice.tone, choice.length), parentId: MENU_IDS.rewrite, title: choice.title, contexts });
    }
    menus.create({ id: MENU_IDS.summarizeSelection, title: 'Summarize selection', contexts });
    menus.create({ id: MENU_IDS.explain, title: 'Explain', contexts });
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { realCodec } from './helpers.mjs';
import {
  MAX_ACTIONS, STORAGE_KEY, actionProblem, defaultActions, exportActions, fillPrompt, loadActions,
  mergeActions, moveAction, parseActionsFile, saveActions,
} from '../../extension/lib/actions.js';
import { MENU_IDS, actionMenuId, createMenus, parseMenuId } from '../../extension/lib/menus.js';

const codec = await realCodec();
const limits = { promptChars: codec.limits.instruction };

/** storage.local as the browser gives it: get(keys) and set(items), async. */
function memoryStorage(items = {}) {
  const data = structuredClone(items);
  return {
    data,
    async get(key) {
      return Object.hasOwn(data, key) ? { [key]: structuredClone(data[key]) } : {};
    },
    async set(values) {
      Object.assign(data, structuredClone(values));
    },
  };
}

const sample = { name: 'Questions to ask', prompt: 'Write three questions a reader of {title} should ask.', target: 'page' };

test('the built-ins ship as sound, editable defaults until the user saves their own list', async () => {
  const builtIns = defaultActions();
  assert.deepEqual(builtIns.map((a) => a.name), ["Explain like I'm new to this", 'Key terms with definitions', 'Action items', 'Counter-arguments']);
  for (const action of builtIns) assert.equal(actionProblem(action, limits), null, action.name);
  const storage = memoryStorage();
  assert.deepEqual(await loadActions(storage, limits), builtIns);
  const edited = [{ ...builtIns[1], name: 'Glossary' }, sample];
  await saveActions(storage, edited, limits);
  const loaded = await loadActions(storage, limits);
  assert.deepEqual(loaded.map((a) => a.name), ['Glossary', 'Questions to ask']);
  assert.equal(loaded[0].id, builtIns[1].id);
  assert.ok(loaded[1].id.startsWith('action-'));
  await saveActions(storage, [], limits);
  assert.deepEqual(await loadActions(storage, limits), [], 'deleting every action leaves none, not the defaults');
});

test('an action without a name or prompt, with a bad target or an unknown placeholder is refused, saying why', async () => {
  const problem = (change) => actionProblem({ ...sample, ...change }, limits);
  assert.equal(problem({}), null);
  assert.match(problem({ name: '  ' }), /name/);
  assert.match(problem({ name: 'x'.repeat(61) }), /at most 60/);
  assert.match(problem({ prompt: '' }), /“Questions to ask” needs a prompt/);
  assert.match(problem({ prompt: 'y'.repeat(limits.promptChars + 1) }), new RegExp(`${limits.promptChars + 1} characters; at most ${limits.promptChars}`));
  assert.equal(problem({ prompt: 'y'.repeat(limits.promptChars) }), null, 'the schema limit itself fits');
  assert.match(problem({ prompt: 'Sum up {pgae}' }), /\{pgae\}, which is not a placeholder/);
  assert.equal(problem({ prompt: 'Reply as JSON like {"a": 1}' }), null, 'braces that are no placeholder are text');
  assert.match(problem({ target: 'tab' }), /selection or to the page/);
  assert.match(actionProblem('Summarize', limits), /object/);
  const storage = memoryStorage({ [STORAGE_KEY]: [sample] });
  await assert.rejects(saveActions(storage, [sample, { ...sample, target: 'tab' }], limits), /selection or to the page/);
  assert.deepEqual(storage.data[STORAGE_KEY], [sample], 'a refused save changes nothing stored');
});

test('actions are reordered by moving one up or down, clamped at the ends', () => {
  const list = ['a', 'b', 'c'].map((id) => ({ id, name: id, prompt: 'p', target: 'page' }));
  assert.deepEqual(moveAction(list, 'c', -1).map((a) => a.id), ['a', 'c', 'b']);
  assert.deepEqual(moveAction(list, 'a', 1).map((a) => a.id), ['b', 'a', 'c']);
  assert.deepEqual(moveAction(list, 'a', -1).map((a) => a.id), ['a', 'b', 'c']);
  assert.deepEqual(list.map((a) => a.id), ['a', 'b', 'c'], 'the list given is left as it was');
});

test('an export imports back as the same actions, with ids of their own', () => {
  const actions = [...defaultActions(), { ...sample, id: 'mine' }];
  const text = exportActions(actions);
  const file = JSON.parse(text);
  assert.equal(file.format, 'tiangong-actions');
  assert.equal(file.version, 1);
  assert.ok(file.actions.every((a) => !('id' in a)));
  const { actions: back, error } = parseActionsFile(text, limits);
  assert.equal(error, undefined);
  assert.deepEqual(back.map(({ name, prompt, target }) => ({ name, prompt, target })), file.actions);
  assert.ok(back.every((a) => a.id.startsWith('action-')));
  // A bare list of actions reads as well.
  assert.equal(parseActionsFile(JSON.stringify([sample]), limits).actions.length, 1);
});

test('a bad import file is refused whole, with a message that says what is wrong', () => {
  const error = (text) => parseActionsFile(text, limits).error;
  assert.match(error('{"format": "tiangong-actions", "actions": ['), /not valid JSON/);
  assert.match(error('{"hello": "world"}'), /no Tiangong actions/);
  assert.match(error('{"format": "tiangong-actions", "version": 9, "actions": []}'), /version 9/);
  assert.match(error('[]'), /no actions/);
  assert.match(error(JSON.stringify([sample, { ...sample, name: '' }])), /^Action 2 in the file: Give the action a name\. Nothing was imported\.$/);
  assert.match(error(JSON.stringify(Array(MAX_ACTIONS + 1).fill(sample))), /At most 50/);
  assert.match(error(`[${' '.repeat(300 * 1024)}]`), /over 256 KiB/);
  for (const text of ['[', '{}', '[]', JSON.stringify([{ ...sample, target: 'x' }])]) {
    assert.equal(parseActionsFile(text, limits).actions, undefined, text);
  }
});

test('imported actions replace those of the same name in place and add the rest', () => {
  const existing = [{ id: 'x', ...sample }, { id: 'y', name: 'Other', prompt: 'p', target: 'page' }];
  const imported = [{ id: 'n1', ...sample, prompt: 'Better prompt' }, { id: 'n2', name: 'New', prompt: 'q', target: 'selection' }];
  const { actions } = mergeActions(existing, imported);
  assert.deepEqual(actions.map((a) => [a.id, a.name, a.prompt]), [['x', 'Questions to ask', 'Better prompt'], ['y', 'Other', 'p'], ['n2', 'New', 'q']]);
  const many = Array.from({ length: MAX_ACTIONS }, (_, i) => ({ id: `a${i}`, name: `A${i}`, prompt: 'p', target: 'page' }));
  assert.match(mergeActions(many, [imported[1]]).error, /At most 50/);
});

test('placeholders are filled: page facts by value, the page and the selection by words that point at them', () => {
  const values = { title: 'Tides', url: 'https://example.com/tides', language: 'Français' };
  assert.equal(
    fillPrompt('Explain {selection} from {page} ({title}, {url}) in {language}. Keep {unknown} and {"a": 1}.', values),
    'Explain the selected text from the page (Tides, https://example.com/tides) in Français. Keep {unknown} and {"a": 1}.',
  );
  // A page's title or URL cannot blow a prompt past its limit: they are cut to a sane size.
  const filled = fillPrompt('{title}|{url}', { title: '長'.repeat(5000), url: `https://e.com/${'a'.repeat(9000)}` });
  const [title, url] = filled.split('|');
  assert.equal([...title].length, 200);
  assert.equal(url.length, 500);
});

test('each action is a menu item where it applies, and its id reads back as that action', () => {
  const created = [];
  const menus = { removeAll: (done) => done(), create: (item) => created.push(item) };
  const actions = [{ id: 'builtin-key-terms', name: 'Key terms', prompt: 'p', target: 'page' }, { id: 'action-1a', name: 'Fix', prompt: 'p', target: 'selection' }];
  createMenus(menus, actions);
  const ours = created.filter((item) => item.id.startsWith(`${MENU_IDS.action}:`));
  assert.deepEqual(ours, [
    { id: actionMenuId('builtin-key-terms'), title: 'Key terms', contexts: ['page'] },
    { id: actionMenuId('action-1a'), title: 'Fix', contexts: ['selection'] },
  ]);
  assert.ok(created.some((item) => item.id === MENU_IDS.explain), 'the built-in entry points stay');
  assert.deepEqual(parseMenuId(actionMenuId('action-1a')), { kind: 'action', actionId: 'action-1a' });
  assert.equal(parseMenuId(`${MENU_IDS.action}x:1`), null);
});

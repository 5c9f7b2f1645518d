// Imports run one way in the extension too: every module's static imports, as V8 itself parses
// them (vm.SourceTextModule, in a child node with --experimental-vm-modules: nothing runs),
// form a graph with no cycle, and every relative import names a file that is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

import { REPO } from './helpers.mjs';

const EXT = path.join(REPO, 'extension');

/** Every .js/.mjs file under `root` (links are not followed: the schema folder is one). */
function modules(root) {
  const found = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) found.push(...modules(full));
    else if (entry.isFile() && /\.m?js$/.test(entry.name)) found.push(full);
  }
  return found.sort();
}

// Runs in the child: file paths in argv, {file: [specifier, …]} out.
const PARSER = `
const vm = require('node:vm');
const fs = require('node:fs');
const out = {};
for (const file of process.argv.slice(1)) {
  out[file] = new vm.SourceTextModule(fs.readFileSync(file, 'utf8'), { identifier: file }).dependencySpecifiers;
}
process.stdout.write(JSON.stringify(out));
`;

/** file -> the specifiers of its static imports and re-exports, as V8 parsed them. */
function staticImports(files) {
  const text = execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', '-e', PARSER, ...files], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(text);
}

/** The graph of relative imports: file -> [imported file]; bare and URL specifiers are left out. */
function importGraph(root) {
  const graph = new Map();
  for (const [file, specifiers] of Object.entries(staticImports(modules(root)))) {
    const targets = specifiers.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s));
    graph.set(file, targets);
  }
  return graph;
}

/** Each cycle once, as the list of its files with the first repeated at the end. */
export function findCycles(graph) {
  const cycles = [];
  const seen = new Set();
  const state = new Map(); // file -> 'open' while on the DFS stack, 'done' after
  const stack = [];
  const visit = (file) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = [...stack.slice(stack.indexOf(next)), next];
        const key = [...cycle.slice(0, -1)].sort().join('\n');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (!state.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

const relative = (file) => path.relative(EXT, file);

test('the cycle finder names a cycle, and only once', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
    ['e', ['e']],
  ]);
  assert.deepEqual(findCycles(graph), [['a', 'b', 'c', 'a'], ['e', 'e']]);
  assert.deepEqual(findCycles(new Map([['a', ['b']], ['b', []]])), []);
});

test('V8 reads every kind of static import and re-export, and nothing in comments or strings', () => {
  const graph = staticImports([path.join(REPO, 'tests', 'extension', 'fixtures', 'imports-sample.mjs')]);
  assert.deepEqual(Object.values(graph)[0].sort(), ['./a.js', './b.js', './c.js', './d.js', './e.js']);
});

test('no extension module imports itself back through others', () => {
  const graph = importGraph(EXT);
  assert.ok(graph.size > 15, `only ${graph.size} modules found`);
  const cycles = findCycles(graph).map((cycle) => cycle.map(relative).join(' → '));
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
});

test('every relative import names a module that is there', () => {
  const graph = importGraph(EXT);
  const missing = [];
  for (const [file, targets] of graph) {
    for (const target of targets) if (!graph.has(target)) missing.push(`${relative(file)} → ${relative(target)}`);
  }
  assert.deepEqual(missing, []);
});

// The status line's words for what the service says of its engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import './i18n-shim.mjs';
import { describeStatus } from '../../extension/sidepanel/status-view.js';

const engine = { name: 'transformers', model: 'SmolLM2', state: 'ready' };

test('a failed engine is said as such, with why, not as "Connected"', () => {
  const failed = { ...engine, state: 'failed', failure: 'the model ran out of memory' };
  const described = describeStatus({ state: 'connected', engine: failed });
  assert.equal(described.state, 'failed');
  assert.match(described.line, /SmolLM2/);
  assert.doesNotMatch(described.line, /Connected/);
  assert.equal(described.detail, 'the model ran out of memory');
});

test('a ready engine reads as connected, naming engine and model', () => {
  const described = describeStatus({ state: 'connected', engine });
  assert.equal(described.state, 'connected');
  assert.match(described.line, /transformers · SmolLM2/);
});

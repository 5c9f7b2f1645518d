// Shared helpers for the extension's node tests: paths of this checkout and the real schemas.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import './i18n-shim.mjs';
import { Codec, loadSchemas } from '../../extension/lib/codec.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCHEMA_DIR = path.join(REPO, 'protocol', 'schema', 'v1');
export const EXAMPLES = path.join(REPO, 'protocol', 'examples', 'v1');

export async function realCodec() {
  return new Codec(await loadSchemas((name) => readFile(path.join(SCHEMA_DIR, name), 'utf8')));
}

// Frames in and out: JSON text <-> plain objects, validated against protocol/schema/v1 itself
// (extension/schema is a link to that folder; the build copies the files). Refusals are
// ProtocolErrors whose message names the field, worded like the service's own codec.

import { frameLimits, readLimits } from './limits.js';
import { SchemaValidator } from './schema-validator.js';

export const PROTOCOL_VERSION = 1;
export const MAX_DEPTH = 32;
// Frames that may carry a whole page; every other frame must fit `frame_bytes`.
const PAGE_TYPES = new Set(['summarize', 'ask']);

export class ProtocolError extends Error {
  constructor(message, { code = 'bad_request', requestId = null } = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.requestId = requestId;
  }
}

/** Reads both schema files; `readText(name)` returns the text of schema/<name>. */
export async function loadSchemas(readText = fetchSchemaText) {
  const [client, server] = await Promise.all([readText('client.json'), readText('server.json')]);
  return { client: JSON.parse(client), server: JSON.parse(server) };
}

async function fetchSchemaText(name) {
  const response = await fetch(new URL(`../schema/${name}`, import.meta.url));
  if (!response.ok) throw new Error(`cannot read schema/${name}: HTTP ${response.status}`);
  return response.text();
}

const encoder = new TextEncoder();

export function utf8Length(text) {
  return encoder.encode(text).length;
}

function depthExceeds(value, limit) {
  const stack = [[value, 1]];
  while (stack.length) {
    const [item, depth] = stack.pop();
    if (item !== null && typeof item === 'object') {
      if (depth > limit) return true;
      for (const child of Object.values(item)) stack.push([child, depth + 1]);
    }
  }
  return false;
}

function describeParseError(text, error) {
  // JSON.parse already refuses NaN and Infinity; say so in the words the service uses.
  const constant = /(?<![\w"])(-?Infinity|NaN)(?![\w"])/.exec(text);
  if (constant) return `malformed JSON: ${constant[1]} is not valid JSON`;
  return `malformed JSON: ${error.message}`;
}

function requestIdOf(value) {
  const id = value?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 128 ? id : null;
}

/** Strict JSON: no NaN/Infinity (JSON.parse refuses them), no absurd nesting. */
export function parseJson(text) {
  if (typeof text !== 'string') throw new ProtocolError('binary frames are not accepted: send JSON text frames');
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(describeParseError(text, error));
  }
  if (depthExceeds(value, MAX_DEPTH)) throw new ProtocolError(`JSON nested deeper than ${MAX_DEPTH} levels`);
  return value;
}

export class Codec {
  /** `schemas` is what loadSchemas returns. */
  constructor(schemas) {
    // Field and frame sizes, as the schema states them (lib/limits.js).
    this.limits = readLimits(schemas);
    this.sides = {};
    for (const side of ['client', 'server']) {
      const schema = schemas[side];
      const types = schema.oneOf.map((option) => option.$ref.split('/').pop());
      this.sides[side] = { schema, types, validator: new SchemaValidator(schema) };
    }
  }

  /** The message types one side may send, read from the schema's oneOf. */
  types(side) {
    return [...this.sides[side].types];
  }

  /** Problems of one frame object, each a SchemaError; [] when the frame is valid. */
  errors(side, frame) {
    const { schema, types, validator } = this.sides[side];
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      return [{ path: '', message: 'a frame must be a JSON object with a \'type\' field' }];
    }
    if (!Object.hasOwn(frame, 'type')) return [{ path: '', message: 'the frame has no \'type\' field' }];
    if (!types.includes(frame.type)) {
      return [{ path: '', message: `unknown message type ${JSON.stringify(frame.type)}; expected one of ${types.join(', ')}` }];
    }
    // Validate against the one definition the type names, so errors point at the wrong field.
    return validator.validate(frame, schema.$defs[frame.type]);
  }

  check(side, frame) {
    const [first] = this.errors(side, frame);
    if (first) {
      const where = first.path ? `${first.path}: ` : '';
      const prefix = typeof frame?.type === 'string' && this.sides[side].types.includes(frame.type) ? `${frame.type}: ` : '';
      throw new ProtocolError(`${prefix}${where}${first.message}`, { requestId: requestIdOf(frame) });
    }
  }

  /** A client frame as text, refused before it is sent when it breaks the schema or limits. */
  encodeClient(frame, limits = frameLimits(this.limits)) {
    this.check('client', frame);
    const text = JSON.stringify(frame);
    const size = utf8Length(text);
    const limit = PAGE_TYPES.has(frame.type) ? limits.page_frame_bytes : limits.frame_bytes;
    if (limit && size > limit) {
      throw new ProtocolError(`${frame.type} frame of ${size} bytes is over the ${limit}-byte limit`, {
        code: 'too_large',
        requestId: requestIdOf(frame),
      });
    }
    return text;
  }

  /** Parses and checks a client frame (what the service does with it; used by tests). */
  decodeClient(text) {
    const frame = parseJson(text);
    this.check('client', frame);
    return frame;
  }

  /** Parses and checks a frame from the server. */
  decodeServer(text) {
    const frame = parseJson(text);
    this.check('server', frame);
    return frame;
  }
}

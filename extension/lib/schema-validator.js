// A small JSON Schema validator for the subset protocol/schema/v1 uses: type, const, enum,
// properties, required, additionalProperties, anyOf, oneOf, $ref (local #/...), minLength,
// maxLength, minimum, maximum, pattern, items, minItems, maxItems, uniqueItems. Annotations (title, description,
// default, $id, $schema) are ignored. A keyword outside the subset throws, so the schema
// cannot silently grow past what this file checks.

const ANNOTATIONS = new Set(['$schema', '$id', '$defs', 'title', 'description', 'default']);
const KEYWORDS = new Set([
  'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'anyOf', 'oneOf',
  '$ref', 'minLength', 'maxLength', 'minimum', 'maximum', 'pattern', 'items', 'uniqueItems',
  'minItems', 'maxItems',
]);

/** A validation problem: `path` is the dotted place in the instance ('' for the root). */
export class SchemaError {
  constructor(path, message, keyword) {
    this.path = path;
    this.message = message;
    this.keyword = keyword;
  }

  toString() {
    return this.path ? `${this.path}: ${this.message}` : this.message;
  }
}

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function hasType(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeOf(a) !== typeOf(b) || typeof a !== 'object' || a === null) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => deepEqual(a[k], b[k]));
}

function show(value) {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// Length in code points, as JSON Schema counts it (not UTF-16 units).
function codePoints(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

function join(path, part) {
  return path ? `${path}.${part}` : String(part);
}

export class SchemaValidator {
  /** `root` is the whole schema document; local `$ref`s resolve against it. */
  constructor(root) {
    this.root = root;
    this.patterns = new Map();
  }

  resolve(ref) {
    if (!ref.startsWith('#/')) throw new Error(`only local $ref is supported, not ${ref}`);
    let node = this.root;
    for (const part of ref.slice(2).split('/')) {
      node = node?.[part.replaceAll('~1', '/').replaceAll('~0', '~')];
    }
    if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
    return node;
  }

  regex(source) {
    let re = this.patterns.get(source);
    if (!re) {
      re = new RegExp(source, 'u');
      this.patterns.set(source, re);
    }
    return re;
  }

  /** All problems of `value` against `schema` (the root when omitted); [] when it is valid. */
  validate(value, schema = this.root, path = '') {
    const errors = [];
    this.check(value, schema, path, errors);
    return errors;
  }

  check(value, schema, path, errors) {
    for (const key of Object.keys(schema)) {
      if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) {
        throw new Error(`schema keyword ${key} is not supported by this validator`);
      }
    }
    if (schema.$ref !== undefined) this.check(value, this.resolve(schema.$ref), path, errors);
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (!types.some((t) => hasType(value, t))) {
        errors.push(new SchemaError(path, `${show(value)} is not of type ${types.join(' or ')}`, 'type'));
        return; // the other keywords would only repeat the same problem
      }
    }
    if ('const' in schema && !deepEqual(value, schema.const)) {
      errors.push(new SchemaError(path, `${show(value)} is not ${show(schema.const)}`, 'const'));
    }
    if (schema.enum !== undefined && !schema.enum.some((option) => deepEqual(option, value))) {
      const options = schema.enum.map(show).join(', ');
      errors.push(new SchemaError(path, `${show(value)} is not one of ${options}`, 'enum'));
    }
    if (typeof value === 'string') this.checkString(value, schema, path, errors);
    if (typeof value === 'number') this.checkNumber(value, schema, path, errors);
    if (Array.isArray(value)) this.checkArray(value, schema, path, errors);
    if (typeOf(value) === 'object') this.checkObject(value, schema, path, errors);
    if (schema.anyOf !== undefined) this.checkAnyOf(value, schema.anyOf, path, errors);
    if (schema.oneOf !== undefined) this.checkOneOf(value, schema.oneOf, path, errors);
  }

  checkString(value, schema, path, errors) {
    if (schema.minLength !== undefined && codePoints(value) < schema.minLength) {
      const what = schema.minLength === 1 ? 'must not be empty' : `is shorter than ${schema.minLength}`;
      errors.push(new SchemaError(path, what, 'minLength'));
    }
    if (schema.maxLength !== undefined && codePoints(value) > schema.maxLength) {
      errors.push(new SchemaError(path, `is ${codePoints(value)} characters long; the limit is ${schema.maxLength}`, 'maxLength'));
    }
    if (schema.pattern !== undefined && !this.regex(schema.pattern).test(value)) {
      errors.push(new SchemaError(path, `${show(value)} does not match ${schema.pattern}`, 'pattern'));
    }
  }

  checkNumber(value, schema, path, errors) {
    if (schema.minimum !== undefined && value < schema.minimum) {
      errors.push(new SchemaError(path, `${value} is less than the minimum of ${schema.minimum}`, 'minimum'));
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      errors.push(new SchemaError(path, `${value} is more than the maximum of ${schema.maximum}`, 'maximum'));
    }
  }

  checkArray(value, schema, path, errors) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      errors.push(new SchemaError(path, `has fewer than ${schema.minItems} items`, 'minItems'));
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      errors.push(new SchemaError(path, `has more than ${schema.maxItems} items`, 'maxItems'));
    }
    if (schema.items !== undefined) {
      value.forEach((item, i) => this.check(item, schema.items, join(path, i), errors));
    }
    if (schema.uniqueItems) {
      for (let i = 0; i < value.length; i += 1) {
        if (value.slice(0, i).some((earlier) => deepEqual(earlier, value[i]))) {
          errors.push(new SchemaError(path, `has repeated item ${show(value[i])}`, 'uniqueItems'));
          break;
        }
      }
    }
  }

  checkObject(value, schema, path, errors) {
    for (const name of schema.required ?? []) {
      if (!Object.hasOwn(value, name)) {
        errors.push(new SchemaError(path, `'${name}' is a required property`, 'required'));
      }
    }
    const properties = schema.properties ?? {};
    for (const [name, item] of Object.entries(value)) {
      if (Object.hasOwn(properties, name)) {
        this.check(item, properties[name], join(path, name), errors);
      } else if (schema.additionalProperties === false) {
        errors.push(new SchemaError(path, `additional property '${name}' is not allowed`, 'additionalProperties'));
      } else if (typeOf(schema.additionalProperties) === 'object') {
        this.check(item, schema.additionalProperties, join(path, name), errors);
      }
    }
  }

  checkAnyOf(value, options, path, errors) {
    const results = options.map((option) => this.validate(value, option, path));
    if (results.some((r) => r.length === 0)) return;
    if (options.every((o) => Array.isArray(o.required) && Object.keys(o).length === 1)) {
      const names = options.map((o) => `'${o.required[0]}'`).join(' or ');
      errors.push(new SchemaError(path, `needs ${names}`, 'anyOf'));
      return;
    }
    errors.push(...closest(results));
  }

  checkOneOf(value, options, path, errors) {
    const results = options.map((option) => this.validate(value, option, path));
    const passing = results.filter((r) => r.length === 0).length;
    if (passing === 1) return;
    if (passing > 1) {
      errors.push(new SchemaError(path, 'is valid under more than one of the given schemas', 'oneOf'));
      return;
    }
    errors.push(...closest(results));
  }
}

// The branch with the fewest problems says best what is wrong with an instance.
function closest(results) {
  return results.reduce((best, r) => (r.length < best.length ? r : best));
}

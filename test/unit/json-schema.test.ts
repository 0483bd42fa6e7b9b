/**
 * JSON Schemas from requests are hostile input: their size and depth are
 * capped before anything reads them, patterns run on RE2 (no backtracking),
 * and compiled validators are kept in a bounded cache.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { JsonSchemas, SchemaError } from '../../catalog/json-schema';
import { apiConfig } from '../../common/config';

const defaults = apiConfig({}).toolSchemas;
const schemas = new JsonSchemas(defaults);

const stringProperty = (property: Record<string, unknown>) => ({ type: 'object', properties: { s: { type: 'string', ...property } } });

/** A schema whose objects nest `levels` deep (odd: each property adds two, its schema and `properties`). */
function nested(levels: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let depth = 1; depth < levels; depth += 2) schema = { type: 'object', properties: { a: schema } };
  return schema;
}

describe('problem: what the API checks before a run starts', () => {
  test('usable schemas pass: properties, $ref to definitions, RE2-compatible patterns', () => {
    assert.equal(schemas.problem({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }), undefined);
    assert.equal(
      schemas.problem({ type: 'object', properties: { a: { $ref: '#/definitions/id' } }, definitions: { id: { type: 'string' } } }),
      undefined,
    );
    assert.equal(schemas.problem(stringProperty({ pattern: '^(a|aa)+$' })), undefined);
    assert.equal(schemas.problem({ type: 'object', patternProperties: { '^x-\\p{L}+$': { type: 'string' } } }), undefined);
    assert.equal(schemas.problem(nested(defaults.maxDepth - 1)), undefined);
  });

  test('a schema larger than TOOL_SCHEMA_MAX_BYTES is refused by its size, without reading all of it', () => {
    const properties = Object.fromEntries(
      Array.from({ length: 10_000 }, (_, i) => [`property_${i}`, { type: 'string', description: 'x'.repeat(30) }]),
    );
    const huge = { type: 'object', properties };
    const bytes = Buffer.byteLength(JSON.stringify(huge));
    assert.ok(bytes > 600 * 1024, `${bytes} bytes`);
    assert.equal(schemas.problem(huge), "is larger than 32768 bytes of JSON, this server's limit (TOOL_SCHEMA_MAX_BYTES)");
  });

  test('a schema nested deeper than TOOL_SCHEMA_MAX_DEPTH is refused, however deep', () => {
    assert.equal(schemas.problem(nested(defaults.maxDepth + 1)), "nests more than 32 levels deep, this server's limit (TOOL_SCHEMA_MAX_DEPTH)");
    // Far deeper than any recursion could follow: measured without recursion.
    const deep = nested(200_000);
    assert.equal(schemas.problem(deep), "nests more than 32 levels deep, this server's limit (TOOL_SCHEMA_MAX_DEPTH)");
  });

  test('the limits are settings', () => {
    const strict = new JsonSchemas({ maxBytes: 100, maxDepth: 3, cacheSize: 1 });
    assert.equal(
      strict.problem({ type: 'object', description: 'x'.repeat(100) }),
      "is larger than 100 bytes of JSON, this server's limit (TOOL_SCHEMA_MAX_BYTES)",
    );
    // Escapes count: 60 quotes are 120 bytes of JSON.
    assert.equal(
      strict.problem({ type: 'object', description: '"'.repeat(60) }),
      "is larger than 100 bytes of JSON, this server's limit (TOOL_SCHEMA_MAX_BYTES)",
    );
    assert.equal(strict.problem({ type: 'object', description: '"'.repeat(30) }), undefined);
    assert.equal(strict.problem(nested(5)), "nests more than 3 levels deep, this server's limit (TOOL_SCHEMA_MAX_DEPTH)");
  });

  test('a schema that is not a JSON Schema says why', () => {
    assert.equal(
      schemas.problem({ type: 'object', properties: { a: { type: 'nonsense' } } }),
      'is not a valid JSON Schema: schema is invalid: data/properties/a/type must be equal to one of the allowed values, data/properties/a/type must be array, data/properties/a/type must match a schema in anyOf',
    );
    assert.match(
      schemas.problem({ $schema: 'https://example.com/my-draft', type: 'object' }) ?? '',
      /^is not a valid JSON Schema: no schema with key or ref/,
    );
  });

  test('a pattern RE2 cannot run is refused, naming the pattern and where it is', () => {
    assert.equal(
      schemas.problem(stringProperty({ pattern: '^(?=a)a$' })),
      'has a pattern this server cannot run at /properties/s/pattern: "^(?=a)a$" (error parsing regexp: invalid or unsupported Perl syntax: `(?=`); patterns run on RE2, in linear time, so lookaround and backreferences are not supported',
    );
    assert.match(
      schemas.problem({ type: 'object', properties: { list: { type: 'array', items: { patternProperties: { '(a)\\1': {} } } } } }) ?? '',
      /^has a pattern this server cannot run at \/properties\/list\/items\/patternProperties: "\(a\)\\\\1" \(error parsing regexp: invalid escape sequence/,
    );
  });

  test('values that only look like patterns (enum, const, default) are data, not patterns', () => {
    assert.equal(schemas.problem({ type: 'object', properties: { p: { const: { pattern: '(?=x)' } } }, default: { pattern: '\\1' } }), undefined);
  });
});

describe('validationProblem: what the worker checks before a tool runs', () => {
  test('arguments are checked as before; patterns match as JavaScript patterns do', () => {
    const schema = { type: 'object', properties: { code: { type: 'string', pattern: '^\\d{3}-\\p{Lu}+$' } }, required: ['code'] };
    assert.equal(schemas.validationProblem(schema, { code: '123-ÄB' }), undefined);
    assert.equal(schemas.validationProblem(schema, { code: '12-AB' }), 'arguments/code must match pattern "^\\d{3}-\\p{Lu}+$"');
    assert.equal(schemas.validationProblem(schema, {}), "arguments must have required property 'code'");
  });

  test('an unusable schema is a SchemaError saying why', () => {
    assert.throws(
      () => schemas.validationProblem({ type: 'object', properties: { a: { $ref: '#/definitions/missing' } } }, {}),
      (err: unknown) =>
        err instanceof SchemaError && /^is not a valid JSON Schema: can't resolve reference #\/definitions\/missing/.test(err.message),
    );
    assert.throws(
      () => schemas.validationProblem(stringProperty({ pattern: '(?<=a)b' }), { s: 'ab' }),
      (err: unknown) =>
        err instanceof SchemaError && err.message.startsWith('has a pattern this server cannot run at /properties/s/pattern: "(?<=a)b"'),
    );
  });

  test('schemas with the same $id in different requests do not clash', () => {
    const one = { $id: 'https://example.com/args', type: 'object', properties: { a: { type: 'string' } } };
    const two = { $id: 'https://example.com/args', type: 'object', properties: { a: { type: 'integer' } } };
    assert.equal(schemas.validationProblem(one, { a: 'x' }), undefined);
    assert.equal(schemas.validationProblem(two, { a: 'x' }), 'arguments/a must be integer');
  });

  test('3,000 distinct schemas keep memory bounded: compiled validators beyond TOOL_SCHEMA_CACHE_SIZE are dropped', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heapAfterGc = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const distinct = (i: number) => ({
      type: 'object',
      properties: { [`field_${i}`]: { type: 'string', minLength: i % 7, pattern: `^x{${i % 50}}` } },
    });
    const fill = (cache: JsonSchemas) => {
      for (let i = 0; i < 3_000; i++) assert.equal(cache.validationProblem(distinct(i), {}), undefined);
    };
    const growth = (cacheSize: number) => {
      const cache = new JsonSchemas({ ...defaults, cacheSize });
      const before = heapAfterGc();
      fill(cache);
      const grown = heapAfterGc() - before;
      assert.equal(cache.validationProblem(distinct(2_999), { field_2999: 5 }), 'arguments/field_2999 must be string'); // still in use
      return grown;
    };
    const bounded = growth(100);
    const unbounded = growth(3_000);
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    assert.ok(unbounded > 10e6, `keeping all 3,000 grew the heap by only ${mb(unbounded)}: the check below proves nothing`);
    assert.ok(bounded < unbounded / 4, `with a cache of 100 the heap grew by ${mb(bounded)}; keeping all 3,000: ${mb(unbounded)}`);
  });
});

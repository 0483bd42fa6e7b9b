/**
 * JSON Schemas from requests (a dyno_run_command's `parameters`, an MCP
 * server's inputSchema) and the model's arguments checked against them. Both
 * are hostile input, so: a schema is measured before anything else reads it
 * (TOOL_SCHEMA_MAX_BYTES, TOOL_SCHEMA_MAX_DEPTH); `pattern`s run on RE2
 * (re2js), whose time is linear in the input, so no pattern can backtrack for
 * minutes; and compiled validators live in an LRU cache of
 * TOOL_SCHEMA_CACHE_SIZE entries, so distinct schemas cannot grow memory
 * without bound. `problem` only validates a schema against the draft-07
 * meta-schema (linear in its size, no code generation), which is all the API
 * needs; the worker compiles it when the model's arguments arrive.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import traverse from 'json-schema-traverse';
import { LRUCache } from 'lru-cache';
import { RE2JS } from 're2js';
import type { ToolSchemaLimits } from '../common/config';
import { AppError } from '../common/errors';

/** A schema that cannot be used; the message says why (the caller names the field). */
export class SchemaError extends AppError {}

/** ajv's `code.regExp`: RE2 instead of RegExp, so a pattern RE2 cannot run is a SchemaError naming it. */
const linearRegExp = Object.assign((pattern: string): RE2JS => compilePattern(pattern), {
  code: 'require("re2js").RE2JS.compile', // only read by ajv's standalone code generation
});

function compilePattern(pattern: string, at?: string): RE2JS {
  try {
    return RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    throw new SchemaError(
      `has a pattern this server cannot run${at ? ` at ${at}` : ''}: ${JSON.stringify(pattern)} (${(err as Error).message}); patterns run on RE2, in linear time, so lookaround and backreferences are not supported`,
    );
  }
}

/**
 * Why `value` is too deep or too large as JSON, or undefined. Walks it without
 * recursion and stops at the first node past either limit, so a huge schema
 * costs no more than one at the limit. The size is a lower bound (strings
 * counted without escapes): within it, the caller measures the JSON exactly.
 */
function overLimits(value: unknown, limits: ToolSchemaLimits): string | undefined {
  let bytes = 0;
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (typeof node === 'string') bytes += node.length + 2;
    else if (node === null || typeof node !== 'object') bytes += String(node).length;
    else {
      if (depth > limits.maxDepth) return `nests more than ${limits.maxDepth} levels deep, this server's limit (TOOL_SCHEMA_MAX_DEPTH)`;
      const entries = Object.entries(node);
      bytes += 2 + entries.length;
      for (const [key, child] of entries) {
        if (!Array.isArray(node)) bytes += key.length + 3;
        stack.push([child, depth + 1]);
      }
    }
    if (bytes > limits.maxBytes) return tooLarge(limits.maxBytes);
  }
  return undefined;
}

const tooLarge = (maxBytes: number) => `is larger than ${maxBytes} bytes of JSON, this server's limit (TOOL_SCHEMA_MAX_BYTES)`;

/** Options of every Ajv here; the compiling ones skip the meta-schema, which check() has validated. */
const AJV_OPTIONS = { allErrors: true, strict: false, addUsedSchema: false, code: { regExp: linearRegExp } } as const;

export class JsonSchemas {
  /** Validates schemas against the meta-schema and formats errors; compiles nothing else, so it does not grow. */
  private readonly ajv = new Ajv(AJV_OPTIONS);
  /**
   * Each validator is compiled by an Ajv of its own: an Ajv keeps something
   * of every schema it compiled for as long as it lives (removeSchema does not
   * free it), so dropping the validator from the cache must drop its Ajv too.
   */
  private readonly compiled: LRUCache<string, ValidateFunction>;

  constructor(private readonly limits: ToolSchemaLimits) {
    this.compiled = new LRUCache({ max: limits.cacheSize });
  }

  /**
   * Why `schema` is not usable, or undefined when it is: too large, too deep,
   * not a JSON Schema, or a pattern RE2 cannot run. Does not compile it.
   */
  problem(schema: Record<string, unknown>): string | undefined {
    try {
      this.measure(schema);
      this.checkContent(schema);
      return undefined;
    } catch (err) {
      if (err instanceof SchemaError) return err.message;
      throw err;
    }
  }

  /** Why `value` does not match `schema`, or undefined when it does. Throws SchemaError when the schema is not usable. */
  validationProblem(schema: Record<string, unknown>, value: unknown): string | undefined {
    const validate = this.compile(schema);
    if (validate(value)) return undefined;
    return this.ajv.errorsText(validate.errors, { dataVar: 'arguments' });
  }

  private compile(schema: Record<string, unknown>): ValidateFunction {
    const json = this.measure(schema);
    let validate = this.compiled.get(json);
    if (!validate) {
      this.checkContent(schema);
      try {
        validate = new Ajv({ ...AJV_OPTIONS, validateSchema: false }).compile(schema);
      } catch (err) {
        throw err instanceof SchemaError ? err : new SchemaError(`is not a valid JSON Schema: ${(err as Error).message}`, { cause: err });
      }
      this.compiled.set(json, validate);
    }
    return validate;
  }

  /** Throws SchemaError unless `schema` follows the meta-schema and has only patterns RE2 can run (measure() first). */
  private checkContent(schema: Record<string, unknown>): void {
    let valid: boolean;
    try {
      valid = this.ajv.validateSchema(schema) as boolean;
    } catch (err) {
      throw new SchemaError(`is not a valid JSON Schema: ${(err as Error).message}`, { cause: err }); // e.g. an unknown $schema
    }
    if (!valid) throw new SchemaError(`is not a valid JSON Schema: schema is invalid: ${this.ajv.errorsText(this.ajv.errors)}`);
    traverse(schema, (sub: traverse.SchemaObject, pointer: string) => {
      if (typeof sub.pattern === 'string') compilePattern(sub.pattern, `${pointer}/pattern`);
      const patternProperties: unknown = sub.patternProperties;
      if (patternProperties && typeof patternProperties === 'object') {
        for (const pattern of Object.keys(patternProperties)) compilePattern(pattern, `${pointer}/patternProperties`);
      }
    });
  }

  /** Throws SchemaError when `schema` is too deep or too large; returns its JSON. */
  private measure(schema: Record<string, unknown>): string {
    const problem = overLimits(schema, this.limits);
    if (problem) throw new SchemaError(problem);
    const json = JSON.stringify(schema);
    if (Buffer.byteLength(json) > this.limits.maxBytes) throw new SchemaError(tooLarge(this.limits.maxBytes));
    return json;
  }
}

/** JSON Schema checks for model-facing tool arguments (ajv, compiled once per schema). */
import Ajv, { type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

function compile(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(key, validate);
  }
  return validate;
}

/** Why `schema` is not a usable JSON Schema, or undefined when it is. */
export function schemaProblem(schema: Record<string, unknown>): string | undefined {
  try {
    compile(schema);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Why `value` does not match `schema`, or undefined when it does. */
export function validationProblem(schema: Record<string, unknown>, value: unknown): string | undefined {
  const validate = compile(schema);
  if (validate(value)) return undefined;
  return ajv.errorsText(validate.errors, { dataVar: 'arguments' });
}

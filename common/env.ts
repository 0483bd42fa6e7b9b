/**
 * The validators every setting goes through: each reads one environment
 * variable, applies its default when it is unset or empty, and throws a
 * ConfigError that names the variable and says what it must be.
 */
import * as path from 'node:path';
import { ConfigError } from './errors';

export type Env = Readonly<Record<string, string | undefined>>;

/** The variable's value; undefined when it is unset or empty. */
export function optional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Comma-separated values, trimmed, empty ones dropped. */
export function list(env: Env, name: string): string[] {
  return (optional(env, name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Comma-separated bearer keys, each at least `minLength` characters: a short
 * key can be guessed. The message says which entry, never the key itself.
 */
export function keyList(env: Env, name: string, minLength: number): string[] {
  const keys = list(env, name);
  const short = keys.findIndex((key) => key.length < minLength);
  if (short >= 0) {
    throw new ConfigError(
      `${name}: key ${short + 1} of ${keys.length} is ${keys[short]?.length} characters long; keys must be at least ${minLength} characters (e.g. openssl rand -base64 32)`,
    );
  }
  return keys;
}

/** A secret of at least `minLength` characters, or undefined when unset. */
export function secret(env: Env, name: string, minLength: number): string | undefined {
  const value = optional(env, name);
  if (value !== undefined && value.length < minLength) {
    throw new ConfigError(`${name} must be at least ${minLength} characters long, got ${value.length} (e.g. openssl rand -base64 32)`);
  }
  return value;
}

export function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${name} must be a positive integer, got '${raw}'`);
  return n;
}

/** A number, decimals allowed, of at least `min`. */
export function decimal(env: Env, name: string, fallback: number, min: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new ConfigError(`${name} must be a number of at least ${min}, got '${raw}'`);
  return n;
}

export function port(env: Env, name: string, fallback: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`${name} must be a port number from 1 to 65535, got '${raw}'`);
  return n;
}

/** A folder, as an absolute path (relative values are taken from the working directory). */
export function dir(env: Env, name: string, fallback: string): string {
  return path.resolve(optional(env, name) ?? fallback);
}

export function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = optional(env, name) ?? fallback;
  if (!(values as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be ${values.map((v) => `'${v}'`).join(' or ')}, got '${raw}'`);
  }
  return raw as T;
}

/** An http(s) URL, without a trailing slash. */
export function httpUrl(env: Env, name: string, fallback: string): string {
  const raw = optional(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got '${raw}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${name} must be an http(s) URL, got '${raw}'`);
  return raw.replace(/\/+$/, '');
}

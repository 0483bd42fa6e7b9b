/**
 * The command-line client's view of the service: where it is (AGENTS_URL),
 * the key (AGENTS_API_KEY, else the one `npm start` generated), requests,
 * and the errors a user reads, each with the exit code it ends the command
 * with (docs/api.md#the-command-line-client).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dir, httpUrl, optional, type Env } from '../common/env';
import { AppError } from '../common/errors';
import type { ErrorBody } from '../contract/wire';

export const EXIT = {
  ok: 0,
  /** The run ended with an error event (failed, cancelled, a limit). */
  runFailed: 1,
  /** A bad option, argument or input file. */
  usage: 2,
  /** The service refused the request (a 4xx and its error body). */
  refused: 3,
  /** The service could not be reached, answered 5xx, or a stream could not be resumed in time. */
  unavailable: 4,
} as const;

/** An error that ends the command: its message is for the user, its code for the shell. */
export class CliError extends AppError {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Service {
  url: string;
  apiKey: string;
}

/** AGENTS_URL (http://localhost:3000) and AGENTS_API_KEY, or `$DATA_DIR/api-key` as `npm start` keeps it. */
export function serviceFromEnv(env: Env): Service {
  const url = httpUrl(env, 'AGENTS_URL', 'http://localhost:3000');
  const keyFile = path.join(dir(env, 'DATA_DIR', '.data'), 'api-key');
  const apiKey = optional(env, 'AGENTS_API_KEY') ?? (fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8').trim() : undefined);
  if (!apiKey) throw new CliError(`no API key: set AGENTS_API_KEY (or run from the folder where \`npm start\` keeps ${keyFile})`, EXIT.usage);
  return { url, apiKey };
}

/** Sends a request; a network failure is a CliError naming the URL (EXIT.unavailable). */
export async function request(service: Service, pathname: string, init: RequestInit = {}): Promise<Response> {
  const url = `${service.url}${pathname}`;
  try {
    return await fetch(url, { ...init, headers: { Authorization: `Bearer ${service.apiKey}`, ...(init.headers as Record<string, string>) } });
  } catch (err) {
    throw new CliError(`cannot reach ${service.url}: ${reason(err)}`, EXIT.unavailable, { cause: err });
  }
}

/** The JSON of a 2xx answer; any other answer is a CliError with the service's own error body. */
export async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw await refusal(res);
  return (await res.json()) as T;
}

/** A non-2xx answer as the user reads it: Heroku's error body when there is one, else the status and text. */
export async function refusal(res: Response): Promise<CliError> {
  const text = await res.text().catch(() => '');
  const exitCode = res.status >= 500 ? EXIT.unavailable : EXIT.refused;
  const body = parseJson(text) as Partial<ErrorBody> | undefined;
  const error = body?.error;
  if (error && typeof error.message === 'string')
    return new CliError(`error ${error.code ?? res.status} ${error.type ?? ''}: ${error.message}`, exitCode);
  return new CliError(`HTTP ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 500)}` : ''}`, exitCode);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What a failed fetch says, down to its cause (undici hides ECONNREFUSED there). */
export function reason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const message = err instanceof Error ? err.message : String(err);
  return cause?.code ?? cause?.message ?? message;
}

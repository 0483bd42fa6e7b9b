/**
 * Database failures in words the model can read, and nothing it should not:
 * tool results land in workflow history and in events, so no message leaving
 * here carries the URL, its password, or (for a failed connection) the host,
 * user or database the URL names.
 */
import { DatabaseError } from 'pg';

/** The database's own words for an error of a statement; the message for anything else. */
export function describeError(err: unknown, ttlSeconds: number): string {
  if (err instanceof DatabaseError) {
    const lines = [`${err.severity ?? 'ERROR'}: ${err.message} (SQLSTATE ${err.code})${err.position ? ` at character ${err.position}` : ''}`];
    if (err.detail) lines.push(`DETAIL: ${err.detail}`);
    if (err.hint) lines.push(`HINT: ${err.hint}`);
    if (err.code === '57014' && /statement timeout/.test(err.message)) {
      lines.push(`The statement ran longer than this tool's ttl_seconds (${ttlSeconds}s) and was stopped.`);
    }
    return lines.join('\n');
  }
  return err instanceof Error ? err.message : String(err);
}

/** Server errors while connecting, by SQLSTATE: their own texts name the user or the database. */
const CONNECT_SQLSTATES: Record<string, (variable: string) => string> = {
  '28P01': (v) => `authentication failed (SQLSTATE 28P01): check the user name and password in ${v}`,
  '28000': (v) => `the server does not accept this user from here (SQLSTATE 28000): check the user in ${v} and the server's pg_hba.conf`,
  '3D000': (v) => `the database named in ${v} does not exist (SQLSTATE 3D000)`,
  '53300': () => 'the server has no connection slots left (SQLSTATE 53300)',
  '57P03': () => 'the server is not accepting connections yet (SQLSTATE 57P03)',
};

/** Network errors while connecting, by code: their own texts name the host and port. */
const CONNECT_CODES: Record<string, (variable: string) => string> = {
  ECONNREFUSED: (v) => `the server refused the connection (ECONNREFUSED): nothing listens at the host and port in ${v}`,
  ENOTFOUND: (v) => `the host name in ${v} does not resolve (ENOTFOUND)`,
  EAI_AGAIN: (v) => `the host name in ${v} could not be resolved now (EAI_AGAIN)`,
  ETIMEDOUT: () => 'the connection timed out (ETIMEDOUT)',
  EHOSTUNREACH: () => 'the host is unreachable (EHOSTUNREACH)',
  ENETUNREACH: () => 'the network is unreachable (ENETUNREACH)',
  ECONNRESET: () => 'the server closed the connection (ECONNRESET)',
};

/** Why a connection to the database in `variable` failed, naming no host, user or database. */
export function connectFailure(err: unknown, variable: string, url: string): string {
  if (err instanceof DatabaseError && CONNECT_SQLSTATES[err.code ?? '']) return CONNECT_SQLSTATES[err.code ?? '']!(variable);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return CONNECT_CODES[code]?.(variable) ?? withoutNames(describeError(err, 0), url);
}

/** `text` without the host, port, user and database of `url` (e.g. a TLS error naming the host). */
function withoutNames(text: string, url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return text;
  }
  const names = [parsed.host, parsed.hostname, decodeURIComponent(parsed.username), decodeURIComponent(parsed.pathname.slice(1))];
  return names
    .filter((name) => name.length > 0)
    .sort((a, b) => b.length - a.length)
    .reduce((t, name) => t.split(name).join('***'), text);
}

/** Replaces the URL and its password (as written and decoded) in a message. */
export function redactor(url: string): (text: string) => string {
  const secrets = [url];
  try {
    const password = new URL(url).password;
    if (password) secrets.push(password);
    secrets.push(decodeURIComponent(password));
  } catch {
    // not a URL, or a password that is not valid %-encoding: redact what we have
  }
  const ordered = [...new Set(secrets)].filter(Boolean).sort((a, b) => b.length - a.length);
  return (text) => ordered.reduce((t, s) => t.split(s).join('***'), text);
}

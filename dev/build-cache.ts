/**
 * Development tooling: the cache folder where the Temporal binaries we find or
 * build are kept, and the file helpers the locators share.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type Log = (msg: string) => void;

/** `$XDG_CACHE_HOME/durable-agents/<name>` (`~/.cache/...` when XDG_CACHE_HOME is unset or relative). */
export function cacheDir(name: string): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'durable-agents', name);
}

export function isExecutableFile(p: string): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** A fresh private folder inside `dir` (created), so that moving its contents into `dir` is an atomic rename. */
export function makeStagingDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return fs.mkdtempSync(path.join(dir, '.staging-'));
}

/**
 * A warm Go build cache for code_exec_go in the local sandbox.
 *
 * Go ships no compiled standard library (since 1.20): with an empty cache,
 * `go run` of a hello world compiles the runtime, fmt, ... first (30-60 s on
 * two cores). So once per Go toolchain the worker compiles a fixed program
 * that imports the commonly used packages, in the sandbox, and keeps the
 * resulting cache on the host; each call then starts from a copy of it and
 * needs well under a second. A call's own cache is never kept: code could
 * plant entries in it, and the next call would run them.
 *
 * The cache lives in `<tmpdir>/durable-agents-go-cache-<uid>/<toolchain key>`
 * (mode 0700), keyed by the go binary's path, size and mtime, so it survives
 * worker restarts and is rebuilt after a Go upgrade. A dir that is not ours
 * or is open to others is not used.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findExecutable, sandboxPath } from './bubblewrap';
import { runSandboxed, type SandboxSettings } from './run-sandboxed';

/** Where Go keeps its build cache under HOME when GOCACHE is unset. */
export const GO_CACHE_DIR = '.cache/go-build';
/**
 * Go's environment in the sandbox: no toolchain downloads (GOTOOLCHAIN, Go ≥ 1.21),
 * no module proxy (fails at once instead of timing out), no C compiler.
 * GOCACHE and GOPATH default to dirs under HOME, the work dir.
 */
export const GO_ENV = { GOTOOLCHAIN: 'local', GOPROXY: 'off', CGO_ENABLED: '0' };

const WARM_UP_TTL_SECONDS = 600;
const WARM_UP_PACKAGES = [
  'bufio',
  'bytes',
  'encoding/json',
  'errors',
  'fmt',
  'io',
  'math',
  'math/rand',
  'os',
  'regexp',
  'slices',
  'sort',
  'strconv',
  'strings',
  'sync',
  'time',
  'unicode',
];
const WARM_UP_PROGRAM = `package main

import (
${WARM_UP_PACKAGES.map((p) => `\t_ "${p}"`).join('\n')}
)

func main() {}
`;

const building = new Map<string, Promise<string | undefined>>();

/**
 * The host dir of the warm cache for the `go` the sandbox would run, building
 * it first if needed (one build per toolchain at a time). Undefined when
 * there is no go or the build failed: calls then run with an empty cache.
 */
export async function goBuildCache(settings: SandboxSettings): Promise<string | undefined> {
  const searchPath = settings.mode === 'bubblewrap' ? sandboxPath(settings.workerPath) : settings.workerPath;
  const go = findExecutable('go', searchPath);
  let store: string | undefined;
  let key: string;
  try {
    store = go && storeDir();
    if (!go || !store) return undefined;
    const stat = fs.statSync(go);
    key = createHash('sha256')
      .update(`${fs.realpathSync(go)}:${stat.size}:${stat.mtimeMs}`)
      .digest('hex')
      .slice(0, 16);
  } catch {
    return undefined; // no usable store: run with an empty cache
  }
  const ready = path.join(store, key);
  if (fs.existsSync(ready)) return ready;
  let build = building.get(key);
  if (!build) {
    build = warmUp(settings, store, ready).finally(() => building.delete(key));
    building.set(key, build);
  }
  return build;
}

async function warmUp(settings: SandboxSettings, store: string, ready: string): Promise<string | undefined> {
  const partial = path.join(store, `partial-${randomUUID()}`);
  try {
    const result = await runSandboxed(
      {
        argv: ['go', 'build', '-o', os.devNull, 'warm.go'],
        files: { 'warm.go': WARM_UP_PROGRAM },
        env: GO_ENV,
        ttlSeconds: WARM_UP_TTL_SECONDS,
        maxOutputBytes: 4096,
        collect: async (workDir) => fs.promises.rename(path.join(workDir, GO_CACHE_DIR), partial),
      },
      settings,
    );
    if (result.exitStatus !== 0) return undefined;
    // Another worker may have finished first: then its cache is used and ours dropped.
    await fs.promises.rename(partial, ready).catch(() => undefined);
    return fs.existsSync(ready) ? ready : undefined;
  } catch {
    return undefined;
  } finally {
    await fs.promises.rm(partial, { recursive: true, force: true });
  }
}

/** The store, created if needed; undefined when it exists but is not private to this user. */
function storeDir(): string | undefined {
  const dir = path.join(os.tmpdir(), `durable-agents-go-cache-${process.getuid?.() ?? 'user'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.lstatSync(dir);
  const ours = stat.isDirectory() && stat.uid === process.getuid?.() && (stat.mode & 0o077) === 0;
  return ours ? dir : undefined;
}

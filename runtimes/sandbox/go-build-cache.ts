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
 * The cache lives in `<tmpdir>/durable-agents-go-cache-<uid>/<toolchain key>`,
 * keyed by the go binary's path, size and mtime, so it survives worker
 * restarts and is rebuilt after a Go upgrade. The sandbox (nobody, when the
 * worker is root) reads it through a read-only bind, so it is readable by
 * all but writable only by the worker: a store dir that is not ours or that
 * others may write is not used. The warm-up writes the cache through a
 * read-write bind of a fresh dir handed to the sandbox's user, which the
 * worker takes back before the cache is used.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findExecutable, SANDBOX_PATH, sandboxIdentity } from './bubblewrap';
import type { LocalSandbox } from './local-sandbox';

/** Where Go keeps its build cache under HOME when GOCACHE is unset. */
export const GO_CACHE_DIR = '.cache/go-build';
/**
 * Go's environment in the sandbox: no toolchain downloads (GOTOOLCHAIN, Go ≥ 1.21),
 * no module proxy (fails at once instead of timing out), no C compiler.
 * GOCACHE and GOPATH default to dirs under HOME, the work dir.
 */
export const GO_ENV = { GOTOOLCHAIN: 'local', GOPROXY: 'off', CGO_ENABLED: '0' };

const WARM_UP_TTL_SECONDS = 600;
/** A trusted, fixed program: it may use every CPU (one CPU makes it take 20 s and more). */
const WARM_UP_CPUS = os.availableParallelism();
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
export async function goBuildCache(sandbox: LocalSandbox): Promise<string | undefined> {
  const go = findExecutable('go', SANDBOX_PATH);
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
    build = warmUp(sandbox, store, ready).finally(() => building.delete(key));
    building.set(key, build);
  }
  return build;
}

async function warmUp(sandbox: LocalSandbox, store: string, ready: string): Promise<string | undefined> {
  const partial = path.join(store, `partial-${randomUUID()}`);
  try {
    fs.mkdirSync(partial, { mode: 0o755 });
    const identity = sandbox.mode === 'bubblewrap' ? sandboxIdentity() : undefined;
    if (identity) fs.chownSync(partial, identity.uid, identity.gid);
    const result = await sandbox.run({
      argv: ['go', 'build', '-o', os.devNull, 'warm.go'],
      files: { 'warm.go': WARM_UP_PROGRAM },
      writableDirs: { [GO_CACHE_DIR]: partial },
      env: GO_ENV,
      cpus: WARM_UP_CPUS,
      ttlSeconds: WARM_UP_TTL_SECONDS,
      maxOutputBytes: 4096,
    });
    if (result.exitStatus !== 0) return undefined;
    if (identity) chownTree(partial, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    // Another worker may have finished first: then its cache is used and ours dropped.
    await fs.promises.rename(partial, ready).catch(() => undefined);
    return fs.existsSync(ready) ? ready : undefined;
  } catch {
    return undefined;
  } finally {
    await fs.promises.rm(partial, { recursive: true, force: true });
  }
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.lchownSync(dir, uid, gid);
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    fs.lchownSync(path.join(entry.parentPath, entry.name), uid, gid);
  }
}

/**
 * The store, created if needed and made readable by all, writable by us only;
 * undefined when it is not ours, or when the sandbox's user (nobody, for a
 * root worker) could not reach it.
 */
function storeDir(): string | undefined {
  const dir = path.join(os.tmpdir(), `durable-agents-go-cache-${process.getuid?.() ?? 'user'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.()) return undefined;
  fs.chmodSync(dir, 0o755);
  return !sandboxIdentity() || reachableByOthers(path.dirname(dir)) ? dir : undefined;
}

/** Whether every dir from / down to `dir` lets others through (the sandbox binds the cache by its path). */
function reachableByOthers(dir: string): boolean {
  for (let current = dir; ; current = path.dirname(current)) {
    if ((fs.statSync(current).mode & 0o001) === 0) return false;
    if (current === path.dirname(current)) return true;
  }
}

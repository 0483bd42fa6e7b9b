/**
 * Development tooling: builds Go programs (the Temporal CLI, the Temporal
 * server) from source through the Go module proxy, with whatever Go the
 * machine has.
 *
 * Each module's go.mod names the Go it needs (`go 1.25.0` for the CLI v1.5.1,
 * `go 1.25.7` for the server v1.30.1). Go >= 1.21 fetches that toolchain by
 * itself (GOTOOLCHAIN=auto, through the module proxy); older Go (Debian 12's
 * golang-go is 1.19) cannot, so for those we first fetch BOOTSTRAP_GO_TOOLCHAIN
 * as a module and build with it.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findOnPath, isExecutableFile, type Log } from './build-cache';

/**
 * The newest `go` line among the modules we build, so that one bootstrap
 * serves them all without a second toolchain download. Raise it when a pinned
 * module asks for more (its go.mod's `go` line).
 */
export const BOOTSTRAP_GO_TOOLCHAIN = 'go1.25.7';

const EXE = process.platform === 'win32' ? '.exe' : '';

export interface GoToolchain {
  go: string;
  env: NodeJS.ProcessEnv;
}

function goVersion(goBin: string): [number, number] | undefined {
  const r = spawnSync(goBin, ['env', 'GOVERSION'], { encoding: 'utf8', timeout: 60_000 });
  const m = /go(\d+)\.(\d+)/.exec(r.stdout ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * For Go < 1.21 (no automatic toolchain switching): fetch a newer toolchain as
 * the Go module `golang.org/toolchain` (the very module Go >= 1.21 uses for its
 * own switching) through the module proxy, and return its `go` binary.
 */
function bootstrapToolchain(goBin: string, env: NodeJS.ProcessEnv, log: Log): string | undefined {
  const goArch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];
  const goOs = ({ linux: 'linux', darwin: 'darwin' } as Record<string, string>)[process.platform];
  if (!goArch || !goOs) return undefined;
  const mod = `golang.org/toolchain@v0.0.1-${BOOTSTRAP_GO_TOOLCHAIN}.${goOs}-${goArch}`;
  log(`this Go is older than 1.21: fetching ${mod} through the module proxy`);
  const r = spawnSync(goBin, ['mod', 'download', '-json', mod], {
    encoding: 'utf8',
    env: { ...env, GO111MODULE: 'on' },
    cwd: os.tmpdir(),
    timeout: 900_000,
  });
  try {
    const dir = (JSON.parse(r.stdout) as { Dir?: string }).Dir;
    if (dir) {
      // Module zips don't keep executable bits: set them on bin/ and pkg/tool/
      // as Go's own toolchain switch does.
      for (const sub of ['bin', path.join('pkg', 'tool')]) {
        const root = path.join(dir, sub);
        if (!fs.existsSync(root)) continue;
        for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
          if (entry.isFile()) fs.chmodSync(path.join(entry.parentPath ?? entry.path, entry.name), 0o555);
        }
      }
      const bin = path.join(dir, 'bin', `go${EXE}`);
      if (isExecutableFile(bin)) return bin;
    }
  } catch (err) {
    log(`could not use ${mod}: ${(err as Error).message}`);
    return undefined;
  }
  log(`could not fetch ${mod}: ${(r.stderr || r.stdout || '').trim().slice(-500)}`);
  return undefined;
}

/** A `go` that can build the pinned modules, or undefined when there is no Go on PATH (or its bootstrap failed). */
export function goToolchain(log: Log): GoToolchain | undefined {
  const onPath = findOnPath(`go${EXE}`);
  if (!onPath) return undefined;
  // Debian's Go sets GOTOOLCHAIN=local in its go.env; we want Go to fetch the
  // toolchain a module's go.mod asks for, unless the user chose otherwise.
  const env: NodeJS.ProcessEnv = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'auto' };
  const v = goVersion(onPath);
  if (v && (v[0] < 1 || (v[0] === 1 && v[1] < 21))) {
    const newer = bootstrapToolchain(onPath, env, log);
    if (!newer) return undefined;
    return { go: newer, env: { ...env, GOROOT: path.dirname(path.dirname(newer)) } };
  }
  return { go: onPath, env };
}

function runStreaming(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: Log): Promise<{ code: number | null; tail: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const onData = (buf: Buffer) => {
      for (const line of buf.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        lines.push(line);
        if (lines.length > 40) lines.shift();
        log(`  ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, tail: lines.join('\n') }));
  });
}

/**
 * `go install -ldflags=<ldflags> <packages...>` into `gobin`: static binaries
 * (CGO off unless the caller's environment says otherwise). Resolves false,
 * after logging Go's last lines, when the build fails.
 */
export async function goInstall(toolchain: GoToolchain, packages: string[], ldflags: string, gobin: string, log: Log): Promise<boolean> {
  const started = Date.now();
  // `go install` prints nothing while it compiles: show that it is alive.
  const heartbeat = setInterval(() => log(`  ... still building (${Math.round((Date.now() - started) / 1000)} s)`), 30_000);
  try {
    const { code, tail } = await runStreaming(
      toolchain.go,
      ['install', `-ldflags=${ldflags}`, ...packages],
      { ...toolchain.env, GOBIN: gobin, CGO_ENABLED: toolchain.env.CGO_ENABLED ?? '0', GOFLAGS: toolchain.env.GOFLAGS ?? '-buildvcs=false' },
      log,
    );
    if (code !== 0) log(`go install failed (exit ${code}):\n${tail}`);
    else log(`built in ${Math.round((Date.now() - started) / 1000)} s`);
    return code === 0;
  } finally {
    clearInterval(heartbeat);
  }
}

/** The folder of `module@version` in Go's module cache (downloaded if needed); its files are read-only. */
export function goModuleDir(toolchain: GoToolchain, moduleAtVersion: string): string | undefined {
  const r = spawnSync(toolchain.go, ['mod', 'download', '-json', moduleAtVersion], {
    encoding: 'utf8',
    env: { ...toolchain.env, GO111MODULE: 'on', GOFLAGS: '-mod=mod' },
    cwd: os.tmpdir(),
    timeout: 900_000,
  });
  try {
    return (JSON.parse(r.stdout) as { Dir?: string }).Dir;
  } catch {
    return undefined;
  }
}

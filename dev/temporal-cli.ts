/**
 * Development tooling: finds (or builds) the `temporal` CLI, which embeds the
 * Temporal dev server (`temporal server start-dev`) that `npm start` and the
 * tests run against.
 *
 * Lookup order (first usable wins):
 *   1. `TEMPORAL_CLI_PATH` (must point at an existing executable, else we throw);
 *   2. `temporal` on PATH;
 *   3. the cached build `$XDG_CACHE_HOME/durable-agents/temporal-cli-v1.5.1/temporal`
 *      (`~/.cache/...` when XDG_CACHE_HOME is unset);
 *   4. a download of the official v1.5.1 release archive, the same binary that
 *      `@temporalio/testing` downloads on first use. `npm start` does not
 *      depend on that package (a dev dependency), so this step fetches the GitHub
 *      release tarball itself, and only after a short reachability probe: on
 *      machines without internet it fails within seconds and we move on;
 *   5. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into the cache
 *      folder, when `go` is on PATH (several minutes and a few hundred MB of
 *      module downloads the first time, through the Go module proxy).
 *
 * Run directly (`tsx dev/temporal-cli.ts`) it prints the binary's path on
 * stdout (progress goes to stderr); the tests' pretest step uses that to pay
 * the build cost before any test starts.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppError, ConfigError } from '../common/errors';

/** The pinned Temporal CLI release (bundles Temporal server 1.29.1 and the Web UI). */
export const TEMPORAL_CLI_VERSION = '1.5.1';
/** Go package path used for the source build. */
export const TEMPORAL_CLI_GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';
/**
 * The CLI's go.mod says `go 1.25.0`. Go >= 1.21 fetches that toolchain by itself
 * (GOTOOLCHAIN=auto, through the module proxy); older Go (Debian 12's golang-go
 * is 1.19) cannot, so for those we download this toolchain module explicitly.
 */
const BOOTSTRAP_GO_TOOLCHAIN = 'go1.25.0';

const EXE = process.platform === 'win32' ? '.exe' : '';
const BINARY_NAME = `temporal${EXE}`;

type Log = (msg: string) => void;

const defaultLog: Log = (msg) => process.stderr.write(`[temporal-cli] ${msg}\n`);

/** `$XDG_CACHE_HOME/durable-agents/temporal-cli-v1.5.1` (or `~/.cache/...`). */
export function temporalCliCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'durable-agents', `temporal-cli-v${TEMPORAL_CLI_VERSION}`);
}

/** Where the cached (downloaded or built) binary lives. */
export function cachedTemporalCliPath(): string {
  return path.join(temporalCliCacheDir(), BINARY_NAME);
}

function isExecutableFile(p: string): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs `<bin> --version`; returns its first line, or undefined if it does not run. */
function cliVersion(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) return undefined;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Moves a freshly produced binary into the cache atomically (rename within one folder). */
function installIntoCache(src: string): string {
  const dest = cachedTemporalCliPath();
  fs.chmodSync(src, 0o755);
  fs.renameSync(src, dest);
  return dest;
}

/** A fresh private folder inside the cache dir (so the final rename is atomic). */
function makeStagingDir(): string {
  const dir = temporalCliCacheDir();
  fs.mkdirSync(dir, { recursive: true });
  return fs.mkdtempSync(path.join(dir, '.staging-'));
}

function runStreaming(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: Log): Promise<{ code: number | null; tail: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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

// ---------------------------------------------------------------------------
// Step 4: download the official release archive.

function releaseArchiveUrl(): string | undefined {
  const platform = ({ linux: 'linux', darwin: 'darwin' } as Record<string, string>)[process.platform];
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];
  if (!platform || !arch) return undefined; // Windows ships a zip: not handled here.
  const v = TEMPORAL_CLI_VERSION;
  return `https://github.com/temporalio/cli/releases/download/v${v}/temporal_cli_${v}_${platform}_${arch}.tar.gz`;
}

async function tryDownload(log: Log): Promise<string | undefined> {
  const url = releaseArchiveUrl();
  if (!url) return undefined;
  if (!findOnPath('tar')) {
    log('skipping the release download: `tar` is not on PATH');
    return undefined;
  }
  // Reachability probe: fails fast (DNS error) on machines without internet.
  try {
    await fetch(url, { method: 'HEAD', redirect: 'follow', signal: AbortSignal.timeout(5_000) });
  } catch {
    log('the internet is not reachable: skipping the release download');
    return undefined;
  }
  log(`downloading Temporal CLI v${TEMPORAL_CLI_VERSION} from ${url}`);
  let staging: string | undefined;
  try {
    const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(300_000) });
    if (!res.ok) throw new AppError(`HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    staging = makeStagingDir();
    const archive = path.join(staging, 'cli.tar.gz');
    fs.writeFileSync(archive, body);
    const r = spawnSync('tar', ['-xzf', archive, '-C', staging], { encoding: 'utf8' });
    if (r.status !== 0) throw new AppError(`tar failed: ${r.stderr}`);
    const extracted = path.join(staging, BINARY_NAME);
    if (!fs.existsSync(extracted)) throw new AppError(`archive has no ${BINARY_NAME}`);
    if (!cliVersion(extracted)) throw new AppError('the downloaded binary does not run');
    return installIntoCache(extracted);
  } catch (err) {
    log(`release download failed: ${(err as Error).message}`);
    return undefined;
  } finally {
    if (staging) fs.rmSync(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Step 5: build from source with `go install`.

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

async function tryGoInstall(log: Log): Promise<string | undefined> {
  let goBin = findOnPath(`go${EXE}`);
  if (!goBin) return undefined;
  // Debian's Go sets GOTOOLCHAIN=local in its go.env; we want Go to fetch the
  // toolchain the CLI's go.mod asks for, unless the user chose otherwise.
  const env: NodeJS.ProcessEnv = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'auto' };
  const v = goVersion(goBin);
  if (v && (v[0] < 1 || (v[0] === 1 && v[1] < 21))) {
    const newer = bootstrapToolchain(goBin, env, log);
    if (!newer) return undefined;
    goBin = newer;
    env.GOROOT = path.dirname(path.dirname(newer));
  }
  const staging = makeStagingDir();
  const pkg = `${TEMPORAL_CLI_GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}`;
  log(
    `building the Temporal CLI from source: go install ${pkg}\n` +
      '  (this takes several minutes and a few hundred MB of Go modules the first time;\n' +
      `   the result is cached in ${temporalCliCacheDir()})`,
  );
  const started = Date.now();
  // `go install` prints nothing while it compiles: show that it is alive.
  const heartbeat = setInterval(() => log(`  ... still building (${Math.round((Date.now() - started) / 1000)} s)`), 30_000);
  try {
    // Same settings as the official release build (goreleaser): static binary,
    // stripped, and `temporal --version` reporting the real version.
    const ldflags = `-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`;
    const { code, tail } = await runStreaming(
      goBin,
      ['install', `-ldflags=${ldflags}`, pkg],
      { ...env, GOBIN: staging, CGO_ENABLED: env.CGO_ENABLED ?? '0' },
      log,
    );
    const built = path.join(staging, BINARY_NAME);
    if (code !== 0 || !fs.existsSync(built)) {
      log(`go install failed (exit ${code}):\n${tail}`);
      return undefined;
    }
    const dest = installIntoCache(built);
    log(`built in ${Math.round((Date.now() - started) / 1000)} s: ${dest}`);
    return dest;
  } finally {
    clearInterval(heartbeat);
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------

/** Returns the path of a usable `temporal` binary (see the lookup order above); `explicit` is TEMPORAL_CLI_PATH. */
export async function locateTemporalCli(log: Log = defaultLog, explicit = process.env.TEMPORAL_CLI_PATH): Promise<string> {
  // 1. Explicit override.
  if (explicit) {
    if (!isExecutableFile(explicit)) {
      throw new ConfigError(`TEMPORAL_CLI_PATH=${explicit} does not name an existing executable file`);
    }
    return explicit;
  }

  // 2. On PATH.
  const onPath = findOnPath(BINARY_NAME);
  if (onPath) {
    const version = cliVersion(onPath);
    if (version) {
      if (!version.includes(TEMPORAL_CLI_VERSION)) {
        log(`using ${onPath} (${version}); this project is tested with v${TEMPORAL_CLI_VERSION}`);
      }
      return onPath;
    }
    log(`ignoring ${onPath}: \`temporal --version\` failed`);
  }

  // 3. Cached build/download.
  const cached = cachedTemporalCliPath();
  if (isExecutableFile(cached)) {
    if (cliVersion(cached)) return cached;
    log(`ignoring ${cached}: it does not run; rebuilding it`);
  }

  // 4. The release archive (only where the internet is reachable).
  const downloaded = await tryDownload(log);
  if (downloaded) return downloaded;

  // 5. Build from source through the Go module proxy.
  const built = await tryGoInstall(log);
  if (built) return built;

  throw new AppError(
    `No Temporal CLI found. Do one of:\n` +
      `  - set TEMPORAL_CLI_PATH to an existing \`temporal\` binary (CLI v${TEMPORAL_CLI_VERSION} recommended);\n` +
      `  - install Go (>= 1.21; it fetches the Go 1.25 toolchain the build needs) so that ` +
      `\`go install ${TEMPORAL_CLI_GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}\` can build it into ${temporalCliCacheDir()};\n` +
      `  - or install the Temporal CLI v${TEMPORAL_CLI_VERSION} release ` +
      `(https://github.com/temporalio/cli/releases/tag/v${TEMPORAL_CLI_VERSION}) on PATH or at ${cachedTemporalCliPath()}.`,
  );
}

if (require.main === module) {
  locateTemporalCli().then(
    (p) => {
      process.stdout.write(`${p}\n`);
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}

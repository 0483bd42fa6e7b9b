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
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppError, ConfigError } from '../common/errors';
import { cacheDir, findOnPath, isExecutableFile, makeStagingDir, type Log } from './build-cache';
import { goInstall, goToolchain } from './go-toolchain';

/** The pinned Temporal CLI release (bundles Temporal server 1.29.1 and the Web UI). */
export const TEMPORAL_CLI_VERSION = '1.5.1';
/** Go package path used for the source build. */
export const TEMPORAL_CLI_GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

const EXE = process.platform === 'win32' ? '.exe' : '';
const BINARY_NAME = `temporal${EXE}`;

const defaultLog: Log = (msg) => process.stderr.write(`[temporal-cli] ${msg}\n`);

/** `$XDG_CACHE_HOME/durable-agents/temporal-cli-v1.5.1` (or `~/.cache/...`). */
export function temporalCliCacheDir(): string {
  return cacheDir(`temporal-cli-v${TEMPORAL_CLI_VERSION}`);
}

/** Where the cached (downloaded or built) binary lives. */
export function cachedTemporalCliPath(): string {
  return path.join(temporalCliCacheDir(), BINARY_NAME);
}

/** Runs `<bin> --version`; returns its first line, or undefined if it does not run. */
function cliVersion(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) return undefined;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

/** Moves a freshly produced binary into the cache atomically (rename within one folder). */
function installIntoCache(src: string): string {
  const dest = cachedTemporalCliPath();
  fs.chmodSync(src, 0o755);
  fs.renameSync(src, dest);
  return dest;
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
    staging = makeStagingDir(temporalCliCacheDir());
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

async function tryGoInstall(log: Log): Promise<string | undefined> {
  const toolchain = goToolchain(log);
  if (!toolchain) return undefined;
  const staging = makeStagingDir(temporalCliCacheDir());
  const pkg = `${TEMPORAL_CLI_GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}`;
  log(
    `building the Temporal CLI from source: go install ${pkg}\n` +
      '  (this takes several minutes and a few hundred MB of Go modules the first time;\n' +
      `   the result is cached in ${temporalCliCacheDir()})`,
  );
  try {
    // Same settings as the official release build (goreleaser): static binary,
    // stripped, and `temporal --version` reporting the real version.
    const ldflags = `-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`;
    const built = path.join(staging, BINARY_NAME);
    if (!(await goInstall(toolchain, [pkg], ldflags, staging, log)) || !fs.existsSync(built)) return undefined;
    return installIntoCache(built);
  } finally {
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

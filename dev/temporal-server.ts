/**
 * Development tooling: finds (or builds) a production Temporal server, the one
 * docker-compose.yml runs (`temporalio/server`), for the cluster test tier and
 * the load test: `temporal-server` (go.temporal.io/server's cmd/server), the
 * schema tool `temporal-sql-tool` (cmd/tools/sql, what `temporalio/admin-tools`
 * ships) and the module's SQL schema files (admin-tools' /etc/temporal/schema).
 *
 * One pin: the version is the tag of the `temporalio/server` image in
 * docker-compose.yml, so bumping the image bumps the tested server too.
 *
 * Lookup order: the cache folder
 * `$XDG_CACHE_HOME/durable-agents/temporal-server-v<version>/` (`~/.cache/...`
 * when XDG_CACHE_HOME is unset), then `go install` of both commands into it
 * (about 6 minutes and 1.3 GB of Go build cache on 2 cores the first time;
 * Temporal publishes the server only as a Docker image, so there is nothing to
 * download instead).
 *
 * Run directly (`tsx dev/temporal-server.ts`) it prints the cache folder on
 * stdout (progress goes to stderr); the cluster tier's pretest step uses that
 * to pay the build cost before any test starts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppError } from '../common/errors';
import { cacheDir, isExecutableFile, makeStagingDir, type Log } from './build-cache';
import { goInstall, goModuleDir, goToolchain } from './go-toolchain';

const COMPOSE_FILE = path.resolve(__dirname, '../docker-compose.yml');
const SERVER_MODULE = 'go.temporal.io/server';
/** The schema tree under the module (and under the cache folder), as admin-tools lays it out. */
const SCHEMA_SUBDIR = path.join('schema', 'postgresql');

const defaultLog: Log = (msg) => process.stderr.write(`[temporal-server] ${msg}\n`);

export interface TemporalServerBuild {
  version: string;
  /** `temporal-server` (cmd/server), as the server image names it. */
  server: string;
  /** `temporal-sql-tool` (cmd/tools/sql), as the admin-tools image names it. */
  sqlTool: string;
  /** The folder that holds `postgresql/v12/...`, for TEMPORAL_SCHEMA_DIR (admin-tools: /etc/temporal/schema). */
  schemaDir: string;
}

/** The tag of the `temporalio/server` image in docker-compose.yml, e.g. `1.30.1`. */
export function temporalServerVersion(composeFile = COMPOSE_FILE): string {
  const text = fs.readFileSync(composeFile, 'utf8');
  const match = /^\s*image:\s*temporalio\/server:(\d+\.\d+\.\d+)\s*$/m.exec(text);
  if (!match?.[1]) throw new AppError(`${composeFile} has no 'image: temporalio/server:<x.y.z>' line to take the server version from`);
  return match[1];
}

function buildIn(dir: string, version: string): TemporalServerBuild {
  return {
    version,
    server: path.join(dir, 'temporal-server'),
    sqlTool: path.join(dir, 'temporal-sql-tool'),
    schemaDir: path.join(dir, 'schema'),
  };
}

/** Whether `build` is complete and its server reports `version` (`temporal version 1.30.1`). */
function usable(build: TemporalServerBuild): boolean {
  if (!isExecutableFile(build.server) || !isExecutableFile(build.sqlTool)) return false;
  if (!fs.existsSync(path.join(build.schemaDir, 'postgresql', 'v12'))) return false;
  const r = spawnSync(build.server, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && r.stdout.trim().endsWith(` ${build.version}`);
}

async function tryGoInstall(version: string, log: Log): Promise<TemporalServerBuild | undefined> {
  const toolchain = goToolchain(log);
  if (!toolchain) return undefined;
  const dir = cacheDir(`temporal-server-v${version}`);
  const staging = makeStagingDir(dir);
  const packages = ['cmd/server', 'cmd/tools/sql'].map((cmd) => `${SERVER_MODULE}/${cmd}@v${version}`);
  log(
    `building Temporal server v${version} from source: go install ${packages.join(' ')}\n` +
      '  (about 6 minutes on 2 cores and a few hundred MB of Go modules the first time;\n' +
      `   the result is cached in ${dir})`,
  );
  try {
    // No version ldflags: the server's version is a constant in its sources.
    if (!(await goInstall(toolchain, packages, '-s -w', staging, log))) return undefined;
    const moduleDir = goModuleDir(toolchain, `${SERVER_MODULE}@v${version}`);
    if (!moduleDir || !fs.existsSync(path.join(moduleDir, SCHEMA_SUBDIR))) {
      log(`the module ${SERVER_MODULE}@v${version} has no ${SCHEMA_SUBDIR} folder`);
      return undefined;
    }
    // A copy, so that `go clean -modcache` cannot break the tests (and it is writable: the module cache is not).
    fs.cpSync(path.join(moduleDir, SCHEMA_SUBDIR), path.join(staging, SCHEMA_SUBDIR), { recursive: true });
    for (const entry of fs.readdirSync(path.join(staging, 'schema'), { recursive: true, withFileTypes: true })) {
      const p = path.join(entry.parentPath ?? entry.path, entry.name);
      fs.chmodSync(p, entry.isDirectory() ? 0o755 : 0o644);
    }
    const build = buildIn(dir, version);
    fs.rmSync(build.schemaDir, { recursive: true, force: true });
    fs.renameSync(path.join(staging, 'schema'), build.schemaDir);
    fs.renameSync(path.join(staging, 'sql'), build.sqlTool);
    fs.renameSync(path.join(staging, 'server'), build.server); // last: its presence marks a complete cache
    return usable(build) ? build : undefined;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** The server, schema tool and schema files of the version docker-compose.yml runs; built once if they are not cached. */
export async function locateTemporalServer(log: Log = defaultLog): Promise<TemporalServerBuild> {
  const version = temporalServerVersion();
  const cached = buildIn(cacheDir(`temporal-server-v${version}`), version);
  if (usable(cached)) return cached;
  const built = await tryGoInstall(version, log);
  if (built) return built;
  throw new AppError(
    `No Temporal server v${version} found in ${path.dirname(cached.server)}, and it could not be built. ` +
      `Install Go (any version: an older one fetches the toolchain the build needs) so that ` +
      `\`go install ${SERVER_MODULE}/cmd/server@v${version} ${SERVER_MODULE}/cmd/tools/sql@v${version}\` can run ` +
      '(through the Go module proxy), then try again.',
  );
}

if (require.main === module) {
  locateTemporalServer().then(
    (build) => {
      process.stdout.write(`${path.dirname(build.server)}\n`);
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}

/**
 * A throwaway PostgreSQL cluster for a test file: initdb into a temp dir, the
 * server on a free 127.0.0.1 port (password auth over TCP, trust over the
 * unix socket in the temp dir, for the test's own admin connection), then
 * stopped and deleted. initdb and postgres refuse to run as root, so under
 * root (CI) they run as the `postgres` OS user the Debian package creates.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { freePort } from '../../dev/dev-server';

export interface TestPostgres {
  port: number;
  /** The postmaster's pid (its backends are its children). */
  pid: number;
  /** Unix-socket directory (trust auth): for admin connections. */
  socketDir: string;
  /** postgres://user:password@127.0.0.1:port/database */
  url(user: string, password: string, database: string): string;
  /** A connected client as the superuser over the socket; the caller ends it. */
  admin(database?: string): Promise<Client>;
  stop(): Promise<void>;
}

/** PG_BINDIR, or the newest /usr/lib/postgresql/<version>/bin (Debian's layout). */
function binDir(): string {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error(`no PostgreSQL server found under ${root} (apt-get install postgresql), and PG_BINDIR is not set`);
  return path.join(root, versions[0]!, 'bin');
}

/** Under root, spawn options that run as the `postgres` OS user. */
function runAs(): Pick<SpawnOptions, 'uid' | 'gid'> {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error('running as root, but there is no `postgres` OS user to run the PostgreSQL server as');
    return Number(r.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g') };
}

/** `settings`: server settings (`-c name=value`), e.g. `{ max_connections: 300 }`. */
export async function startPostgres(settings: Record<string, string | number> = {}): Promise<TestPostgres> {
  const bin = binDir();
  const user = runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-pg-'));
  if (user.uid !== undefined) fs.chownSync(dir, user.uid, user.gid!);
  const dataDir = path.join(dir, 'data');
  const env = { PATH: process.env.PATH, HOME: dir, LC_ALL: 'C' };

  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '-E', 'UTF8'],
    { ...user, env, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.stdout}\n${init.stderr}`);

  const port = await freePort();
  const server: ChildProcess = spawn(
    path.join(bin, 'postgres'),
    [
      ...['-D', dataDir, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off'],
      ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
    { ...user, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  server.stdout!.on('data', (d) => (log += d));
  server.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));

  const clientConfig = (database: string): ClientConfig => ({ host: dir, port, user: 'postgres', database });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`postgres exited before it was ready:\n${log}`);
    const probe = new Client(clientConfig('postgres'));
    try {
      await probe.connect();
      await probe.end();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        throw new Error(`postgres did not accept connections within 30s (${(err as Error).message}):\n${log}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    port,
    pid: server.pid!,
    socketDir: dir,
    url: (u, password, database) =>
      `postgres://${encodeURIComponent(u)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async admin(database = 'postgres') {
      const client = new Client(clientConfig(database));
      await client.connect();
      return client;
    },
    async stop() {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGINT'); // fast shutdown: disconnects clients, no checkpoint wait
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

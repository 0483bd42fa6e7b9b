/**
 * docker-compose.yml as the cluster tier reads it: a service's environment
 * (with compose's `${VAR:-default}` defaults; the machine's environment is not
 * consulted, so every run is configured alike), its command, its image tag,
 * and where a path inside its container lives in this repository (through its
 * bind mounts). The tier runs what compose runs, from the same files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '../..');
export const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

export interface ComposeService {
  name: string;
  /** The image's tag (`temporalio/server:1.30.1` → `1.30.1`). */
  imageTag?: string;
  environment: Record<string, string>;
  /** entrypoint + command, as the container would run them. */
  argv: string[];
  /** The file in this repository that `containerPath` is bind-mounted from. */
  hostPath(containerPath: string): string;
}

interface RawService {
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
  entrypoint?: string | string[];
  command?: string | string[];
  volumes?: string[];
}

/** Compose's interpolation with defaults only: `${X:-d}` and `${X-d}` become d, `$$` becomes `$`. */
function interpolate(value: string, where: string): string {
  return value.replace(
    /\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}/g,
    (match, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (match === '$$') return '$';
      if (op === ':-' || op === '-') return arg ?? '';
      throw new Error(`${COMPOSE_FILE}: ${where} uses \${${name}} without a default, which the cluster tier cannot supply`);
    },
  );
}

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean));

export function composeService(name: string, file = COMPOSE_FILE): ComposeService {
  const doc = parse(fs.readFileSync(file, 'utf8'), { merge: true }) as { services?: Record<string, RawService> };
  const raw = doc.services?.[name];
  if (!raw) throw new Error(`${file} has no service '${name}'`);
  const environment: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw.environment ?? {})) {
    environment[key] = interpolate(String(value ?? ''), `services.${name}.environment.${key}`);
  }
  const mounts = (raw.volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([source]) => source?.startsWith('.'))
    .map(([source, target]) => ({ host: path.resolve(path.dirname(file), source!), container: target! }));
  return {
    name,
    imageTag: raw.image?.split(':')[1],
    environment,
    argv: [...asList(raw.entrypoint), ...asList(raw.command)],
    hostPath(containerPath) {
      const mount = mounts.find((m) => containerPath === m.container || containerPath.startsWith(`${m.container}/`));
      if (!mount) throw new Error(`${file}: ${containerPath} is not bind-mounted from this repository in services.${name}.volumes`);
      return path.join(mount.host, path.relative(mount.container, containerPath));
    },
  };
}

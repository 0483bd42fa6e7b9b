// A Heroku Platform API double (one-off dynos) plus a TLS rendezvous server
// that runs each dyno's command for real with bash and streams its output, so
// that the real `heroku-client` package and a real TLS client can be tested
// against it. runtimes/heroku/rendezvous.ts and one-off-dyno.ts describe the protocol.
// As strict as the Platform API where the product meets it: the version=3
// Accept header, the token (Basic with an empty user or the account's email,
// or Bearer), the dyno create schema, one use per attach secret. It records
// every request and each dyno's environment and why it ended, so tests check
// what the product asked for, not what the platform does by itself.
//
// CLI: tsx test/doubles/heroku-platform.ts --token T [--port P]
//        [--rendezvous-port P] [--cert-dir D]
//   prints {"url":...,"caFile":...,"rendezvousPort":...} on stdout, runs until SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import express, { type NextFunction, type Request, type Response } from 'express';
import { generate } from 'selfsigned';

export interface HerokuPlatformOptions {
  /** The only API token accepted. */
  token: string;
  /**
   * The account's email: with Basic auth the user must be it or empty (what
   * heroku-client sends, ":" + token). Default: test-account@example.com.
   */
  email?: string;
  port?: number;
  rendezvousPort?: number;
  /**
   * Where the CA and rendezvous certificate live. Certificates found there are
   * reused, so a restarted double stays trusted by processes that already
   * read caFile; without it a temporary directory is used and removed on close.
   */
  certDir?: string;
  /** Apps that do not exist (404). Default: ['missing-app']. */
  missingApps?: string[];
}

export interface ApiReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Decides the answer to one create call; undefined means "behave normally". */
export type CreateHandler = (req: {
  app: string;
  body: any;
  headers: IncomingHttpHeaders;
  /** 1-based number of this create request. */
  call: number;
}) => ApiReply | undefined | Promise<ApiReply | undefined>;

export interface CreateRecord {
  app: string;
  body: any;
  headers: IncomingHttpHeaders;
  /** The status answered; 0 until the response is sent. */
  status: number;
}

/** Any API request, whatever its outcome. */
export interface RequestRecord {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The status answered; 0 until the response is sent. */
  status: number;
}

/** Why a dyno stopped running: its command exited, a stop call, its time_to_live, or its attached client hung up. */
export type DynoEnd = 'exit' | 'stop' | 'ttl' | 'hangup';

/** A dyno as the platform knows it. */
export interface DynoRecord {
  app: string;
  name: string;
  state: DynoState;
  /** The environment the dyno's command got from the create call (the platform adds DYNO, PATH and HOME). */
  env: Record<string, string>;
  /** Set once it stopped running. */
  endedBy?: DynoEnd;
}

export interface HerokuPlatformDouble {
  /** For HEROKU_API_URL / heroku-client's `host`. */
  url: string;
  /** PEM of the CA that signed the rendezvous certificate, for NODE_EXTRA_CA_CERTS. */
  caFile: string;
  rendezvousPort: number;
  /** Every request, in arrival order, whatever its outcome. */
  requests: RequestRecord[];
  /** Every POST /apps/:app/dynos, in arrival order, whatever its outcome. */
  creates: CreateRecord[];
  /** Dynos stopped through the API (actions/stop or DELETE). */
  stops: Array<{ app: string; dyno: string }>;
  /** Dyno processes still running. */
  running(): number;
  /** Every dyno created, oldest first. */
  dynos(): DynoRecord[];
  setCreateHandler(h: CreateHandler | undefined): void;
  /**
   * Whether the platform kills a dyno at its time_to_live (default true, as
   * Heroku does). Off, only the client's own time limit stops it.
   */
  setTimeToLiveEnforced(on: boolean): void;
  close(): Promise<void>;
}

/** A Heroku-shaped error reply, e.g. apiError(429, 'rate_limit', 'Slow down.'). */
export function apiError(status: number, id: string, message = id, headers: Record<string, string> = {}): ApiReply {
  return { status, body: { id, message }, headers };
}

type DynoState = 'starting' | 'up' | 'down' | 'crashed';

interface Dyno {
  id: string;
  name: string;
  app: string;
  /** The rendezvous path: the attach_url's secret. */
  secret: string;
  body: any;
  state: DynoState;
  createdAt: string;
  updatedAt: string;
  child?: ChildProcess;
  /** Why it stopped running; set when the platform kills it (stop, TTL, client gone) or its command exits. */
  endedBy?: DynoEnd;
  ttl?: NodeJS.Timeout;
}

const SIZE = /^(eco|basic|standard-[12]x|(performance|private|shield)-[a-z0-9-]+)$/i;

/** What is wrong with a dyno create body, following the Platform API schema. */
function invalidParams(b: any): string | undefined {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'Request body must be a JSON object.';
  if (b.command === undefined) return 'Missing required params: command.';
  if (typeof b.command !== 'string' || b.command === '') return 'command must be a non-empty string.';
  if (b.attach !== undefined && typeof b.attach !== 'boolean') return 'attach must be a boolean.';
  if (b.force_no_tty != null && typeof b.force_no_tty !== 'boolean') return 'force_no_tty must be a boolean.';
  if (b.env !== undefined) {
    if (typeof b.env !== 'object' || b.env === null || Array.isArray(b.env)) return 'env must be an object.';
    for (const [k, v] of Object.entries(b.env)) {
      if (!/^\w+$/.test(k)) return `env key ${JSON.stringify(k)} must match ^\\w+$.`;
      if (typeof v !== 'string') return `env value of ${k} must be a string.`;
    }
  }
  if (b.size !== undefined && !(typeof b.size === 'string' && SIZE.test(b.size))) return `Invalid dyno size ${JSON.stringify(b.size)}.`;
  if (b.type !== undefined && !(typeof b.type === 'string' && /^\w[\w-]*$/.test(b.type))) return 'type must be a process type name.';
  const ttl = b.time_to_live;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= 86400)) return 'time_to_live must be an integer from 1 to 86400.';
  return undefined;
}

/** heroku-client sends Basic base64(":" + token); the CLI's netrc has the account email as user; other clients send Bearer. */
function authorized(header: string | undefined, token: string, email: string): boolean {
  const [scheme = '', credentials = ''] = (header ?? '').split(' ');
  if (/^bearer$/i.test(scheme)) return credentials === token;
  if (!/^basic$/i.test(scheme)) return false;
  const decoded = Buffer.from(credentials, 'base64').toString();
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const user = decoded.slice(0, colon);
  return (user === '' || user === email) && decoded.slice(colon + 1) === token;
}

function herokuError(res: Response, status: number, id: string, message: string, extra: object = {}) {
  res.status(status).json({ id, message, ...extra });
}

/** Reuses the certificates in `dir`, or creates a CA and a rendezvous certificate it signs. */
async function certificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const files = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'rendezvous.pem'), key: path.join(dir, 'rendezvous-key.pem') };
  try {
    const [ca, cert, key] = await Promise.all([readFile(files.ca, 'utf8'), readFile(files.cert, 'utf8'), readFile(files.key, 'utf8')]);
    return { ca, cert, key };
  } catch {
    // Not there yet: create them.
  }
  const notBeforeDate = new Date(Date.now() - 86_400_000); // tolerate clock skew
  const notAfterDate = new Date(Date.now() + 10 * 365 * 86_400_000);
  const common = { keyType: 'ec', algorithm: 'sha256', notBeforeDate, notAfterDate } as const;
  const ca = await generate([{ name: 'commonName', value: 'durable-agents test CA' }], {
    ...common,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    ...common,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  await mkdir(dir, { recursive: true });
  await writeFile(files.ca, ca.cert);
  await writeFile(files.cert, server.cert);
  await writeFile(files.key, server.private, { mode: 0o600 });
  return { ca: ca.cert, cert: server.cert, key: server.private };
}

export async function startHerokuPlatform(opts: HerokuPlatformOptions): Promise<HerokuPlatformDouble> {
  const certDir = opts.certDir ?? (await mkdtemp(path.join(os.tmpdir(), 'heroku-double-')));
  const { cert, key } = await certificates(certDir);
  const missingApps = new Set(opts.missingApps ?? ['missing-app']);
  const email = opts.email ?? 'test-account@example.com';
  let enforceTimeToLive = true;
  const requests: RequestRecord[] = [];
  const creates: CreateRecord[] = [];
  const stops: Array<{ app: string; dyno: string }> = [];
  const dynos: Dyno[] = [];
  const appIds = new Map<string, string>();
  let createHandler: CreateHandler | undefined;

  const running = () => dynos.filter((d) => d.state === 'up').length;
  const setState = (d: Dyno, state: DynoState) => {
    d.state = state;
    d.updatedAt = new Date().toISOString();
  };

  /** Runs the dyno's command, streaming stdout and stderr into `socket` if attached. */
  function run(d: Dyno, socket?: tls.TLSSocket) {
    const child = spawn('bash', ['-c', d.body.command], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...d.body.env, DYNO: d.name },
      stdio: ['ignore', socket ? 'pipe' : 'ignore', socket ? 'pipe' : 'ignore'],
      detached: true, // its own process group, so stop/TTL kill everything it started
    });
    d.child = child;
    setState(d, 'up');
    if (socket) {
      child.stdout!.pipe(socket, { end: false });
      child.stderr!.pipe(socket, { end: false });
    }
    // 'close' waits for the output pipes to drain, so the socket ends after the last byte.
    child.on('close', (code) => {
      clearTimeout(d.ttl);
      setState(d, code === 0 || d.endedBy ? 'down' : 'crashed');
      d.endedBy ??= 'exit';
      socket?.end();
    });
  }

  /** Kills the dyno's process group; output then ends without any exit marker. */
  function kill(d: Dyno, why: DynoEnd) {
    if (d.state !== 'starting' && d.state !== 'up') return;
    d.endedBy = why;
    clearTimeout(d.ttl);
    if (!d.child) return setState(d, 'down'); // never attached: its attach_url no longer works
    try {
      process.kill(-d.child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: the group has already exited; its 'close' event is on its way.
    }
  }

  const rendezvousSockets = new Set<tls.TLSSocket>();
  const rendezvous = tls.createServer({ cert, key }, (socket) => {
    rendezvousSockets.add(socket);
    socket.on('close', () => rendezvousSockets.delete(socket));
    socket.on('error', () => {}); // clients may reset the connection at any time
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const eol = received.indexOf('\n');
      if (eol < 0) return;
      socket.off('data', onData); // later input (e.g. "\u0004") is read and dropped
      const secret = received.slice(0, eol).replace(/\r$/, '');
      const d = dynos.find((x) => x.secret === secret);
      if (!d || d.state !== 'starting' || !d.body.attach) {
        socket.end();
        return;
      }
      socket.write('rendezvous\r\n');
      socket.on('close', () => kill(d, 'hangup')); // the client hung up: the dyno goes too
      run(d, socket);
    };
    socket.on('data', onData);
  });

  const app = express();
  app.use((_req, res, next) => {
    res.set('Request-Id', randomUUID());
    next();
  });
  // For tests that run this double as a child process.
  app.get('/_double/state', (_req, res) => {
    res.json({ requests, creates, stops, running: running() });
  });
  app.use((req, res, next) => {
    const record: RequestRecord = { method: req.method, path: req.path, headers: req.headers, body: undefined, status: 0 };
    requests.push(record);
    res.on('finish', () => {
      record.body = req.body; // parsed by then, or undefined if it was not JSON
      record.status = res.statusCode;
    });
    next();
  });
  app.use(express.json());
  app.post('/apps/:app/dynos', (req, res, next) => {
    const record: CreateRecord = { app: req.params.app, body: req.body, headers: req.headers, status: 0 };
    creates.push(record);
    res.locals.call = creates.length;
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    next();
  });
  app.use((req, res, next) => {
    if (!/^application\/vnd\.heroku\+json;\s*version=3\b/.test(req.headers.accept ?? '')) {
      return herokuError(res, 406, 'not_acceptable', 'Set Accept: application/vnd.heroku+json; version=3 and try again.');
    }
    if (!authorized(req.headers.authorization, opts.token, email)) {
      return herokuError(res, 401, 'unauthorized', 'Invalid credentials provided.');
    }
    next();
  });
  app.use('/apps/:app', (req, res, next) => {
    if (!missingApps.has(req.params.app)) return next();
    herokuError(res, 404, 'not_found', "Couldn't find that app.", { resource: 'app' });
  });

  app.post('/apps/:app/dynos', async (req, res) => {
    const appName = req.params.app;
    const injected = await createHandler?.({ app: appName, body: req.body, headers: req.headers, call: res.locals.call });
    if (injected) {
      res
        .status(injected.status)
        .set(injected.headers ?? {})
        .json(injected.body);
      return;
    }
    const problem = invalidParams(req.body);
    if (problem) return herokuError(res, 422, 'invalid_params', problem);

    const type = req.body.type ?? 'run';
    let name: string;
    do name = `${type}.${1000 + Math.floor(Math.random() * 9000)}`;
    while (dynos.some((d) => d.app === appName && d.name === name));
    const now = new Date().toISOString();
    const d: Dyno = {
      id: randomUUID(),
      name,
      app: appName,
      secret: randomBytes(24).toString('hex'),
      body: req.body,
      state: 'starting',
      createdAt: now,
      updatedAt: now,
    };
    dynos.push(d);
    if (d.body.time_to_live && enforceTimeToLive) d.ttl = setTimeout(() => kill(d, 'ttl'), d.body.time_to_live * 1000);
    res.status(201).json(dynoJson(d));
    if (!d.body.attach) run(d); // detached: runs at once, output goes nowhere
  });

  const findDyno = (req: Request, res: Response): Dyno | undefined => {
    const d = dynos.find((x) => x.app === req.params.app && (x.name === req.params.name || x.id === req.params.name));
    if (!d) herokuError(res, 404, 'not_found', "Couldn't find that process.", { resource: 'dyno' });
    return d;
  };
  app.get('/apps/:app/dynos/:name', (req, res) => {
    const d = findDyno(req, res);
    if (d) res.json(dynoJson(d));
  });
  const stop = (req: Request<{ app: string; name: string }>, res: Response) => {
    const d = findDyno(req, res);
    if (!d) return;
    stops.push({ app: d.app, dyno: d.name });
    kill(d, 'stop');
    res.status(202).json({});
  };
  app.post('/apps/:app/dynos/:name/actions/stop', stop);
  app.delete('/apps/:app/dynos/:name', stop);

  app.use((_req: Request, res: Response) => herokuError(res, 404, 'not_found', 'The requested API endpoint was not found.'));
  app.use((err: any, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return herokuError(res, 400, 'bad_request', 'Invalid JSON in request body.');
    herokuError(res, 500, 'internal_server_error', String(err.message ?? err));
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  await new Promise<void>((resolve, reject) => {
    rendezvous.once('error', reject).listen(opts.rendezvousPort ?? 0, '127.0.0.1', resolve);
  });
  const rendezvousPort = (rendezvous.address() as AddressInfo).port;

  function dynoJson(d: Dyno) {
    if (!appIds.has(d.app)) appIds.set(d.app, randomUUID());
    return {
      id: d.id,
      name: d.name,
      state: d.state,
      type: d.body.type ?? 'run',
      size: d.body.size ?? 'Standard-1X',
      command: d.body.command,
      attach_url: d.body.attach ? `rendezvous://127.0.0.1:${rendezvousPort}/${d.secret}` : null,
      app: { id: appIds.get(d.app), name: d.app },
      created_at: d.createdAt,
      updated_at: d.updatedAt,
    };
  }

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile: path.join(certDir, 'ca.pem'),
    rendezvousPort,
    requests,
    creates,
    stops,
    running,
    dynos: () => dynos.map((d) => ({ app: d.app, name: d.name, state: d.state, env: { ...d.body.env }, endedBy: d.endedBy })),
    setCreateHandler: (h) => {
      createHandler = h;
    },
    setTimeToLiveEnforced: (on) => {
      enforceTimeToLive = on;
    },
    async close() {
      dynos.forEach((d) => kill(d, 'stop'));
      for (const s of rendezvousSockets) s.destroy();
      server.closeAllConnections();
      await Promise.all([new Promise((resolve) => server.close(resolve)), new Promise((resolve) => rendezvous.close(resolve))]);
      if (!opts.certDir) await rm(certDir, { recursive: true, force: true });
    },
  };
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      token: { type: 'string' },
      port: { type: 'string' },
      'rendezvous-port': { type: 'string' },
      'cert-dir': { type: 'string' },
    },
  });
  if (!values.token) throw new Error('--token is required');
  void startHerokuPlatform({
    token: values.token,
    port: values.port ? Number(values.port) : undefined,
    rendezvousPort: values['rendezvous-port'] ? Number(values['rendezvous-port']) : undefined,
    certDir: values['cert-dir'],
  }).then((h) => {
    console.log(JSON.stringify({ url: h.url, caFile: h.caFile, rendezvousPort: h.rendezvousPort }));
    const stop = () => void h.close().then(() => process.exit(0));
    process.on('SIGTERM', stop).on('SIGINT', stop);
  });
}

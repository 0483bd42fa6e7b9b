/**
 * `npm run load`: many concurrent streaming runs on the service as it is
 * deployed, with processes dying under them. A production Temporal server on
 * PostgreSQL configured like docker-compose.yml (test/support/temporal-cluster.ts),
 * LOAD_APIS API and LOAD_WORKERS worker processes, and LOAD_RUNS clients that
 * each start one run at once: the model double answers every call after
 * LOAD_MODEL_DELAY_MS, and each run makes one `dyno_run_command` call in the
 * bubblewrap sandbox. Once LOAD_KILL_AT_PERCENT of the runs have their first
 * event, one worker and one API are SIGKILLed; their clients go on through
 * the other API. Figures only: nothing passes or fails. Everything stays on
 * 127.0.0.1; the whole load phase ends after LOAD_TIMEOUT_SECONDS.
 *
 * Side effects are counted outside the sandbox: the workers find `bwrap`
 * through a shim that leaves a marker file named after TOOL_CALL_ID before it
 * starts the real one, so a tool call that ran twice shows as two markers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { positiveInt, type Env } from '../common/env';
import { findExecutable } from '../runtimes/sandbox/bubblewrap';
import { scriptedAgent, type ModelReply } from '../test/doubles/model-server';
import { startStack, type Stack } from '../test/support/stack';
import { loadClient, type LoadClientResult } from './load-client';
import { ProcessSampler } from './process-stats';

function loadSettings(env: Env = process.env) {
  const settings = {
    runs: positiveInt(env, 'LOAD_RUNS', 500),
    apis: positiveInt(env, 'LOAD_APIS', 2),
    workers: positiveInt(env, 'LOAD_WORKERS', 3),
    modelDelayMs: positiveInt(env, 'LOAD_MODEL_DELAY_MS', 1000),
    killAtPercent: positiveInt(env, 'LOAD_KILL_AT_PERCENT', 50),
    timeoutSeconds: positiveInt(env, 'LOAD_TIMEOUT_SECONDS', 600),
  };
  // One of each is killed: the others must carry on.
  if (settings.apis < 2) throw new Error(`LOAD_APIS must be at least 2 (one API is killed mid-load), got ${settings.apis}`);
  if (settings.workers < 2) throw new Error(`LOAD_WORKERS must be at least 2 (one worker is killed mid-load), got ${settings.workers}`);
  if (settings.killAtPercent > 100) throw new Error(`LOAD_KILL_AT_PERCENT must be at most 100, got ${settings.killAtPercent}`);
  return settings;
}

/** A `bwrap` that leaves `<markers>/<TOOL_CALL_ID>.<pid>` and execs the real one; readable by `nobody`, whom the sandbox runs as under root. */
function bwrapShim(dir: string): { binDir: string; markers: string } {
  const realBwrap = findExecutable('bwrap', process.env.PATH);
  if (!realBwrap) throw new Error('bubblewrap is not installed (apt-get install bubblewrap): the load test runs its tool in the sandbox');
  const binDir = path.join(dir, 'bin');
  const markers = path.join(dir, 'markers');
  fs.mkdirSync(binDir, { recursive: true });
  fs.mkdirSync(markers, { recursive: true });
  fs.writeFileSync(path.join(binDir, 'bwrap'), `#!/bin/sh\n: > "${markers}/$TOOL_CALL_ID.$$"\nexec ${realBwrap} "$@"\n`);
  for (const [p, mode] of [
    [dir, 0o755],
    [binDir, 0o755],
    [path.join(binDir, 'bwrap'), 0o755],
    [markers, 0o1777],
  ] as const) {
    fs.chmodSync(p, mode);
  }
  return { binDir, markers };
}

/** Executions of each tool call, from the marker files. */
function executionsByCall(markers: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const file of fs.readdirSync(markers)) {
    const call = file.slice(0, file.lastIndexOf('.'));
    counts.set(call, (counts.get(call) ?? 0) + 1);
  }
  return counts;
}

const TOOL = {
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'load-app', tool_params: { cmd: 'echo "ran $TOOL_CALL_ID"', description: 'Prints its call id' } },
};
const requestFor = (i: number) => ({
  model: 'load-model',
  messages: [{ role: 'user', content: `run ${i}\nCALL dyno_run_command {}` }],
  tools: [TOOL],
});

function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const seconds = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
const spread = (values: number[]) =>
  `p50 ${seconds(percentile(values, 50))}  p95 ${seconds(percentile(values, 95))}  p99 ${seconds(percentile(values, 99))}`;
const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;

async function main() {
  const settings = loadSettings();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-load-'));
  const shim = bwrapShim(dir);
  console.error(`load: starting the cluster, ${settings.apis} APIs and ${settings.workers} workers...`);
  const stack = await startStack({
    cluster: true,
    apis: settings.apis,
    workers: settings.workers,
    // All runs come from one key: its quotas sit above the load (their checks still run).
    apiEnv: { KEY_MAX_CONCURRENT_RUNS: String(settings.runs * 2), KEY_REQUESTS_PER_MINUTE: '1000000' },
    // No Heroku token: dyno_run_command runs in the local sandbox, through the shim.
    workerEnv: { HEROKU_API_KEY: '', TOOL_SANDBOX: 'bubblewrap', PATH: `${shim.binDir}${path.delimiter}${process.env.PATH}` },
  });
  const stop = () => stack.stop().finally(() => fs.rmSync(dir, { recursive: true, force: true }));
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    await runLoad(stack, settings, shim.markers);
  } finally {
    await stop();
  }
}

async function runLoad(stack: Stack, settings: ReturnType<typeof loadSettings>, markers: string) {
  stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: settings.modelDelayMs }) as ModelReply);
  const cluster = stack.temporal.cluster!;
  const sampler = new ProcessSampler([
    ...stack.apis.map((p, i) => ({ name: `api ${i + 1}${i === 0 ? ' (killed)' : ''}`, pid: () => p.child?.pid })),
    ...stack.workers.map((p, i) => ({ name: `worker ${i + 1}${i === 0 ? ' (killed)' : ''}`, pid: () => p.child?.pid })),
    { name: 'temporal-server', pid: () => cluster.serverPid() },
    { name: 'postgres (all its processes)', pid: () => cluster.postgres.pid, tree: true },
    { name: 'load driver (clients, model double)', pid: () => process.pid },
  ]);
  const loadBefore = os.loadavg()[0]!;
  const stamp = Date.now().toString(36);
  const t0 = performance.now();
  const deadline = t0 + settings.timeoutSeconds * 1000;
  sampler.start();

  let firstEvents = 0;
  let killedAt: number | undefined;
  const killAt = Math.ceil((settings.runs * settings.killAtPercent) / 100);
  const killOne = async () => {
    killedAt = performance.now() - t0;
    console.error(`load: ${firstEvents} runs have their first event: SIGKILL worker 1 and API 1`);
    await Promise.all([stack.workers[0]!.kill('SIGKILL'), stack.apis[0]!.kill('SIGKILL')]);
  };
  let kill: Promise<void> | undefined;
  const onFirstEvent = () => {
    if (++firstEvents === killAt) kill = killOne();
  };
  const progress = setInterval(
    () => console.error(`load: ${Math.round((performance.now() - t0) / 1000)} s, ${firstEvents} runs have events`),
    10_000,
  );

  const results = await Promise.all(
    Array.from({ length: settings.runs }, (_, i) =>
      loadClient({
        apiUrls: stack.apiUrls,
        firstApi: i % stack.apiUrls.length,
        apiKey: stack.apiKey,
        idempotencyKey: `load-${stamp}-${i}`,
        body: requestFor(i),
        deadline,
        onFirstEvent,
      }),
    ),
  );
  await kill;
  clearInterval(progress);
  const wallMs = performance.now() - t0;
  sampler.stop();
  report(settings, results, executionsByCall(markers), sampler, { wallMs, killedAt, loadBefore });
}

function report(
  settings: ReturnType<typeof loadSettings>,
  results: LoadClientResult[],
  executions: Map<string, number>,
  sampler: ProcessSampler,
  times: { wallMs: number; killedAt?: number; loadBefore: number },
) {
  const completed = results.filter((r) => r.outcome === 'completed');
  const unknownOutcome = completed.filter((r) => r.events.some((e) => e.includes('the outcome of this'))).length;
  const calls = [...executions.values()];
  const toolResults = results.flatMap((r) => r.events.map((e) => JSON.parse(e)).filter((e) => e.object === 'tool.completion'));
  const toolErrors = toolResults
    .map((e) => String(e.choices[0].message.content))
    .filter((c) => !c.startsWith("Tool 'dyno_run_command' returned result: ran ") && !c.includes('the outcome of this'));
  const rows: [string, string][] = [
    [
      'runs',
      `started ${results.filter((r) => r.runId).length}  completed ${completed.length}  failed ${results.filter((r) => r.outcome === 'failed').length}  lost ${results.filter((r) => r.outcome === 'lost').length}`,
    ],
    [
      'events',
      `missing ${results.reduce((s, r) => s + r.missingEvents, 0)}  repeated ${results.reduce((s, r) => s + r.repeatedEvents, 0)}  (reconnects ${results.reduce((s, r) => s + r.reconnects, 0)})`,
    ],
    [
      'side effects',
      `tool calls ${toolResults.length}: ran once ${calls.filter((n) => n === 1).length}, more than once ${calls.filter((n) => n > 1).length} ` +
        `(duplicate executions ${calls.reduce((sum, n) => sum + n - 1, 0)}); outcome unknown after the worker kill ${unknownOutcome}; ` +
        `other tool errors ${toolErrors.length}`,
    ],
    ['first event', spread(completed.map((r) => r.firstEventMs!))],
    ['run', spread(completed.map((r) => r.runMs!))],
    ['wall', `${seconds(times.wallMs)}  (${(completed.length / (times.wallMs / 1000)).toFixed(1)} runs/s; kill at ${seconds(times.killedAt)})`],
    [
      'machine',
      `CPU busy ${(sampler.machineBusy() * 100).toFixed(0)} % of ${os.cpus().length} cores  (load average before ${times.loadBefore.toFixed(1)})`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(
    `\nLoad: ${settings.runs} streaming runs, ${settings.apis} APIs, ${settings.workers} workers, Temporal server on PostgreSQL; ` +
      `model ${settings.modelDelayMs} ms, one sandboxed tool call per run`,
  );
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  const failures = [...new Set(results.filter((r) => r.error).map((r) => r.error))].slice(0, 3);
  for (const e of failures) console.log(`  failure: ${e}`);
  const lost = [...new Set(results.filter((r) => r.outcome === 'lost').map((r) => r.lastConnectionError ?? 'no answer before the deadline'))].slice(
    0,
    3,
  );
  for (const e of lost) console.log(`  lost: ${e}`);
  for (const e of [...new Set(toolErrors)].slice(0, 3)) console.log(`  tool error: ${e}`);
  console.log('\n  process                              peak RSS   CPU s   CPU % of one core');
  for (const p of sampler.report()) {
    console.log(
      `  ${p.name.padEnd(36)} ${mib(p.peakRssBytes).padStart(8)} ${p.cpuSeconds.toFixed(1).padStart(7)} ${((p.cpuSeconds / (times.wallMs / 1000)) * 100).toFixed(0).padStart(7)} %`,
    );
  }
}

main().catch((err) => {
  console.error(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});

/**
 * `npm run bench`: where a durable agent step's time goes. It starts each
 * system with the same doubles (the model API answering at once unless a row
 * says otherwise; `dyno_run_command 'echo ok'` through the Heroku double's
 * TLS rendezvous and a real `bash -c`), drives it over HTTP from this process
 * and prints figures only: there is nothing to pass or fail. All traffic
 * stays on 127.0.0.1.
 *
 *   npm run bench                      every row (several minutes)
 *   npm run bench -- --rows ours,plain only these rows (see ROWS)
 *   npm run bench -- --json            one JSON document instead of tables
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { workerConfig } from '../common/config';
import { startDevServer } from '../dev/dev-server';
import { workerTuning } from '../worker/worker';
import { locateTemporalCli } from '../dev/temporal-cli';
import { engineFloorBurst, engineFloorOpenRuns } from './engine-floor/capacity';
import { engineFloorLatency } from './engine-floor/latency';
import { goBuilds, type GoFigures } from './go-builds';
import { growth, type GrowthFigures } from './growth';
import { BUDGET_MS, burst, latency, openRuns, SIZES, type BurstFigures, type LatencyFigures, type OpenRunsFigures, type Stat } from './measure';
import { startOurs, startPlain, type ServerMode, type Shape } from './systems';

/** Every row the bench can print, in the order it measures them. */
const ROWS = {
  plain: 'the same HTTP contract as a plain, non-durable loop (no Temporal)',
  floor: 'engine floor: a trivial workflow, one no-op activity and one stream poll per step (in-memory server)',
  ours: 'durable-agents, in-memory dev server, separate API and worker processes',
  'ours-sqlite': 'durable-agents, SQLite dev server, separate API and worker processes',
  'aio-memory': 'durable-agents, all in one process (npm start), in-memory dev server',
  aio: 'durable-agents as `npm start` runs it: one process, embedded SQLite dev server',
  growth: `step 1 vs step ${SIZES.growthSteps} of one run, ${SIZES.growthOutputBytes} B of tool output per step (in-memory, separate)`,
  burst: `${SIZES.burstRuns} runs at once, model answering after ${SIZES.burstModelDelayMs / 1000} s, one tool call each (in-memory, separate)`,
  go: 'code_exec_go in the local sandbox: the first call (builds the Go cache if the machine has none), then warm calls (in-memory, separate)',
  rss: `RSS of the API and the worker at ${SIZES.rssOpenRuns.join(' and ')} open runs, model answering after ${SIZES.rssModelDelayMs / 1000} s`,
  'floor-load': 'engine floor under the burst and the open runs of the burst and rss rows (its own in-memory server and worker)',
} as const;
type Row = keyof typeof ROWS;

const LATENCY_SYSTEMS: Partial<Record<Row, { server: ServerMode; shape: Shape }>> = {
  ours: { server: 'memory', shape: 'separate' },
  'ours-sqlite': { server: 'sqlite', shape: 'separate' },
  'aio-memory': { server: 'memory', shape: 'all-in-one' },
  aio: { server: 'sqlite', shape: 'all-in-one' },
};
/**
 * Room for the longest run the rows script (the growth run's model calls), and per-key quotas above
 * what the bench asks of its one key (500 open runs, 200 at once): the quotas still run their checks.
 */
const SERVICE_ENV = {
  MAX_MODEL_CALLS_PER_RUN: String(SIZES.growthSteps + 10),
  KEY_MAX_CONCURRENT_RUNS: '10000',
  KEY_REQUESTS_PER_MINUTE: '1000000',
};
const WATCHDOG_MS = 20 * 60_000;

interface Results {
  machine: Record<string, string>;
  latency: Partial<Record<Row, LatencyFigures>>;
  growth?: GrowthFigures | 'failed';
  burst?: BurstFigures;
  rss?: OpenRunsFigures[];
  floorBurst?: BurstFigures;
  floorRss?: OpenRunsFigures[];
  go?: GoFigures;
}

const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

function parseRows(): { rows: Row[]; json: boolean } {
  const { values } = parseArgs({ options: { rows: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const asked = values.rows ? values.rows.split(',').map((r) => r.trim()) : Object.keys(ROWS);
  const unknown = asked.filter((r) => !(r in ROWS));
  if (unknown.length) throw new Error(`unknown row(s) ${unknown.join(', ')}; rows: ${Object.keys(ROWS).join(', ')}`);
  return { rows: (Object.keys(ROWS) as Row[]).filter((r) => asked.includes(r)), json: values.json };
}

/** The systems running now, stopped on SIGINT/SIGTERM so no server or service process outlives the bench. */
const running = new Set<{ stop(): Promise<void> }>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void Promise.allSettled([...running].map((s) => s.stop())).finally(() => process.exit(130)));
}

async function withSystem<T extends { stop(): Promise<void> }, R>(start: () => Promise<T>, use: (system: T) => Promise<R>): Promise<R> {
  const system = await start();
  running.add(system);
  try {
    return await use(system);
  } finally {
    running.delete(system);
    await system.stop();
  }
}

async function measure(rows: Row[], progress: (msg: string) => void): Promise<Results> {
  const cpus = os.cpus();
  const results: Results = {
    machine: {
      cores: `${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown'}`,
      memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
      node: process.version,
      loadAtStart: loadAverage(),
    },
    latency: {},
  };
  if (rows.includes('plain')) {
    progress('plain loop');
    results.latency.plain = await withSystem(() => startPlain(SERVICE_ENV), latency);
  }
  if (rows.includes('floor')) {
    progress('engine floor');
    results.latency.floor = await withSystem(
      async () => await startDevServer({ cliPath: await locateTemporalCli() }),
      // The worker settings of ours (model-call slots; the floor's no-op activity stands for the model call).
      (server) => engineFloorLatency(server.address, workerTuning(workerConfig().modelCallSlots)),
    );
  }
  if (rows.includes('floor-load')) {
    const workerOptions = workerTuning(workerConfig().modelCallSlots);
    await withSystem(
      async () => await startDevServer({ cliPath: await locateTemporalCli() }),
      async (server) => {
        progress('engine floor, burst');
        results.floorBurst = await engineFloorBurst(server.address, workerOptions, server.process.pid, SIZES.burstRuns, SIZES.burstModelDelayMs);
        results.floorRss = [];
        for (const count of SIZES.rssOpenRuns) {
          progress(`engine floor, rss at ${count} open runs`);
          results.floorRss.push(await engineFloorOpenRuns(server.address, workerOptions, count, SIZES.rssModelDelayMs));
        }
      },
    );
  }
  for (const row of rows) {
    const system = LATENCY_SYSTEMS[row];
    if (!system || row === 'ours') continue;
    progress(row);
    results.latency[row] = await withSystem(() => startOurs(system.server, system.shape, SERVICE_ENV), latency);
  }
  const onOurs = rows.filter((r) => ['ours', 'growth', 'burst', 'go'].includes(r));
  if (onOurs.length) {
    await withSystem(
      () => startOurs('memory', 'separate', SERVICE_ENV),
      async (system) => {
        if (rows.includes('ours')) {
          progress('ours');
          results.latency.ours = await latency(system);
        }
        if (rows.includes('growth')) {
          progress('growth');
          results.growth = (await growth(system).catch((err: unknown) => console.error(`bench: growth: ${String(err)}`))) ?? 'failed';
        }
        if (rows.includes('burst')) {
          progress('burst');
          results.burst = await burst(system, SIZES.burstRuns, SIZES.burstModelDelayMs);
        }
        if (rows.includes('go')) {
          progress('go');
          results.go = await goBuilds(system);
        }
      },
    );
  }
  if (rows.includes('rss')) {
    // On fresh processes: a process keeps the memory earlier rows made it take, and RSS would show that.
    await withSystem(
      () => startOurs('memory', 'separate', SERVICE_ENV),
      async (system) => {
        results.rss = [];
        for (const count of SIZES.rssOpenRuns) {
          progress(`rss at ${count} open runs`);
          results.rss.push(await openRuns(system, count, SIZES.rssModelDelayMs));
        }
      },
    );
  }
  results.machine.loadAtEnd = loadAverage();
  return results;
}

// ---------------------------------------------------------------- printing

const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);
const pair = (s: Stat) => `${ms(s.p50)} / ${ms(s.p95)}`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

function table(title: string, head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(`\n${title}\n${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of body) console.log(line(r));
}

function print(results: Results): void {
  console.log(
    'Machine: ' +
      Object.entries(results.machine)
        .map(([k, v]) => `${k} ${v}`)
        .join('; '),
  );
  const plainStep = results.latency.plain?.step.p50;
  const floorStep = results.latency.floor?.step.p50;
  const latencyRows = (Object.keys(results.latency) as Row[]).map((row) => {
    const f = results.latency[row]!;
    const minus = (base: number | undefined) => (base === undefined || row === 'plain' ? '' : `+${ms(f.step.p50 - base)}`);
    return [
      row,
      pair(f.firstEvent),
      pair(f.step),
      minus(plainStep),
      row === 'floor' ? '' : minus(floorStep),
      `${f.load.perSecond.toFixed(1)}`,
      pair(f.load.run),
      `${f.failed.firstEvent + f.failed.steps + f.load.failed}`,
    ];
  });
  if (latencyRows.length) {
    table(
      "Latency (p50 / p95). Step = one model call + one tool call, between consecutive chat.completion events; the floor's step is two of its steps.",
      ['row', 'first event', 'agent step', 'step − plain', 'step − floor', 'runs/s @20', 'run @20', 'failed'],
      latencyRows,
    );
  }
  if (results.growth === 'failed') console.log('\nGrowth: the run failed');
  else if (results.growth) {
    const g = results.growth;
    table(
      `Growth: one run of ${g.steps} steps, ${SIZES.growthOutputBytes} B tool output each (p50 of steps 1–10 and ${g.steps - 9}–${g.steps})`,
      ['', `steps 1–10`, `steps ${g.steps - 9}–${g.steps}`, 'mean'],
      [
        ['step time', ms(g.stepMs.first), ms(g.stepMs.last), ''],
        ['history bytes per step', kb(g.historyBytesPerStep.first), kb(g.historyBytesPerStep.last), kb(g.historyBytesPerStep.mean)],
        ['executions (continue-as-new)', '', '', String(g.executions)],
        ['payload store growth', '', '', kb(g.payloadStoreBytes)],
      ],
    );
  }
  const bursts = Object.entries({ ours: results.burst, floor: results.floorBurst }).filter(([, b]) => b !== undefined) as [string, BurstFigures][];
  if (bursts.length) {
    const cpu = (b: BurstFigures) =>
      Object.entries(b.cpuMsPerRun)
        .map(([name, msPerRun]) => `${name} ${msPerRun.toFixed(0)}`)
        .join(', ');
    table(
      `Burst: ${SIZES.burstRuns} runs at once (p50 / p95); CPU ms per run by process, and how busy the machine's cores were`,
      ['row', 'first event', 'run', 'lost', 'CPU ms per run', 'cores busy'],
      bursts.map(([row, b]) => [row, pair(b.firstEvent), pair(b.run), String(b.lost), cpu(b), `${(b.machineBusy * 100).toFixed(0)}%`]),
    );
  }
  const rss = [...(results.rss ?? []).map((r) => ['ours', r] as const), ...(results.floorRss ?? []).map((r) => ['floor', r] as const)];
  if (rss.length) {
    table(
      'Memory: peak RSS while the runs are open (the floor has no API)',
      ['row', 'open runs', 'api', 'worker', 'all open after', 'lost'],
      rss.map(([row, r]) => {
        const peak = (role: string) => (r.peakRss[role] === undefined ? '' : mb(r.peakRss[role]));
        return [row, String(r.openRuns), peak('api'), peak('worker') || peak('service'), ms(r.allOpenMs), String(r.lost)];
      }),
    );
  }
  if (results.go) {
    const g = results.go;
    table(
      'code_exec_go in the local sandbox: tool part, chat.completion -> tool.completion (p50 / p95)',
      ['first call', 'warm calls', 'failed'],
      [[g.first === undefined ? 'failed' : ms(g.first), `${pair(g.warm)} (${g.warm.n})`, String(g.failed)]],
    );
  }
  console.log(
    `\nRows: ${Object.entries(ROWS)
      .map(([k, v]) => `\n  ${k}: ${v}`)
      .join('')}`,
  );
}

async function main() {
  const { rows, json } = parseRows();
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 60_000} min; giving up`);
    process.exit(1);
  }, WATCHDOG_MS);
  const started = Date.now();
  const results = await measure(rows, (msg) => console.error(`bench: ${msg} (${((Date.now() - started) / 1000).toFixed(0)} s)`));
  clearTimeout(watchdog);
  if (json) console.log(JSON.stringify({ budgetsMs: BUDGET_MS, sizes: SIZES, ...results }, null, 2));
  else print(results);
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});

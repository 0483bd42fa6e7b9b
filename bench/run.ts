/**
 * `npm run bench`: what the orchestration itself costs. It starts the same
 * stack as the tests (a real Temporal dev server, the worker and API processes,
 * the model double answering with 0 ms latency, the Heroku double running each
 * dyno command with a real `bash -c` behind a TLS rendezvous) and prints
 * figures only: there is nothing to pass or fail. All traffic stays on 127.0.0.1.
 * Speed targets live here, never in the tests: e.g. how long a warm Go build
 * of code_exec_go takes in the sandbox.
 *
 * The Temporal server keeps its state in memory, unless
 * BENCH_SQLITE_SYNCHRONOUS (OFF, NORMAL or FULL) asks for a SQLite file, as
 * `npm start` uses, with that `synchronous` setting: to compare their cost.
 */
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { oneOf, optional } from '../common/env';
import { readStream, type Frame } from '../test/support/sse';
import { startStack, type Stack } from '../test/support/stack';

const SETTINGS = {
  warmupRuns: 5,
  sequentialRuns: 50,
  stepRuns: 3,
  stepsPerRun: 20,
  concurrentRuns: 200,
  inFlight: 20,
  requestTimeoutMs: 30_000,
  warmGoRuns: 5,
};
/** Each phase stops starting runs once its budget is spent, so the whole bench stays within a few minutes. */
const BUDGET_MS = { warmup: 15_000, sequential: 60_000, steps: 45_000, concurrent: 90_000, go: 60_000 };
/** A Go call's ttl: the first one on a machine without a build cache compiles the standard library. */
const GO_TTL_SECONDS = 120;
const WATCHDOG_MS = 8 * 60_000;
const SQLITE_SYNCHRONOUS = optional(process.env, 'BENCH_SQLITE_SYNCHRONOUS')
  ? oneOf(process.env, 'BENCH_SQLITE_SYNCHRONOUS', ['OFF', 'NORMAL', 'FULL'], 'NORMAL')
  : undefined;

// Room for the step runs: stepsPerRun calls plus the final one that finds max_calls used up.
const MAX_MODEL_CALLS = SETTINGS.stepsPerRun + 1;

const dynoTool = (maxCalls: number) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'bench-app',
    max_calls: maxCalls,
    tool_params: { cmd: 'echo ok', description: 'Prints ok on a one-off dyno' },
  },
});
const request = (content: string, tools: unknown[] = []) => ({
  model: 'bench-model',
  messages: [{ role: 'user', content }],
  ...(tools.length ? { tools } : {}),
});

interface TimedFrame {
  frame: Frame;
  /** ms since the POST was sent. */
  at: number;
  object?: string;
  content?: string;
}

interface TimedRun {
  status: number;
  headersMs: number;
  totalMs: number;
  frames: TimedFrame[];
}

/** One POST, with the arrival time of every frame of its stream. */
async function timedRun(stack: Stack, body: unknown): Promise<TimedRun> {
  const t0 = performance.now();
  const since = () => performance.now() - t0;
  const res = await fetch(`${stack.apiUrl}/v1/agents/heroku`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack.apiKey}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(SETTINGS.requestTimeoutMs),
  });
  const headersMs = since();
  const frames: TimedFrame[] = [];
  await readStream(res, {
    onFrame: (frame) => {
      const at = since();
      const message = frame.event === 'message' ? JSON.parse(frame.data) : undefined;
      frames.push({ frame, at, object: message?.object, content: message?.choices?.[0]?.message?.content ?? undefined });
    },
  });
  return { status: res.status, headersMs, totalMs: since(), frames };
}

/** A run that streamed its events and ended with `done` and no `error` frame. */
function completed(run: TimedRun): boolean {
  const events = run.frames.map((f) => f.frame.event);
  return run.status === 200 && events.at(-1) === 'done' && !events.includes('error');
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : `${v.toFixed(1)} ms`);
const p50p95 = (values: number[]) => `p50 ${ms(percentile(values, 50))}   p95 ${ms(percentile(values, 95))}   (n=${values.length})`;

function table(title: string, rows: [string, string][]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\n${title}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
}

/** Runs `body` one at a time, up to `count` times or until the budget is spent. */
async function sequential(stack: Stack, count: number, budgetMs: number, body: unknown): Promise<{ runs: TimedRun[]; failed: number }> {
  const deadline = performance.now() + budgetMs;
  const runs: TimedRun[] = [];
  let failed = 0;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const run = await timedRun(stack, body).catch(() => undefined);
    if (run && completed(run)) runs.push(run);
    else failed++;
  }
  return { runs, failed };
}

async function firstEvent(stack: Stack) {
  const body = request('Hello, bench!');
  await sequential(stack, SETTINGS.warmupRuns, BUDGET_MS.warmup, body);
  const { runs, failed } = await sequential(stack, SETTINGS.sequentialRuns, BUDGET_MS.sequential, body);
  const firstFrame = runs.map((r) => r.frames.find((f) => f.frame.id === '0')!.at);
  return { runs, failed, firstFrame, headers: runs.map((r) => r.headersMs), total: runs.map((r) => r.totalMs) };
}

/** Steps of LOOP runs: the model calls the tool at every turn until max_calls is used up. */
async function agentSteps(stack: Stack) {
  const N = SETTINGS.stepsPerRun;
  const body = request('LOOP dyno_run_command {}', [dynoTool(N)]);
  const deadline = performance.now() + BUDGET_MS.steps;
  const step: number[] = [];
  const tool: number[] = [];
  const model: number[] = [];
  const atDouble: number[] = [];
  let failed = 0;
  for (let r = 0; r < SETTINGS.stepRuns && performance.now() < deadline; r++) {
    const seen = stack.model.requests.length;
    const run = await timedRun(stack, body).catch(() => undefined);
    const calls = stack.model.requests.slice(seen); // runs are sequential: these are this run's model calls
    const chats = run?.frames.filter((f) => f.object === 'chat.completion') ?? [];
    const tools = run?.frames.filter((f) => f.object === 'tool.completion') ?? [];
    // Expected: N+1 model calls, N tool calls that ran ("ok"), then the refused one and the run-limit error.
    const ran = tools.slice(0, N).every((t) => t.content === "Tool 'dyno_run_command' returned result: ok");
    if (!run || run.status !== 200 || chats.length !== N + 1 || tools.length !== N + 1 || calls.length !== N + 1 || !ran) {
      failed++;
      continue;
    }
    for (let k = 0; k < N; k++) {
      step.push(chats[k + 1]!.at - chats[k]!.at);
      tool.push(tools[k]!.at - chats[k]!.at);
      model.push(chats[k + 1]!.at - tools[k]!.at);
      atDouble.push(calls[k + 1]!.time - calls[k]!.time);
    }
  }
  return { step, tool, model, atDouble, failed };
}

/** `concurrentRuns` runs with one tool call each, `inFlight` at a time. */
async function underLoad(stack: Stack) {
  const body = request('CALL dyno_run_command {}', [dynoTool(1)]);
  const deadline = performance.now() + BUDGET_MS.concurrent;
  const latencies: number[] = [];
  let started = 0;
  let failed = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (started < SETTINGS.concurrentRuns && performance.now() < deadline) {
      started++;
      const run = await timedRun(stack, body).catch(() => undefined);
      const answered = run?.frames.some((f) => f.content === "Done: Tool 'dyno_run_command' returned result: ok");
      if (run && completed(run) && answered) latencies.push(run.totalMs);
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: SETTINGS.inFlight }, lane));
  const wallMs = performance.now() - t0;
  return { latencies, failed, wallMs, perSecond: latencies.length / (wallMs / 1000) };
}

/** Whether a code_exec tool message says the program printed 42. */
function printed42(content: string | undefined): boolean {
  try {
    const result = JSON.parse((content ?? '').replace(/^Tool '[^']*' returned result: /, ''));
    return JSON.parse(result.content[0].text).stdout === '42\n';
  } catch {
    return false;
  }
}

/** code_exec_go in the local sandbox: a first call (which builds the Go cache if this machine has none), then warm ones. */
async function goBuilds(stack: Stack) {
  const code = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(6 * 7) }\n';
  const body = request(`CALL code_exec_go ${JSON.stringify({ code })}`, [
    { type: 'heroku_tool', name: 'code_exec_go', runtime_params: { ttl_seconds: GO_TTL_SECONDS } },
  ]);
  const toolPart = async () => {
    const t0 = performance.now();
    const res = await fetch(`${stack.apiUrl}/v1/agents/heroku`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack.apiKey}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout((GO_TTL_SECONDS + 30) * 1000),
    });
    const frames: TimedFrame[] = [];
    await readStream(res, {
      onFrame: (frame) => {
        const message = frame.event === 'message' ? JSON.parse(frame.data) : undefined;
        frames.push({ frame, at: performance.now() - t0, object: message?.object, content: message?.choices?.[0]?.message?.content });
      },
    });
    const call = frames.find((f) => f.object === 'chat.completion');
    const tool = frames.find((f) => f.object === 'tool.completion');
    return call && tool && printed42(tool.content) ? tool.at - call.at : undefined;
  };
  const first = await toolPart().catch(() => undefined);
  const deadline = performance.now() + BUDGET_MS.go;
  const warm: number[] = [];
  let failed = first === undefined ? 1 : 0;
  for (let i = 0; i < SETTINGS.warmGoRuns && performance.now() < deadline; i++) {
    const ms = await toolPart().catch(() => undefined);
    if (ms === undefined) failed++;
    else warm.push(ms);
  }
  return { first, warm, failed };
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s; giving up`);
    process.exit(1);
  }, WATCHDOG_MS);

  const cpus = os.cpus();
  table('Machine', [
    ['cores', `${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown'}`],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['os', `${os.type()} ${os.release()} ${os.arch()}`],
    ['node', process.version],
    ['load average', `${loadAverage()} (1/5/15 min) at the start: other work on this machine skews every figure`],
  ]);
  table('Settings', [
    ['temporal server', SQLITE_SYNCHRONOUS ? `SQLite file, journal_mode=WAL, synchronous=${SQLITE_SYNCHRONOUS}` : 'in memory'],
    ['model double latency', '0 ms (scriptedAgent)'],
    ['tool', "dyno_run_command 'echo ok' via the Heroku double (TLS rendezvous + bash -c)"],
    ['first event', `${SETTINGS.warmupRuns} warm-up + ${SETTINGS.sequentialRuns} sequential no-tool runs`],
    [
      'agent steps',
      `${SETTINGS.stepRuns} runs x ${SETTINGS.stepsPerRun} steps (LOOP, max_calls ${SETTINGS.stepsPerRun}, MAX_MODEL_CALLS_PER_RUN ${MAX_MODEL_CALLS})`,
    ],
    ['load', `${SETTINGS.concurrentRuns} runs, ${SETTINGS.inFlight} in flight, 1 tool call each`],
    ['code_exec_go', `a first call, then up to ${SETTINGS.warmGoRuns} warm ones (ttl ${GO_TTL_SECONDS} s), in the local sandbox`],
    [
      'budgets',
      `${BUDGET_MS.sequential / 1000} s / ${BUDGET_MS.steps / 1000} s / ${BUDGET_MS.concurrent / 1000} s per phase (+${BUDGET_MS.warmup / 1000} s warm-up), ${SETTINGS.requestTimeoutMs / 1000} s per request`,
    ],
  ]);

  const t0 = performance.now();
  const stack = await startStack({
    apiEnv: { MAX_MODEL_CALLS_PER_RUN: String(MAX_MODEL_CALLS) },
    ...(SQLITE_SYNCHRONOUS ? { persistent: true, sqliteSynchronous: SQLITE_SYNCHRONOUS } : {}),
  });
  const startupMs = performance.now() - t0;
  process.once('SIGINT', () => void stack.stop().finally(() => process.exit(130)));
  try {
    const first = await firstEvent(stack);
    table('1. POST -> first event (no-tool run; stack started in ' + (startupMs / 1000).toFixed(1) + ' s)', [
      ['response headers', p50p95(first.headers)],
      ['first id:0 frame', p50p95(first.firstFrame)],
      ['whole run (done frame)', p50p95(first.total)],
      ['failed runs', String(first.failed)],
    ]);

    const steps = await agentSteps(stack);
    table('2. One agent step = one model call + one tool call (between consecutive chat.completion events)', [
      ['step', p50p95(steps.step)],
      ['  tool part', `${p50p95(steps.tool)}   chat.completion -> tool.completion`],
      ['  model part', `${p50p95(steps.model)}   tool.completion -> next chat.completion`],
      ['step at the model double', `${p50p95(steps.atDouble)}   between consecutive model requests (no stream delivery)`],
      ['failed runs', String(steps.failed)],
    ]);

    const load = await underLoad(stack);
    table(`3. Load: ${SETTINGS.inFlight} concurrent runs, one tool call each`, [
      ['throughput', `${load.perSecond.toFixed(1)} runs/s (${load.latencies.length} runs in ${(load.wallMs / 1000).toFixed(1)} s)`],
      ['run latency (POST -> done)', p50p95(load.latencies)],
      ['failed runs', String(load.failed)],
    ]);
    const go = await goBuilds(stack);
    table('4. code_exec_go in the local sandbox (tool part: chat.completion -> tool.completion)', [
      ['first call', `${go.first === undefined ? 'failed' : ms(go.first)}   builds the Go cache if this machine has none yet`],
      ['warm calls', p50p95(go.warm)],
      ['failed runs', String(go.failed)],
    ]);

    console.log(
      '\nThe tool part includes scheduling the tool activity, the dyno double (Platform API call, TLS rendezvous,\n' +
        'a real `bash -c`), the workflow task that records the result and the stream delivery; the model part\n' +
        'includes the model activity and its HTTP call to the 0 ms double. Everything shares this machine.',
    );
    console.log(`Load average at the end: ${loadAverage()} (1/5/15 min).`);
  } finally {
    await stack.stop();
    clearTimeout(watchdog);
  }
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});

/**
 * What the bench does to a system over HTTP, and the statistics it reports.
 * Every run is a real POST /v1/agents/heroku whose SSE frames are timed as
 * they arrive; a run counts only if it streamed what the model double was
 * scripted to make it stream and ended with `done`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { reply, scriptedAgent, type ModelHandler } from '../test/doubles/model-server';
import { readStream, type Frame } from '../test/support/sse';
import { ProcessSampler } from './process-stats';
import { rssBytes, type System } from './systems';

export const REQUEST_TIMEOUT_MS = 60_000;

export const dynoTool = (maxCalls: number, cmd = 'echo ok') => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'bench-app', max_calls: maxCalls, tool_params: { cmd, description: 'Runs a command on a one-off dyno' } },
});

export const request = (content: string, tools: unknown[] = []) => ({
  model: 'bench-model',
  messages: [{ role: 'user', content }],
  ...(tools.length ? { tools } : {}),
});

/** The model calls dyno_run_command until the conversation holds `steps` tool results, then answers. */
export const stepsThenStop =
  (steps: number): ModelHandler =>
  ({ body }) => {
    const results = body.messages.filter((m: { role: string }) => m.role === 'tool').length;
    return results < steps ? reply.toolCalls([{ name: 'dyno_run_command', arguments: {} }]) : reply.text(`finished after ${steps} steps`);
  };

/** Answers the run's first call after `delayMs` with `first`, every later call at once with the scripted agent. */
export const slowFirstAnswer =
  (delayMs: number, handler: ModelHandler = scriptedAgent): ModelHandler =>
  async (req) => {
    const answer = await handler(req);
    const first = !req.body.messages.some((m: { role: string }) => m.role === 'assistant');
    return first && answer.kind !== 'hang' ? { ...answer, delayMs } : answer;
  };

export interface TimedFrame {
  frame: Frame;
  /** ms since the POST was sent. */
  at: number;
  object?: string;
  content?: string;
}

export interface TimedRun {
  status: number;
  runId: string;
  headersMs: number;
  totalMs: number;
  frames: TimedFrame[];
}

/** One POST, with the arrival time of every frame of its stream. */
export async function timedRun(system: System, body: unknown, onHeaders?: () => void, timeoutMs = REQUEST_TIMEOUT_MS): Promise<TimedRun> {
  const t0 = performance.now();
  const since = () => performance.now() - t0;
  const res = await fetch(`${system.apiUrl}/v1/agents/heroku`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${system.apiKey}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const headersMs = since();
  onHeaders?.();
  const frames: TimedFrame[] = [];
  await readStream(res, {
    onFrame: (frame) => {
      const at = since();
      const message = frame.event === 'message' ? JSON.parse(frame.data) : undefined;
      frames.push({ frame, at, object: message?.object, content: message?.choices?.[0]?.message?.content ?? undefined });
    },
  });
  return { status: res.status, runId: res.headers.get('agent-run-id') ?? '', headersMs, totalMs: since(), frames };
}

/** A run that streamed its events and ended with `done` and no `error` frame. */
export function completed(run: TimedRun | undefined): run is TimedRun {
  const events = run?.frames.map((f) => f.frame.event) ?? [];
  return run?.status === 200 && events.at(-1) === 'done' && !events.includes('error');
}

export const firstEventMs = (run: TimedRun): number => run.frames.find((f) => f.frame.id === '0')?.at ?? NaN;

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export interface Stat {
  p50: number;
  p95: number;
  n: number;
}
export const stat = (values: number[]): Stat => ({ p50: percentile(values, 50), p95: percentile(values, 95), n: values.length });

/** Runs `once` up to `count` times one after the other, or until `budgetMs` is spent. */
export async function sequentially<T>(count: number, budgetMs: number, once: () => Promise<T | undefined>): Promise<{ ok: T[]; failed: number }> {
  const deadline = performance.now() + budgetMs;
  const ok: T[] = [];
  let failed = 0;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const result = await once().catch(() => undefined);
    if (result === undefined) failed++;
    else ok.push(result);
  }
  return { ok, failed };
}

/** Runs `once` `count` times, `inFlight` at a time, until `budgetMs` is spent; throughput over the wall time. */
export async function concurrently<T>(count: number, inFlight: number, budgetMs: number, once: () => Promise<T | undefined>) {
  const deadline = performance.now() + budgetMs;
  const ok: T[] = [];
  let started = 0;
  let failed = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (started < count && performance.now() < deadline) {
      started++;
      const result = await once().catch(() => undefined);
      if (result === undefined) failed++;
      else ok.push(result);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const wallMs = performance.now() - t0;
  return { ok, failed, wallMs, perSecond: ok.length / (wallMs / 1000) };
}

export const SIZES = {
  warmupRuns: 5,
  firstEventRuns: 30,
  stepRuns: 3,
  stepsPerRun: 20,
  loadRuns: 200,
  loadInFlight: 20,
  growthSteps: 100,
  growthOutputBytes: 2048,
  rssOpenRuns: [100, 500],
  rssModelDelayMs: 5_000,
  burstRuns: 200,
  burstModelDelayMs: 3_000,
};
export const BUDGET_MS = { warmup: 15_000, firstEvent: 30_000, steps: 45_000, load: 60_000, go: 60_000 };

export interface LatencyFigures {
  firstEvent: Stat;
  headers: Stat;
  step: Stat;
  toolPart: Stat;
  modelPart: Stat;
  load: { perSecond: number; run: Stat; failed: number };
  failed: { firstEvent: number; steps: number };
}

/** First event, agent steps and throughput at 20 concurrent runs: the rows every system gets. */
export async function latency(system: System): Promise<LatencyFigures> {
  system.model.setHandler(scriptedAgent);
  const hello = request('Hello, bench!');
  await sequentially(SIZES.warmupRuns, BUDGET_MS.warmup, () => timedRun(system, hello));
  const first = await sequentially(SIZES.firstEventRuns, BUDGET_MS.firstEvent, async () => {
    const run = await timedRun(system, hello);
    return completed(run) ? run : undefined;
  });

  const N = SIZES.stepsPerRun;
  system.model.setHandler(stepsThenStop(N));
  const step: number[] = [];
  const toolPart: number[] = [];
  const modelPart: number[] = [];
  const steps = await sequentially(SIZES.stepRuns, BUDGET_MS.steps, async () => {
    const run = await timedRun(system, request('steps', [dynoTool(N)]));
    const chats = run.frames.filter((f) => f.object === 'chat.completion');
    const tools = run.frames.filter((f) => f.object === 'tool.completion');
    const ran = tools.every((t) => t.content === "Tool 'dyno_run_command' returned result: ok");
    if (!completed(run) || chats.length !== N + 1 || tools.length !== N || !ran) return undefined;
    for (let k = 0; k < N; k++) {
      step.push(chats[k + 1]!.at - chats[k]!.at);
      toolPart.push(tools[k]!.at - chats[k]!.at);
      modelPart.push(chats[k + 1]!.at - tools[k]!.at);
    }
    return run;
  });

  system.model.setHandler(scriptedAgent);
  const load = await concurrently(SIZES.loadRuns, SIZES.loadInFlight, BUDGET_MS.load, async () => {
    const run = await timedRun(system, request('CALL dyno_run_command {}', [dynoTool(1)]));
    const answered = run.frames.some((f) => f.content === "Done: Tool 'dyno_run_command' returned result: ok");
    return completed(run) && answered ? run.totalMs : undefined;
  });
  return {
    firstEvent: stat(first.ok.map(firstEventMs)),
    headers: stat(first.ok.map((r) => r.headersMs)),
    step: stat(step),
    toolPart: stat(toolPart),
    modelPart: stat(modelPart),
    load: { perSecond: load.perSecond, run: stat(load.ok), failed: load.failed },
    failed: { firstEvent: first.failed, steps: steps.failed },
  };
}

/** Bytes of every file under `dir` (0 when it does not exist). */
export function dirBytes(dir: string | undefined): number {
  if (!dir || !fs.existsSync(dir)) return 0;
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

export interface OpenRunsFigures {
  openRuns: number;
  /** Highest RSS of each process while the runs were open, in bytes. */
  peakRss: Record<string, number>;
  /** Time until every run had its response headers. */
  allOpenMs: number;
  completed: number;
  lost: number;
}

/** `count` runs at once, each answered by the model after `delayMs`; the processes' RSS is sampled meanwhile. */
export async function openRuns(system: System, count: number, delayMs: number): Promise<OpenRunsFigures> {
  system.model.setHandler(({ body }) => reply.text(`answered ${body.messages.length}`, { delayMs }));
  const t0 = performance.now();
  let open = 0;
  let allOpenMs = NaN;
  const { result: runs, peakRss } = await withPeakRss(system.pids, () =>
    Promise.all(
      Array.from({ length: count }, () =>
        timedRun(system, request('open'), () => {
          if (++open === count) allOpenMs = performance.now() - t0;
        }).catch(() => undefined),
      ),
    ),
  );
  const ok = runs.filter(completed).length;
  return { openRuns: count, peakRss, allOpenMs, completed: ok, lost: count - ok };
}

/** Runs `work` while reading the RSS of `pids` every 100 ms: the highest of each, by name. */
export async function withPeakRss<T>(pids: Record<string, number>, work: () => Promise<T>): Promise<{ result: T; peakRss: Record<string, number> }> {
  const peakRss: Record<string, number> = Object.fromEntries(Object.keys(pids).map((k) => [k, 0]));
  const sampler = setInterval(() => {
    for (const [name, pid] of Object.entries(pids)) peakRss[name] = Math.max(peakRss[name] ?? 0, rssBytes(pid) || 0);
  }, 100);
  try {
    return { result: await work(), peakRss };
  } finally {
    clearInterval(sampler);
  }
}

export interface BurstFigures {
  runs: number;
  firstEvent: Stat;
  run: Stat;
  lost: number;
  /** CPU time each process spent per run during the burst, in ms (`bench`: this process, the clients and the doubles). */
  cpuMsPerRun: Record<string, number>;
  /** Share of the machine's CPU (all cores) busy during the burst. */
  machineBusy: number;
}

/** Runs `start` while sampling the CPU time of `pids` (and of this process, as `bench`): figures per run of `count`. */
export async function withCpuPerRun<T>(
  pids: Record<string, number | undefined>,
  count: number,
  start: () => Promise<T>,
): Promise<{ result: T; cpuMsPerRun: Record<string, number>; machineBusy: number }> {
  const watched = Object.entries({ ...pids, bench: process.pid }).map(([name, pid]) => ({ name, pid: () => pid }));
  const sampler = new ProcessSampler(watched, 1000);
  sampler.start();
  const result = await start();
  sampler.stop();
  const cpuMsPerRun = Object.fromEntries(sampler.report().map((f) => [f.name, (f.cpuSeconds * 1000) / count]));
  return { result, cpuMsPerRun, machineBusy: sampler.machineBusy() };
}

/** `count` runs started at once; the model takes `delayMs` to ask for the tool, then answers at once. */
export async function burst(system: System, count: number, delayMs: number): Promise<BurstFigures> {
  system.model.setHandler(slowFirstAnswer(delayMs));
  const { result: runs, ...cpu } = await withCpuPerRun({ ...system.pids, temporal: system.temporalPid }, count, () =>
    Promise.all(Array.from({ length: count }, () => timedRun(system, request('CALL dyno_run_command {}', [dynoTool(1)])).catch(() => undefined))),
  );
  const ok = runs.filter(
    (run): run is TimedRun => completed(run) && run.frames.some((f) => f.content === "Done: Tool 'dyno_run_command' returned result: ok"),
  );
  return { runs: count, firstEvent: stat(ok.map(firstEventMs)), run: stat(ok.map((r) => r.totalMs)), lost: count - ok.length, ...cpu };
}

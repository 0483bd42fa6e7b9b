/**
 * The engine floor under the burst and open-runs rows of bench/measure.ts:
 * as many runs at once, the floor's first no-op taking as long as the model
 * double's first answer there. What these rows cost on the engine alone (its
 * server, one worker process, no HTTP, model, tool or API) is what no change
 * of ours can go below on the same machine.
 */
import { stat, withCpuPerRun, withPeakRss, type BurstFigures, type OpenRunsFigures } from '../measure';
import { startFloor, type Floor } from './floor';

async function withFloor<R>(address: string, workerOptions: Record<string, unknown>, use: (floor: Floor) => Promise<R>): Promise<R> {
  const floor = await startFloor(address, workerOptions);
  try {
    await floor.run(3); // warm: the worker's workflow bundle and connections
    return await use(floor);
  } finally {
    await floor.stop();
  }
}

/** `count` floor runs at once, each shaped like the burst's agent run: a slow first step (the model), then two more (tool, model). */
export function engineFloorBurst(
  address: string,
  workerOptions: Record<string, unknown>,
  temporalPid: number | undefined,
  count: number,
  delayMs: number,
): Promise<BurstFigures> {
  return withFloor(address, workerOptions, async (floor) => {
    const { result: runs, ...cpu } = await withCpuPerRun({ worker: floor.workerPid, temporal: temporalPid }, count, () =>
      Promise.all(Array.from({ length: count }, () => floor.run(3, delayMs).catch(() => undefined))),
    );
    const ok = runs.filter((r) => r !== undefined);
    return { runs: count, firstEvent: stat(ok.map((r) => r.events[0]!)), run: stat(ok.map((r) => r.doneMs)), lost: count - ok.length, ...cpu };
  });
}

/** `count` floor runs open at once, each waiting `delayMs` in its first step: the peak RSS of the floor's worker meanwhile. */
export function engineFloorOpenRuns(
  address: string,
  workerOptions: Record<string, unknown>,
  count: number,
  delayMs: number,
): Promise<OpenRunsFigures> {
  return withFloor(address, workerOptions, async (floor) => {
    const { result: runs, peakRss } = await withPeakRss({ worker: floor.workerPid }, () =>
      Promise.all(Array.from({ length: count }, () => floor.run(1, delayMs).catch(() => undefined))),
    );
    const completed = runs.filter((r) => r !== undefined).length;
    // The floor's client learns a run is open only with its first event: no "all open after" figure.
    return { openRuns: count, peakRss, allOpenMs: NaN, completed, lost: count - completed };
  });
}

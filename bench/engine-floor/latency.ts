/**
 * The engine floor's rows, shaped like the HTTP systems' (bench/measure.ts):
 * an agent step is two floor steps (in place of a model call and a tool
 * call), a run under load is three (model, tool, model), and the first event
 * is the first floor step's.
 */
import { BUDGET_MS, concurrently, sequentially, SIZES, stat, type LatencyFigures } from '../measure';
import { startFloor } from './floor';

export async function engineFloorLatency(address: string, workerOptions: Record<string, unknown> = {}): Promise<LatencyFigures> {
  const floor = await startFloor(address, workerOptions);
  try {
    await sequentially(SIZES.warmupRuns, BUDGET_MS.warmup, () => floor.run(1));
    const first = await sequentially(SIZES.firstEventRuns, BUDGET_MS.firstEvent, () => floor.run(1));
    const N = SIZES.stepsPerRun;
    const step: number[] = [];
    const toolPart: number[] = [];
    const modelPart: number[] = [];
    const steps = await sequentially(SIZES.stepRuns, BUDGET_MS.steps, async () => {
      const { events } = await floor.run(2 * N + 1);
      for (let k = 0; k < N; k++) {
        step.push(events[2 * k + 2]! - events[2 * k]!);
        toolPart.push(events[2 * k + 1]! - events[2 * k]!);
        modelPart.push(events[2 * k + 2]! - events[2 * k + 1]!);
      }
      return events;
    });
    const load = await concurrently(SIZES.loadRuns, SIZES.loadInFlight, BUDGET_MS.load, async () => (await floor.run(3)).doneMs);
    return {
      firstEvent: stat(first.ok.map((r) => r.events[0]!)),
      headers: stat([]),
      step: stat(step),
      toolPart: stat(toolPart),
      modelPart: stat(modelPart),
      load: { perSecond: load.perSecond, run: stat(load.ok), failed: load.failed },
      failed: { firstEvent: first.failed, steps: steps.failed },
    };
  } finally {
    await floor.stop();
  }
}

/**
 * The engine floor: the least a Temporal workflow of our shape can do per
 * step. Each step runs one no-op activity and makes one event available to a
 * stream poll (an Update that waits, without a timer, until there is an event
 * after the client's offset). Deterministic; bundled by bench/engine-floor/floor.ts.
 */
import { allHandlersFinished, condition, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

export interface FloorBatch {
  /** Events so far. */
  events: number;
  done: boolean;
}

/** Waits until there are events after `after` (an offset, -1 for none yet) or the run is done. */
export const floorPoll = defineUpdate<FloorBatch, [number]>('floorPoll');

const { noop } = proxyActivities<{ noop(delayMs?: number): Promise<void> }>({ startToCloseTimeout: '1 minute' });

/** `steps` no-op activities; the first takes `firstDelayMs` (a slow first model answer, as in the burst row). */
export async function engineFloor(steps: number, firstDelayMs = 0): Promise<void> {
  let events = 0;
  let done = false;
  setHandler(floorPoll, async (after) => {
    await condition(() => events > after + 1 || done);
    return { events, done };
  });
  for (let i = 0; i < steps; i++) {
    await noop(i === 0 ? firstDelayMs : 0);
    events++;
  }
  done = true;
  await condition(allHandlersFinished);
}

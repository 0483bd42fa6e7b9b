/**
 * Runs the engine floor (./workflow.ts) on a Temporal server: its worker as a
 * process of its own (./worker.ts), as durable-agents' worker is, and a
 * client in this process that starts each run with its first stream poll
 * (update-with-start) and polls again after every event, as the API does for
 * a streaming client. No HTTP, no model, no tool: what is left is the
 * engine's own cost of a step.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Client, Connection, WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { ServiceProcess } from '../../test/support/stack';
import { engineFloor, floorPoll, type FloorBatch } from './workflow';

const TASK_QUEUE = 'bench-engine-floor';

export interface Floor {
  /** One run of `steps` steps (the first taking `firstDelayMs`): when each event arrived, in ms since the start, then when the run was done. */
  run(steps: number, firstDelayMs?: number): Promise<{ events: number[]; doneMs: number }>;
  /** The worker's process id (for RSS and CPU). */
  workerPid: number;
  stop(): Promise<void>;
}

export async function startFloor(address: string, workerOptions: Record<string, unknown> = {}): Promise<Floor> {
  const worker = new ServiceProcess(
    'floor worker',
    'bench/engine-floor/worker.ts',
    () => ({
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: address,
      FLOOR_TASK_QUEUE: TASK_QUEUE,
      FLOOR_WORKER_OPTIONS: JSON.stringify(workerOptions),
    }),
    /floor worker: polling/,
  );
  await worker.start();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });

  const run = async (steps: number, firstDelayMs = 0) => {
    const t0 = performance.now();
    const events: number[] = [];
    const record = (batch: FloorBatch) => {
      while (events.length < batch.events) events.push(performance.now() - t0);
    };
    const start = new WithStartWorkflowOperation(engineFloor, {
      workflowId: `engine-floor-${randomUUID()}`,
      taskQueue: TASK_QUEUE,
      args: [steps, firstDelayMs],
      workflowIdConflictPolicy: 'FAIL',
    });
    let batch = await client.workflow.executeUpdateWithStart(floorPoll, { args: [-1], startWorkflowOperation: start });
    const handle = await start.workflowHandle();
    record(batch);
    while (batch.events < steps) {
      try {
        batch = await handle.executeUpdate(floorPoll, { args: [batch.events - 1] });
      } catch (err) {
        // The run may close while a poll is on its way (the last no-op takes no time): then it has every event.
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        await handle.result();
        batch = { events: steps, done: true };
      }
      record(batch);
    }
    return { events, doneMs: performance.now() - t0 };
  };

  return {
    run,
    workerPid: worker.child!.pid!,
    stop: async () => {
      await connection.close();
      await worker.kill('SIGTERM');
    },
  };
}

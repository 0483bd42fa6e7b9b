/**
 * Growth: one run of many steps, each tool call printing 2 KB, so what a step
 * costs can be compared early and late in the run. Time per step is read
 * from the stream; what a step sends to Temporal is read from the run's
 * history afterwards (every execution, across continue-as-new): the encoded
 * size of the history events between one tool call's scheduling and the
 * next. Payloads kept out of history (the payload store) are counted apart.
 */
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { workflowIdFor } from '../common/run-ids';
import { completed, dirBytes, dynoTool, percentile, request, SIZES, stepsThenStop, timedRun } from './measure';
import type { System } from './systems';

export interface GrowthFigures {
  steps: number;
  /** p50 of the first and the last ten steps' times, ms. */
  stepMs: { first: number; last: number };
  /** p50 of the history bytes of the first and the last ten steps. */
  historyBytesPerStep: { first: number; last: number; mean: number };
  executions: number;
  payloadStoreBytes: number;
}

const { HistoryEvent } = temporal.api.history.v1;

export async function growth(system: System): Promise<GrowthFigures | undefined> {
  if (!system.temporal) throw new Error('the growth row needs a system whose Temporal server the bench started');
  const steps = SIZES.growthSteps;
  const storeBefore = dirBytes(system.payloadDir);
  system.model.setHandler(stepsThenStop(steps));
  const cmd = `head -c ${SIZES.growthOutputBytes} /dev/zero | tr '\\0' x`;
  const run = await timedRun(system, request('growth', [dynoTool(steps, cmd)]));
  const chats = run.frames.filter((f) => f.object === 'chat.completion');
  if (!completed(run) || chats.length !== steps + 1) return undefined;
  const stepMs = chats.slice(1).map((c, k) => c.at - chats[k]!.at);

  // A page of a long run's history may be larger than gRPC's default 4 MB (before conversations went by reference it was).
  const connection = await Connection.connect({
    address: system.temporal.address,
    channelArgs: { 'grpc.max_receive_message_length': 256 * 2 ** 20 },
  });
  try {
    const perStep = await historyBytesPerStep(new Client({ connection }), workflowIdFor(run.runId));
    return {
      steps,
      stepMs: { first: percentile(stepMs.slice(0, 10), 50), last: percentile(stepMs.slice(-10), 50) },
      historyBytesPerStep: {
        first: percentile(perStep.bytes.slice(0, 10), 50),
        last: percentile(perStep.bytes.slice(-10), 50),
        mean: perStep.bytes.reduce((a, b) => a + b, 0) / perStep.bytes.length,
      },
      executions: perStep.executions,
      payloadStoreBytes: dirBytes(system.payloadDir) - storeBefore,
    };
  } finally {
    await connection.close();
  }
}

/** Encoded history bytes per step of a run, a step starting where a tool call is scheduled. */
async function historyBytesPerStep(client: Client, workflowId: string): Promise<{ bytes: number[]; executions: number }> {
  const executions: { runId: string; start: number }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    executions.push({ runId: w.runId, start: w.startTime.getTime() });
  }
  executions.sort((a, b) => a.start - b.start);
  const bytes: number[] = [];
  let current = -1;
  for (const { runId } of executions) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    for (const event of history.events ?? []) {
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'runTool') bytes[++current] = 0;
      if (current >= 0) bytes[current]! += HistoryEvent.encode(event).finish().length;
    }
  }
  return { bytes, executions: executions.length };
}

/**
 * Runs as the crash tests drive them: requests of dyno steps the scripted model
 * agent calls, streams followed in the background, a model call held for as
 * long as a test needs, and what Temporal says about who ran which activity.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { scriptedAgent, type ModelHandler, type ModelServer } from '../doubles/model-server';
import type { HerokuPlatformDouble } from '../doubles/heroku-platform';
import { getJson, post, readStream, type Frame, type Requester, type StreamResult } from './sse';
import type { ServiceProcess, Stack } from './stack';
import { until, within } from './wait';

/** A stream read in the background: its frames as they arrive, and how it ended (cleanly, or cut with an error). */
export function follow(res: Response) {
  const frames: Frame[] = [];
  const ended: Promise<{ result?: StreamResult; error?: unknown }> = readStream(res, { onFrame: (f) => frames.push(f) }).then(
    (result) => ({ result }),
    (error) => ({ error }),
  );
  return { runId: res.headers.get('agent-run-id')!, frames, ended };
}

export const messageFrames = (frames: Frame[]) => frames.filter((f) => f.event === 'message');
export const ids = (frames: Frame[]) => frames.map((f) => f.id ?? f.event);
export const contents = (frames: Frame[]) => messageFrames(frames).map((f) => JSON.parse(f.data).choices[0].message.content);

/** A tag in the user message, so a test finds its own requests among the model double's. */
export const newTag = () => `crash-${randomBytes(6).toString('hex')}`;
export const modelRequestsOf = (model: ModelServer, tag: string) => model.requests.filter((r) => String(r.body.messages[0]?.content).includes(tag));
/** Dyno creates of one run: TOOL_CALL_ID is `<run id>:<position>`. */
export const dynoCreatesOf = (heroku: HerokuPlatformDouble, runId: string) =>
  heroku.creates.filter((c) => String(c.body?.env?.TOOL_CALL_ID).startsWith(`${runId}:`));

export const dynoTool = (cmd: string) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'my-app',
    ttl_seconds: 120,
    max_calls: 5,
    tool_params: { cmd, description: 'runs a step', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
  },
});
export const STEP = dynoTool('echo "step $TOOL_ARG_N"');

/** A run of `calls` dyno steps asked for in one model message: 1 + calls + 1 events. */
export const steps = (tag: string, calls: number, tool = STEP) => ({
  model: 'm',
  messages: [{ role: 'user', content: [tag, ...Array.from({ length: calls }, (_, i) => `CALL dyno_run_command {"n":${i + 1}}`)].join('\n') }],
  tools: [tool],
});
export const stepResult = (n: number) => `Tool 'dyno_run_command' returned result: step ${n}`;

export const isFinalCall = (req: Parameters<ModelHandler>[0]) => req.body.messages.at(-1)?.role === 'tool';

/** The scripted agent, but the model call after the tool results is held until `release()`: it is in flight for as long as a test needs. */
export function holdFinalCall() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const handler: ModelHandler = async (req) => {
    if (isFinalCall(req)) await released;
    return scriptedAgent(req);
  };
  return { handler, release };
}

/** GET /v1/agents/runs/{id}/stream with Last-Event-ID: the response, as soon as its headers arrive. */
export const resumeStream = (api: Requester, runId: string, lastEventId: string) =>
  fetch(`${api.apiUrl}/v1/agents/runs/${runId}/stream`, {
    headers: { Authorization: `Bearer ${api.apiKey}`, 'Last-Event-ID': lastEventId },
  });

export const workflowOf = (client: Client, runId: string) => client.workflow.getHandle(`agent-run-${runId.slice('chatcmpl-'.length)}`);

/** The worker identity (the SDK's default, `<pid>@<host>`) of each started attempt of the run's activities. */
export async function activityStarts(client: Client, runId: string): Promise<Array<{ attempt: number; pid: number }>> {
  const history = await workflowOf(client, runId).fetchHistory();
  return history
    .events!.filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => ({
      attempt: e.activityTaskStartedEventAttributes!.attempt!,
      pid: Number(e.activityTaskStartedEventAttributes!.identity!.split('@')[0]),
    }));
}

/** The one activity the run is waiting for, with the pid of the worker running it. */
export async function pendingActivityWorkerPid(client: Client, runId: string): Promise<number | undefined> {
  const { raw } = await workflowOf(client, runId).describe();
  const identity = raw.pendingActivities?.[0]?.lastWorkerIdentity;
  return identity ? Number(identity.split('@')[0]) : undefined;
}

export const alive = (p: ServiceProcess) => p.child !== undefined && p.child.exitCode === null && p.child.signalCode === null;

/**
 * An API process dies mid-stream, end to end: a run of three dyno steps is
 * posted through `via`, the API process `killed` is SIGKILLed after four
 * events (the last model call held meanwhile), and the client resumes with
 * Last-Event-ID through `resumeVia` (after `whileDown`): every event arrives
 * exactly once, nothing is called or run again, and the run completes.
 */
export async function streamSurvivesApiKill(
  stack: Stack,
  o: { via: Requester; killed: ServiceProcess; resumeVia: Requester; whileDown?: () => Promise<void> },
): Promise<void> {
  const tag = newTag();
  const finalCall = holdFinalCall();
  stack.model.setHandler(finalCall.handler);
  const first = follow(await post(o.via, steps(tag, 3)));

  await until(
    () => messageFrames(first.frames).length === 4 && modelRequestsOf(stack.model, tag).length === 2,
    'four events and the last model call',
  );
  await o.killed.kill('SIGKILL');
  const cut = await first.ended;
  assert.ok(cut.error, 'the stream was cut');
  assert.deepEqual(ids(first.frames), ['0', '1', '2', '3']);
  await o.whileDown?.();

  // Resumed while the run is still going: the rest arrives live.
  const rest = follow(await resumeStream(o.resumeVia, first.runId, '3'));
  finalCall.release();
  const { error } = await within(rest.ended, 'the resumed stream to end', 60_000);
  assert.equal(error, undefined);
  assert.deepEqual(ids(rest.frames), ['4', 'done']);
  assert.deepEqual(
    [...contents(first.frames), ...contents(rest.frames)],
    [null, stepResult(1), stepResult(2), stepResult(3), `Done: ${[1, 2, 3].map(stepResult).join('\n')}`],
  );
  assert.equal(modelRequestsOf(stack.model, tag).length, 2);
  assert.equal(dynoCreatesOf(stack.heroku, first.runId).length, 3);
  const status = (await getJson(o.resumeVia, `/v1/agents/runs/${first.runId}`)).body;
  assert.equal(status.status, 'completed');
  assert.equal(status.events, 5);
}

/**
 * A worker dies while it runs a side-effecting tool, end to end: a run whose
 * one dyno command sleeps is posted through `via`; once the dyno runs,
 * `killWorker(runId)` SIGKILLs the worker running it (and may start another).
 * After the heartbeat timeout the model is told the outcome is unknown: the
 * command ran once, its dyno ended with the worker's connection, and the run
 * completes. Resolves with the run id.
 */
export async function sideEffectNotRepeatedAfterWorkerKill(
  stack: Stack,
  o: { via: Requester; killWorker: (runId: string) => Promise<void> },
): Promise<string> {
  const tag = newTag();
  const stream = follow(await post(o.via, steps(tag, 1, dynoTool('sleep 30; echo slept'))));

  await until(() => dynoCreatesOf(stack.heroku, stream.runId).length === 1 && stack.heroku.running() === 1, 'the dyno to run');
  await o.killWorker(stream.runId);

  // The heartbeat timeout (15 s) tells Temporal the worker is gone.
  const { error } = await within(stream.ended, 'the stream to end', 90_000);
  assert.equal(error, undefined);
  assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
  const unknown =
    "Tool 'dyno_run_command' returned result: Error: the outcome of this 'dyno_run_command' call is unknown " +
    '(the worker running it stopped responding); it was not retried because it may have side effects.';
  assert.deepEqual(contents(stream.frames), [null, unknown, `Done: ${unknown}`]);

  assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 1, 'the side-effecting tool ran once');
  const requests = modelRequestsOf(stack.model, tag);
  assert.equal(requests.length, 2);
  assert.equal(requests[1]!.body.messages.at(-1).content, unknown);
  // The dyno did not outlive its worker: it was attached, so the platform ended it when the worker's connection
  // dropped (and its time_to_live bounds it anyway). That is Heroku's doing; the worker's part is asking for both.
  const [create] = dynoCreatesOf(stack.heroku, stream.runId);
  assert.deepEqual([create!.body.attach, create!.body.time_to_live], [true, 120]);
  assert.equal(stack.heroku.dynos().find((d) => d.env.TOOL_CALL_ID === create!.body.env.TOOL_CALL_ID)?.endedBy, 'hangup');
  assert.equal((await getJson(o.via, `/v1/agents/runs/${stream.runId}`)).body.status, 'completed');
  return stream.runId;
}

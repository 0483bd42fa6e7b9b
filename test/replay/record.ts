/**
 * Records the workflow histories that test/replay/replay.test.ts replays:
 * representative runs on the full test stack (Temporal dev server, worker, API,
 * model and Heroku doubles), each saved as Temporal's JSON history under
 * test/replay/histories/<scenario>.json (<scenario>-N.json for each execution
 * of a run that continued as new). Re-record only on purpose, with the
 * workflow code of the commit whose behaviour the histories should pin, and
 * rename the previous files first (e.g. v1-tool-call.json) while runs of the
 * older code may still be in flight: every file there is replayed.
 *
 *   npx tsx test/replay/record.ts [scenario ...]   (default: every scenario)
 *
 * The dev server suggests continue-as-new after a few dozen events, so one
 * scenario crosses that boundary in seconds. Failures lose their stack traces
 * (they carry the recording machine's paths), and each file is checked before
 * it is written: no secret of the stack and no claim-checked (externally
 * stored) payload may be in it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { reply, scriptedAgent, type ModelHandler } from '../doubles/model-server';
import { executionHistories, historyAsText, STORED_PAYLOAD_REFERENCE } from '../support/history';
import { getJson, post, readStream, runAgent } from '../support/sse';
import { startStack, type Stack } from '../support/stack';
import { sleep, until } from '../support/wait';

const OUT_DIR = path.join(__dirname, 'histories');
/** Low enough that a run of a few steps continues-as-new; the other scenarios stay below it. */
const SUGGEST_CONTINUE_AS_NEW_AT = 60;

const dynoTool = (cmd: string, maxCalls = 3) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'replay-app',
    max_calls: maxCalls,
    tool_params: { cmd, description: 'Runs a command', parameters: { type: 'object', properties: { who: { type: 'string' } } } },
  },
});
const ask = (content: string, tools: unknown[] = []) => ({
  model: 'replay-model',
  messages: [{ role: 'user', content }],
  ...(tools.length ? { tools } : {}),
});

/** Calls the tool until the conversation holds `steps` model answers, then finishes. */
const stepsThenStop =
  (steps: number): ModelHandler =>
  ({ body }) => {
    const answered = body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
    return answered + 1 < steps
      ? reply.toolCalls([{ name: 'dyno_run_command', arguments: { who: `step ${answered}` } }])
      : reply.text(`finished after ${steps} model calls`);
  };

type Scenario = (stack: Stack) => Promise<string>;

/** Each scenario returns the run id of the run whose executions are recorded. */
const SCENARIOS: Record<string, Scenario> = {
  'tool-call': async (stack) => {
    stack.model.setHandler(scriptedAgent);
    const res = await runAgent(stack, ask('CALL dyno_run_command {"who":"replay"}', [dynoTool('echo "hello $TOOL_ARG_WHO"')]));
    return res.headers.get('agent-run-id')!;
  },
  'cancel-during-tool': async (stack) => {
    stack.model.setHandler(scriptedAgent);
    const res = await post(stack, ask('CALL dyno_run_command {}', [dynoTool('echo begun; sleep 100')]));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(() => stack.heroku.running() === 1, 'the dyno to run');
    await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    await reading;
    return runId;
  },
  'continue-as-new': async (stack) => {
    stack.model.setHandler(stepsThenStop(8));
    const res = await runAgent(stack, ask('go', [dynoTool('echo "$TOOL_ARG_WHO"', 20)]));
    return res.headers.get('agent-run-id')!;
  },
  'parallel-tools': async (stack) => {
    stack.model.setHandler(scriptedAgent);
    // Three calls of one reply run at once; the second one's dyno dies without an exit status.
    const calls = [1, 2, 3].map((n) => `CALL dyno_run_command {"who":"${n}"}`).join('\n');
    const res = await runAgent(
      stack,
      ask(calls, [dynoTool('if [ "$TOOL_ARG_WHO" = 2 ]; then kill -KILL $$ $BASHPID; fi; echo "hello $TOOL_ARG_WHO"')]),
    );
    return res.headers.get('agent-run-id')!;
  },
  'upstream-4xx': async (stack) => {
    stack.model.setHandler(() => reply.error(400, { error: { message: 'model does not exist', type: 'invalid_request_error' } }));
    const res = await runAgent(stack, ask('bad'));
    return res.headers.get('agent-run-id')!;
  },
  approval: async (stack) => {
    stack.model.setHandler(scriptedAgent);
    // Two calls of one reply wait for a reviewer together: one is approved, the other denied with a reason.
    const tool = dynoTool('echo "hello $TOOL_ARG_WHO"');
    const guarded = { ...tool, runtime_params: { ...tool.runtime_params, requires_approval: true, approval_timeout_seconds: 600 } };
    const res = await post(stack, ask('CALL dyno_run_command {"who":"1"}\nCALL dyno_run_command {"who":"2"}', [guarded]));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    const pending = async () => (await getJson(stack, `/v1/agents/runs/${runId}`)).body.pending_approvals as { tool_call_id: string }[];
    await until(async () => (await pending()).length === 2, 'two pending approvals');
    const [first, second] = await pending();
    const decide = (id: string, body: unknown) =>
      getJson(stack, `/v1/agents/runs/${runId}/approvals/${id}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    await decide(first!.tool_call_id, { decision: 'approve' });
    await decide(second!.tool_call_id, { decision: 'deny', reason: 'not now' });
    await reading;
    return runId;
  },
  'budget-stop': async (stack) => {
    stack.model.setHandler(scriptedAgent);
    // The model would call the tool for ever; max_total_tokens ends the run after its first step.
    const res = await runAgent(stack, {
      ...ask('LOOP dyno_run_command {"who":"again"}', [dynoTool('echo "$TOOL_ARG_WHO"', 20)]),
      max_total_tokens: 1,
    });
    return res.headers.get('agent-run-id')!;
  },
  'idempotent-reattach': async (stack) => {
    stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: 1_500 }) as never);
    const headers = { 'Idempotency-Key': 'replay-key' };
    const first = post(stack, ask('once only'), headers).then(readStream);
    await sleep(500);
    const second = await runAgent(stack, ask('once only'), headers);
    await first;
    return second.headers.get('agent-run-id')!;
  },
};

/** Failures' stack traces name the recording machine's paths; replay does not read them. */
function withoutStackTraces(history: unknown): unknown {
  return JSON.parse(JSON.stringify(history), (key, value: unknown) => (key === 'stackTrace' ? '' : value));
}

/** Resolves once the run's last execution has closed (its history is then complete). */
async function closed(stack: Stack, workflowId: string): Promise<void> {
  await until(async () => (await stack.client.workflow.getHandle(workflowId).describe()).status.name !== 'RUNNING', `${workflowId} to close`);
}

async function main(): Promise<void> {
  const stack = await startStack({ dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_CONTINUE_AS_NEW_AT } });
  try {
    fs.mkdirSync(OUT_DIR, { recursive: true });
    const only = process.argv.slice(2);
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      if (only.length > 0 && !only.includes(name)) continue;
      // Today's recording of a scenario replaces its last one; older ones kept under another name stay.
      for (const file of fs.readdirSync(OUT_DIR)) if (new RegExp(`^${name}(-\\d+)?\\.json$`).test(file)) fs.rmSync(path.join(OUT_DIR, file));
      const runId = await scenario(stack);
      const workflowId = `agent-run-${runId.slice('chatcmpl-'.length)}`;
      await closed(stack, workflowId);
      const runs = await executionHistories(stack.client, workflowId);
      for (const [i, history] of runs.entries()) {
        const json = JSON.stringify(withoutStackTraces(JSON.parse(historyToJSON(history))), null, 1);
        // Searched with payloads decoded: in the JSON they are base64.
        const text = historyAsText(history);
        if (stack.secrets.some((secret) => text.includes(secret))) throw new Error(`${name}: the history holds a secret of the stack`);
        // Replay has no payload store: the histories must carry the payloads themselves.
        if (text.includes(STORED_PAYLOAD_REFERENCE)) throw new Error(`${name}: the history holds a claim-checked payload`);
        const file = path.join(OUT_DIR, runs.length > 1 ? `${name}-${i + 1}.json` : `${name}.json`);
        fs.writeFileSync(file, `${json}\n`);
        console.log(`${path.relative(process.cwd(), file)}: ${history.events?.length ?? 0} events`);
      }
    }
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

/**
 * The model-call activity against the strict model double over HTTP (the real
 * `openai` client, Temporal's mock activity context): what reaches the model
 * is a conversation an OpenAI-compatible API accepts, and each upstream
 * failure is classified for Temporal's retries as the README promises.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createModelCaller } from '../../activities/call-model';
import { ConversationCache } from '../../activities/conversation-cache';
import type { FunctionDefinition, ModelCallInput, ModelCallResult } from '../../contract/run-contract';
import type { ChatMessage } from '../../contract/wire';
import { FUNCTION_NAME, reply, scriptedAgent, startModelServer, type ModelServer } from '../doubles/model-server';

let model: ModelServer;
let callModel: (input: ModelCallInput) => Promise<ModelCallResult>;

before(async () => {
  model = await startModelServer();
  callModel = createModelCaller({ url: model.url, key: model.key }, new ConversationCache(2 ** 20));
});
after(() => model.close());

const fn = (name: string): FunctionDefinition => ({ name, description: `the ${name} tool`, parameters: { type: 'object' } });
const input = (messages: ChatMessage[], tools: FunctionDefinition[] = []): ModelCallInput => ({ model: 'm', messages, tools, params: {} });
/** Failed attempts are what these tests are about: the SDK's warning for each is noise here. */
const quiet = new DefaultLogger('ERROR');
const call = (i: ModelCallInput) =>
  new MockActivityEnvironment(undefined, { logger: quiet }).run<[ModelCallInput], ModelCallResult, typeof callModel>(callModel, i);

/** The failure the activity threw, for Temporal's retry decision. */
async function failure(i: ModelCallInput): Promise<ApplicationFailure> {
  const err = await call(i).then(
    () => assert.fail('the call should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, String(err));
  return err;
}

describe('MCP tool names', () => {
  test('reach the model as valid function names and come back as <namespace>/<tool>', async () => {
    model.setHandler(scriptedAgent);
    const first = await call(input([{ role: 'user', content: 'CALL notes__echo {"text":"hi"}' }], [fn('notes/echo'), fn('dyno_run_command')]));
    assert.deepEqual(model.refused, []);
    const sent = model.requests.at(-1)!.body;
    assert.deepEqual(
      sent.tools.map((t: any) => t.function.name),
      ['notes__echo', 'dyno_run_command'],
    );
    for (const t of sent.tools) assert.match(t.function.name, FUNCTION_NAME);
    const [toolCall] = first.message.tool_calls!;
    assert.equal(toolCall!.function.name, 'notes/echo');

    // The next turn carries the call and its result under the client's names: they go out valid again.
    const second = await call(
      input(
        [
          { role: 'user', content: 'CALL notes__echo {"text":"hi"}' },
          { role: 'assistant', content: null, tool_calls: first.message.tool_calls },
          { role: 'tool', tool_call_id: toolCall!.id, name: 'notes/echo', content: "Tool 'notes/echo' returned result: hi" },
        ],
        [fn('notes/echo'), fn('dyno_run_command')],
      ),
    );
    assert.deepEqual(model.refused, []);
    assert.equal(second.message.content, "Done: Tool 'notes/echo' returned result: hi");
    const turn = model.requests.at(-1)!.body.messages;
    assert.equal(turn[1].tool_calls[0].function.name, 'notes__echo');
    assert.equal(turn[2].name, 'notes__echo');
  });
});

describe('upstream failures, as Temporal will retry them', () => {
  const ask = input([{ role: 'user', content: 'hi' }]);

  for (const status of [408, 409, 429, 500, 503]) {
    test(`${status} is retryable, and says what the upstream answered`, async () => {
      model.setHandler(() => reply.error(status));
      const err = await failure(ask);
      assert.equal(err.nonRetryable, false);
      assert.equal(err.type, 'UpstreamError');
      assert.equal(err.message, `the upstream model API (${model.url}/v1/chat/completions) answered ${status}: Simulated error ${status}`);
      assert.deepEqual(err.details, [{ status }]);
    });
  }

  test('another 4xx is final', async () => {
    model.setHandler(() => reply.error(404, { error: { message: 'no such model' } }));
    const err = await failure(ask);
    assert.equal(err.nonRetryable, true);
    assert.equal(err.message, `the upstream model API (${model.url}/v1/chat/completions) answered 404: no such model`);
  });

  test('a dropped connection is retryable and says it could not be reached', async () => {
    model.setHandler(() => reply.drop());
    const err = await failure(ask);
    assert.equal(err.nonRetryable, false);
    assert.equal(
      err.message,
      `the upstream model API (${model.url}/v1/chat/completions) could not be reached or gave an unreadable answer: Connection error.`,
    );
    assert.deepEqual(err.details, [{ status: 502 }]);
  });

  test('Retry-After sets the next attempt, in seconds or as a date, capped at 2 minutes', async () => {
    const retryAfter = async (value: string) => {
      model.setHandler(() => reply.error(429, undefined, { 'retry-after': value }));
      return (await failure(ask)).nextRetryDelay;
    };
    assert.equal(await retryAfter('3'), '3000 ms');
    assert.equal(await retryAfter('100000'), '120000 ms');
    const inTenSeconds = await retryAfter(new Date(Date.now() + 10_000).toUTCString());
    const ms = Number(/^(\d+) ms$/.exec(String(inTenSeconds))?.[1]);
    assert.ok(ms > 5_000 && ms <= 10_000, String(inTenSeconds));
    assert.equal(await retryAfter('next week'), undefined);
  });
});

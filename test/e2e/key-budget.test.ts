/**
 * The per-key daily token budget and the usage endpoint against a real
 * Temporal dev server (docs/api.md#b6-budgets): usage is counted from the
 * runs' durable totals in visibility, so it is enforced between the steps of
 * a run, refuses new runs of the key until the UTC day ends, and reads the
 * same from a restarted API.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { usageAnswer } from '../../api/response-schemas';
import { scriptedAgent } from '../doubles/model-server';
import { dynoTool, follow, ids, messageFrames, newTag } from '../support/runs';
import { getJson, post, type Requester } from '../support/sse';
import { OTHER_API_KEY, useStack } from '../support/stack';
import { until, within } from '../support/wait';

const BUDGET = 600;
const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
const stack = useStack({ apiEnv: { KEY_DAILY_TOKEN_BUDGET: String(BUDGET), AGENTS_ADMIN_KEYS: ADMIN_KEY, USAGE_MAX_DAYS: '31' } });
beforeEach(() => stack.model.setHandler(scriptedAgent));

const TEST_TIMEOUT = { timeout: 180_000 };
const today = () => new Date().toISOString().slice(0, 10);
const admin = (): Requester => ({ apiUrl: stack.apiUrl, apiKey: ADMIN_KEY });
const other = (): Requester => ({ apiUrl: stack.apiUrl, apiKey: OTHER_API_KEY });
const usage = async (who: Requester = stack, query = '') => getJson(who, `/v1/agents/usage${query}`);
const looping = () => ({
  model: 'm',
  messages: [{ role: 'user', content: `${newTag()}\nLOOP dyno_run_command {"n":1}` }],
  tools: [dynoTool('echo "step $TOOL_ARG_N"')],
});

describe('the daily token budget of a key', () => {
  let spent = 0;

  test('is enforced between steps: a run that would go on for ever ends with budget_exceeded', TEST_TIMEOUT, async () => {
    const stream = follow(await post(stack, looping()));
    const { error } = await within(stream.ended, 'the stream to end', 90_000);
    assert.equal(error, undefined);
    assert.equal(stream.frames.at(-2)?.event, 'error');
    const status = (await getJson(stack, `/v1/agents/runs/${stream.runId}`)).body;
    spent = status.usage.total_tokens;
    assert.ok(spent >= BUDGET, `the run stopped at ${spent} tokens, past the budget`);
    assert.ok(status.model_calls < 25, 'it stopped for the budget, not for MAX_MODEL_CALLS_PER_RUN');
    assert.deepEqual(JSON.parse(stream.frames.at(-2)!.data).error, {
      code: 429,
      type: 'budget_exceeded',
      message: `the API key's daily token budget of ${BUDGET} (KEY_DAILY_TOKEN_BUDGET) is used up for ${today()}: ${spent} tokens`,
    });
    // It stopped after the step that crossed the budget: the step before it was still under.
    const lastCompletion = messageFrames(stream.frames)
      .map((f) => JSON.parse(f.data))
      .filter((e) => e.object === 'chat.completion')
      .at(-1);
    assert.ok(spent - lastCompletion.usage.total_tokens < BUDGET);
    assert.equal(ids(stream.frames).at(-1), 'done');
  });

  test('usage is counted from the durable totals, per key and day, and an admin sees every key', TEST_TIMEOUT, async () => {
    await until(async () => (await usage()).body.total_tokens === spent, 'the usage to show the run', 30_000);
    const mine = await usage();
    usageAnswer.parse(mine.body); // the shape docs/openapi.json documents
    assert.deepEqual(mine.body, {
      from: today(),
      to: today(),
      data: [{ day: today(), api_key_id: mine.body.data[0].api_key_id, runs: 1, total_tokens: spent }],
      total_tokens: spent,
      daily_token_budget: BUDGET,
    });
    assert.match(String(mine.body.data[0]?.api_key_id), /^key_[0-9a-f]+$/);

    // Another key has its own budget: its run starts and completes.
    const res = await post(other(), { model: 'm', messages: [{ role: 'user', content: 'hello' }] });
    assert.equal(res.status, 200);
    const otherRun = follow(res);
    await within(otherRun.ended, 'the other key run', 60_000);
    const otherTokens = (await getJson(other(), `/v1/agents/runs/${otherRun.runId}`)).body.usage.total_tokens;
    await until(async () => (await usage(admin())).body.total_tokens === spent + otherTokens, 'the admin usage to show both keys', 30_000);
    const all = await usage(admin(), `?from=${today()}&to=${today()}`);
    assert.deepEqual(
      all.body.data.map((d: { total_tokens: number }) => d.total_tokens).sort((a: number, b: number) => a - b),
      [otherTokens, spent].sort((a, b) => a - b),
    );
    assert.equal((await usage(other())).body.total_tokens, otherTokens);
  });

  test('refuses the key new runs with a 429 naming it until the UTC day ends; the count survives an API restart', TEST_TIMEOUT, async () => {
    const refused = await post(stack, { model: 'm', messages: [{ role: 'user', content: 'one more' }] });
    assert.equal(refused.status, 429);
    const body = await refused.json();
    const midnight = Date.parse(`${today()}T00:00:00Z`) + 86_400_000;
    assert.deepEqual(body, {
      error: {
        code: 429,
        type: 'rate_limit_error',
        message: `this key's daily token budget of ${BUDGET} (KEY_DAILY_TOKEN_BUDGET) is used up for ${today()} (${spent} tokens); it renews at ${new Date(midnight).toISOString()}`,
      },
    });
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(Math.abs(retryAfter - (midnight - Date.now()) / 1000) < 30, `Retry-After ${retryAfter} runs to the end of the UTC day`);

    await stack.api.kill('SIGKILL');
    await stack.api.start();
    assert.equal((await usage()).body.total_tokens, spent);
    assert.equal((await post(stack, { model: 'm', messages: [{ role: 'user', content: 'still no' }] })).status, 429);
  });

  test('usage dates are validated with 400s naming the parameter', TEST_TIMEOUT, async () => {
    const cases: [string, string][] = [
      ['?from=2026-13-01', 'from must be a date as YYYY-MM-DD (a UTC day)'],
      ['?from=yesterday', 'from must be a date as YYYY-MM-DD (a UTC day)'],
      ['?from=2026-02-30', 'from must be a date as YYYY-MM-DD (a UTC day)'],
      ['?from=2026-01-01&to=2026-01-0', 'to must be a date as YYYY-MM-DD (a UTC day)'],
      ['?from=2026-01-02&to=2026-01-01', 'to must not be before from'],
      ['?from=2026-01-01&to=2026-03-01', 'from..to spans 60 days; at most 31 (USAGE_MAX_DAYS)'],
    ];
    for (const [query, message] of cases) {
      assert.deepEqual(await usage(stack, query), { status: 400, body: { error: { code: 400, type: 'invalid_request_error', message } } }, query);
    }
    assert.deepEqual((await usage(stack, '?from=2020-01-01&to=2020-01-31')).body.data, []);
  });
});

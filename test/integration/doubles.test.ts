// Proves the test doubles against the real clients: `openai` for the model
// server, `heroku-client` plus a verifying TLS connection for the platform.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import Heroku from 'heroku-client';
import OpenAI from 'openai';
import { reply, scriptedAgent, startModelServer } from '../doubles/model-server';
import { apiError, startHerokuPlatform } from '../doubles/heroku-platform';
import { until } from '../support/wait';

const tools: OpenAI.Chat.ChatCompletionTool[] = [{ type: 'function', function: { name: 'dyno_run_command', parameters: { type: 'object' } } }];

/** Attaches to a rendezvous URL and returns everything received until the server closes. */
function rendezvous(attachUrl: string, caFile: string): Promise<string> {
  const url = new URL(attachUrl);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: readFileSync(caFile) }, () => {
      socket.write(`${url.pathname.slice(1)}\r\n\u0004`);
    });
    let out = '';
    socket.setEncoding('utf8').on('data', (s) => {
      out += s;
    });
    socket.on('end', () => resolve(out)).on('error', reject);
  });
}

/** Starts a double's CLI as a child process and returns it with the JSON line it prints. */
async function startCli(file: string, args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'doubles', file), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const [line] = await Promise.race([
    lines.next().then((r) => [String(r.value)]),
    new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${file} exited ${code}`)))),
  ]);
  return { child, info: JSON.parse(line ?? '') };
}

test('model server: tool calls, errors, streaming and cancellation with the openai client', async (t) => {
  const model = await startModelServer({ key: 'sk-right' });
  t.after(() => model.close());
  const openai = new OpenAI({ baseURL: `${model.url}/v1`, apiKey: model.key, maxRetries: 0 });

  const call = await openai.chat.completions.create({
    model: 'claude-4-sonnet',
    tools,
    messages: [{ role: 'user', content: 'CALL dyno_run_command {"command":"echo hi"}\nCALL dyno_run_command {}' }],
  });
  assert.match(call.id, /^chatcmpl-/);
  assert.equal(call.model, 'claude-4-sonnet');
  assert.equal(call.choices[0]!.finish_reason, 'tool_calls');
  const calls = call.choices[0]!.message.tool_calls!;
  assert.equal(calls.length, 2);
  assert.match(calls[0]!.id, /^tooluse_/);
  assert.equal(calls[0]!.type === 'function' && calls[0]!.function.arguments, '{"command":"echo hi"}');
  assert.ok(call.usage!.total_tokens > 0);

  const done = await openai.chat.completions.create({
    model: 'm',
    tools,
    messages: [
      { role: 'user', content: 'CALL dyno_run_command {}' },
      call.choices[0]!.message,
      { role: 'tool', tool_call_id: calls[0]!.id, content: 'hi' },
      { role: 'tool', tool_call_id: calls[1]!.id, content: 'there' },
    ],
  });
  assert.equal(done.choices[0]!.message.content, 'Done: hi\nthere');
  assert.equal(model.requests.length, 2);

  const chunks = await openai.chat.completions.create({
    model: 'm',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'yo' }],
  });
  let streamed = '';
  for await (const c of chunks) streamed += c.choices[0]?.delta.content ?? '';
  assert.equal(streamed, 'Echo: yo');

  model.setHandler(({ attempt }) => (attempt === 1 ? reply.error(429, undefined, { 'retry-after': '1' }) : reply.text('second try')));
  const rateLimited = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
  assert.ok(rateLimited instanceof OpenAI.RateLimitError);
  assert.equal(rateLimited.headers.get('retry-after'), '1');
  const retried = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(retried.choices[0]!.message.content, 'second try');

  const wrongKey = new OpenAI({ baseURL: `${model.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
  const unauthorized = await wrongKey.chat.completions.create({ model: 'm', messages: [] }).catch((e) => e);
  assert.ok(unauthorized instanceof OpenAI.AuthenticationError);

  model.setHandler(() => reply.hang());
  const started = Date.now();
  const aborted = await openai.chat.completions
    .create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, { signal: AbortSignal.timeout(100) })
    .catch((e) => e);
  assert.ok(aborted instanceof OpenAI.APIUserAbortError);
  assert.ok(Date.now() - started < 10_000, `aborted after ${Date.now() - started} ms`);
  await until(() => model.requests.at(-1)!.abandonedAt !== undefined, 'the double to see the client go', 10_000);
});

test('model server: refuses with a 400 what an OpenAI-compatible API refuses, in its words', async (t) => {
  const model = await startModelServer({ key: 'sk-right' });
  t.after(() => model.close());
  const openai = new OpenAI({ baseURL: `${model.url}/v1`, apiKey: model.key, maxRetries: 0 });
  const refusal = async (body: Record<string, unknown>) => {
    const err = await openai.chat.completions.create({ model: 'm', ...body } as never).then(
      () => assert.fail('the request should have been refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    return { message: (err.error as any).message, param: (err.error as any).param };
  };
  const user = { role: 'user', content: 'x' };
  const asked = (...ids: string[]) => ({
    role: 'assistant',
    content: null,
    tool_calls: ids.map((id) => ({ id, type: 'function', function: { name: 'dyno_run_command', arguments: '{}' } })),
  });
  const answer = (id: string) => ({ role: 'tool', tool_call_id: id, content: 'ok' });

  assert.deepEqual(await refusal({ messages: [user], tools: [{ type: 'function', function: { name: 'notes/echo' } }] }), {
    message: "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
    param: 'tools[0].function.name',
  });
  assert.match(
    (await refusal({ messages: [user], tools: [{ type: 'function', function: { name: 'x'.repeat(65) } }] })).message,
    /string too long. Expected a string with maximum length 64, but got a string with length 65 instead/,
  );
  const badCall = { ...asked('a'), tool_calls: [{ id: 'a', type: 'function', function: { name: 'web/add', arguments: '{}' } }] };
  assert.equal((await refusal({ messages: [user, badCall, answer('a')] })).param, 'messages[1].tool_calls[0].function.name');
  assert.deepEqual(await refusal({ messages: [user, answer('a')] }), {
    message: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
    param: 'messages.[1].role',
  });
  assert.deepEqual(await refusal({ messages: [user, asked('a'), answer('b')] }), {
    message: "Invalid parameter: 'tool_call_id' of 'b' not found in 'tool_calls' of previous message.",
    param: 'messages.[2].tool_call_id',
  });
  // A call answered twice: the second answer follows no unanswered call.
  assert.equal((await refusal({ messages: [user, asked('a'), answer('a'), answer('a')] })).param, 'messages.[3].tool_call_id');
  for (const [messages, missing] of [
    [[user, asked('a', 'b'), answer('a'), user], 'b'],
    [[user, asked('a', 'b'), answer('b')], 'a'],
  ] as const) {
    assert.deepEqual(await refusal({ messages }), {
      message:
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
        `The following tool_call_ids did not have response messages: ${missing}`,
      param: 'messages.[1].role',
    });
  }
  assert.equal(model.refused.length, 8);
  assert.equal(model.requests.length, 0, 'no refused request reached the handler');

  // Answered in any order, then the conversation goes on: accepted.
  const ok = await openai.chat.completions.create({ model: 'm', messages: [user, asked('a', 'b'), answer('b'), answer('a'), user] as never });
  assert.equal(ok.choices[0]!.message.content, 'Echo: x');
});

test('scriptedAgent directives', () => {
  const ask = (messages: object[], withTools = true) =>
    scriptedAgent({ body: { model: 'm', messages, ...(withTools ? { tools } : {}) }, headers: {}, attempt: 1 });
  const user = (content: string) => ({ role: 'user', content });
  const tool = (content: string) => ({ role: 'tool', tool_call_id: 'x', content });

  assert.deepEqual(ask([user('hello')]), reply.text('Echo: hello'));
  assert.deepEqual(ask([user('CALL t {}')], false), reply.text('Echo: CALL t {}'));
  const bad = ask([user('CALL t {not json')]);
  assert.ok(bad.kind === 'completion' && bad.toolCalls![0]!.function.arguments === '{not json');
  assert.deepEqual(ask([user('CALL t {}'), { role: 'assistant' }, tool('a'), tool('b')]), reply.text('Done: a\nb'));
  const loop = ask([user('LOOP t {"n":1}'), { role: 'assistant' }, tool('a')]);
  assert.ok(loop.kind === 'completion' && loop.finishReason === 'tool_calls' && loop.toolCalls![0]!.function.name === 't');
});

test('heroku platform: heroku-client creates a dyno, rendezvous streams its output', async (t) => {
  const platform = await startHerokuPlatform({ token: 'right-token' });
  t.after(() => platform.close());
  const heroku = new Heroku({ token: 'right-token', host: platform.url });

  // heroku-client sends the version=3 Accept header itself; no headers needed.
  const dyno = await heroku.post('/apps/my-app/dynos', {
    body: {
      command: 'echo hi; echo "\uFFFF heroku-command-exit-status: $?"',
      attach: true,
      force_no_tty: true,
      size: 'standard-1X',
      type: 'run',
      time_to_live: 60,
      env: { FOO: 'bar' },
    },
  });
  assert.equal(dyno.state, 'starting');
  assert.match(dyno.name, /^run\.\d{4}$/);
  assert.match(dyno.attach_url, /^rendezvous:\/\/127\.0\.0\.1:\d+\/\w+$/);
  assert.equal(platform.creates[0]!.headers.accept, 'application/vnd.heroku+json; version=3');
  assert.match(String(platform.creates[0]!.headers.authorization), /^Basic /);

  const out = await rendezvous(dyno.attach_url, platform.caFile);
  assert.equal(out, 'rendezvous\r\nhi\n\uFFFF heroku-command-exit-status: 0\n');
  assert.equal((await heroku.get(`/apps/my-app/dynos/${dyno.name}`)).state, 'down');
  assert.equal(platform.running(), 0);
  assert.deepEqual(platform.dynos(), [{ app: 'my-app', name: dyno.name, state: 'down', env: { FOO: 'bar' }, endedBy: 'exit' }]);
  assert.deepEqual(
    platform.requests.map((r) => [r.method, r.path, r.status]),
    [
      ['POST', '/apps/my-app/dynos', 201],
      ['GET', `/apps/my-app/dynos/${dyno.name}`, 200],
    ],
  );
  // The secret works once only.
  assert.equal(await rendezvous(dyno.attach_url, platform.caFile), '');
});

test('heroku platform: API errors', async (t) => {
  const platform = await startHerokuPlatform({ token: 'right-token' });
  t.after(() => platform.close());
  const heroku = new Heroku({ token: 'right-token', host: platform.url });
  const create = (body: object, client = heroku, app = 'my-app') =>
    client.post(`/apps/${app}/dynos`, { body }).catch((e: any) => [e.statusCode, e.body.id]);

  const wrongToken = new Heroku({ token: 'wrong', host: platform.url });
  assert.deepEqual(await create({ command: 'true' }, wrongToken), [401, 'unauthorized']);
  // Basic auth: the user is empty (heroku-client) or the account's email; anyone else is refused, token or not.
  const asUser = (user: string) => new Heroku({ auth: `${user}:right-token`, host: platform.url } as never);
  assert.equal((await create({ command: 'true' }, asUser('test-account@example.com'))).state, 'starting');
  assert.deepEqual(await create({ command: 'true' }, asUser('someone-else@example.com')), [401, 'unauthorized']);
  assert.deepEqual(await create({ command: 'true' }, heroku, 'missing-app'), [404, 'not_found']);
  assert.deepEqual(await create({ command: 'true', time_to_live: 0 }), [422, 'invalid_params']);
  assert.deepEqual(await create({ command: 'true', env: { 'A-B': 'x' } }), [422, 'invalid_params']);
  assert.deepEqual(await create({}), [422, 'invalid_params']);

  platform.setCreateHandler(({ call }) => (call === 8 ? apiError(429, 'rate_limit', 'Slow down.') : undefined));
  assert.deepEqual(await create({ command: 'true' }), [429, 'rate_limit']);
  assert.equal((await create({ command: 'true' })).state, 'starting');
  assert.deepEqual(
    platform.creates.map((c) => c.status),
    [401, 201, 401, 404, 422, 422, 422, 429, 201],
  );
});

test('heroku platform: time_to_live and actions/stop kill the dyno without an exit marker', async (t) => {
  const platform = await startHerokuPlatform({ token: 'tok' });
  t.after(() => platform.close());
  const heroku = new Heroku({ token: 'tok', host: platform.url });
  const command = 'echo started; sleep 30; echo "\uFFFF heroku-command-exit-status: $?"';

  const ttl = await heroku.post('/apps/a/dynos', { body: { command, attach: true, time_to_live: 1 } });
  assert.equal(await rendezvous(ttl.attach_url, platform.caFile), 'rendezvous\r\nstarted\n');

  const stopped = await heroku.post('/apps/a/dynos', { body: { command, attach: true } });
  const output = rendezvous(stopped.attach_url, platform.caFile);
  await until(() => platform.running() === 1, 'the dyno to run', 10_000);
  assert.deepEqual(await heroku.post(`/apps/a/dynos/${stopped.name}/actions/stop`), {});
  assert.equal(await output, 'rendezvous\r\nstarted\n');
  assert.deepEqual(platform.stops, [{ app: 'a', dyno: stopped.name }]);
  assert.equal(platform.running(), 0);
  assert.deepEqual(
    platform.dynos().map((d) => [d.name, d.endedBy]),
    [
      [ttl.name, 'ttl'],
      [stopped.name, 'stop'],
    ],
  );

  // Without the platform's own time limit, only a stop or a hang-up ends the dyno.
  platform.setTimeToLiveEnforced(false);
  const lingering = await heroku.post('/apps/a/dynos', { body: { command, attach: true, time_to_live: 1 } });
  const lingeringOutput = rendezvous(lingering.attach_url, platform.caFile);
  await until(() => platform.running() === 1, 'the dyno to run', 10_000);
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal(platform.running(), 1, 'still running after its time_to_live');
  await heroku.post(`/apps/a/dynos/${lingering.name}/actions/stop`);
  assert.equal(await lingeringOutput, 'rendezvous\r\nstarted\n');
  assert.equal(platform.dynos().at(-1)!.endedBy, 'stop');
});

test('both doubles run as child processes', async (t) => {
  const [model, platform] = await Promise.all([startCli('model-server.ts', ['--key', 'k']), startCli('heroku-platform.ts', ['--token', 't'])]);
  t.after(() => {
    model.child.kill();
    platform.child.kill();
  });

  const openai = new OpenAI({ baseURL: `${model.info.url}/v1`, apiKey: 'k', maxRetries: 0 });
  const echo = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(echo.choices[0]!.message.content, 'Echo: hi');
  assert.equal((await (await fetch(`${model.info.url}/_double/requests`)).json()).length, 1);

  const heroku = new Heroku({ token: 't', host: platform.info.url });
  const dyno = await heroku.post('/apps/a/dynos', { body: { command: 'echo $DYNO', attach: true } });
  assert.equal(await rendezvous(dyno.attach_url, platform.info.caFile), `rendezvous\r\n${dyno.name}\n`);
  assert.equal((await (await fetch(`${platform.info.url}/_double/state`)).json()).creates.length, 1);

  const exitCodes = [model, platform].map(({ child }) => {
    child.kill('SIGTERM');
    return new Promise((resolve) => child.once('exit', resolve));
  });
  assert.deepEqual(await Promise.all(exitCodes), [0, 0]);
});

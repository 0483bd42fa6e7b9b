/**
 * POST /v1/agents/heroku end to end: a real Temporal server, the worker and the
 * API as processes, the real openai and heroku-client packages talking to the
 * test doubles over sockets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { reply, scriptedAgent } from '../doubles/model-server';
import { OTHER_API_KEY, useStack } from '../support/stack';
import { getJson, post, runAgent } from '../support/sse';
import { until } from '../support/wait';

const stack = useStack({ apiEnv: { MAX_MODEL_CALLS_PER_RUN: '4' } });

const dynoTool = (toolParams: Record<string, unknown> = {}, runtime: Record<string, unknown> = {}) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'my-app',
    tool_params: {
      cmd: 'echo hello && echo "who=$TOOL_ARG_WHO"',
      description: 'Greets someone on a one-off dyno',
      parameters: { type: 'object', properties: { who: { type: 'string' } }, required: ['who'] },
      ...toolParams,
    },
    ...runtime,
  },
});

const userAsks = (content: string, tools: unknown[] = [dynoTool()]) => ({
  model: 'claude-4-sonnet',
  messages: [{ role: 'user', content }],
  tools,
});

describe('a run with a tool call', () => {
  test('streams chat.completion, tool.completion, chat.completion, done, framed as Heroku does', async () => {
    const res = await runAgent(stack, {
      ...userAsks('CALL dyno_run_command {"who":"world"}'),
      temperature: 0.2,
      top_p: 0.9,
      stop: ['STOP'],
      max_tokens_per_inference_request: 512,
      metadata: { ignored: true },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const runId = res.headers.get('agent-run-id')!;
    assert.match(runId, /^chatcmpl-[0-9a-f]{24}$/);

    // Byte-level framing: id line, event line, data line with no space after the colon.
    const frames = res.raw.split('\n\n').filter(Boolean);
    assert.equal(frames.length, 4);
    frames.slice(0, 3).forEach((frame, i) => assert.match(frame, new RegExp(`^id:${i}\nevent:message\ndata:\\{.*\\}$`)));
    assert.equal(frames[3], 'event:done\ndata:[DONE]');
    assert.ok(res.raw.endsWith('event:done\ndata:[DONE]\n\n'));

    const [first, tool, last] = res.messages;
    for (const m of res.messages) {
      assert.equal(m.id, runId);
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.system_fingerprint, 'string');
      assert.equal(m.choices.length, 1);
      assert.equal(m.choices[0].index, 0);
    }
    assert.equal(first.object, 'chat.completion');
    assert.equal(first.model, 'claude-4-sonnet');
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    const call = first.choices[0].message.tool_calls[0];
    assert.deepEqual(Object.keys(first.choices[0].message).sort(), ['content', 'refusal', 'role', 'tool_calls']);
    assert.deepEqual(call.function, { name: 'dyno_run_command', arguments: '{"who":"world"}' });
    assert.equal(call.type, 'function');
    assert.deepEqual(Object.keys(first.usage).sort(), ['completion_tokens', 'prompt_tokens', 'total_tokens']);

    assert.deepEqual(tool, {
      id: runId,
      object: 'tool.completion',
      created: tool.created,
      system_fingerprint: tool.system_fingerprint,
      choices: [
        {
          index: 0,
          message: {
            role: 'tool',
            content: "Tool 'dyno_run_command' returned result: hello\nwho=world",
            refusal: null,
            tool_call_id: call.id,
            name: 'dyno_run_command',
          },
          finish_reason: '',
        },
      ],
      usage: {},
    });

    assert.equal(last.object, 'chat.completion');
    assert.equal(last.choices[0].finish_reason, 'stop');
    assert.equal(last.choices[0].message.content, "Done: Tool 'dyno_run_command' returned result: hello\nwho=world");
    assert.equal('tool_calls' in last.choices[0].message, false);

    // What the upstream model was sent.
    const upstream = stack.model.requests.filter((r) => r.body.messages[0].content === 'CALL dyno_run_command {"who":"world"}');
    assert.equal(upstream.length, 2);
    const firstCall = upstream[0]!.body;
    assert.equal(firstCall.model, 'claude-4-sonnet');
    assert.equal(firstCall.temperature, 0.2);
    assert.equal(firstCall.top_p, 0.9);
    assert.deepEqual(firstCall.stop, ['STOP']);
    assert.equal(firstCall.max_tokens, 512);
    assert.deepEqual(firstCall.tools, [
      {
        type: 'function',
        function: {
          name: 'dyno_run_command',
          description: 'Greets someone on a one-off dyno',
          parameters: { type: 'object', properties: { who: { type: 'string' } }, required: ['who'] },
        },
      },
    ]);
    assert.equal(upstream[1]!.body.messages.at(-1).role, 'tool');
    assert.equal(upstream[1]!.body.messages.at(-1).tool_call_id, call.id);
  });

  test('a request without tools is one chat.completion and done', async () => {
    const res = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi there' }] }] });
    assert.equal(res.messages.length, 1);
    assert.equal(res.messages[0].choices[0].message.content, 'Echo: hi there');
    assert.equal(res.messages[0].choices[0].finish_reason, 'stop');
    assert.deepEqual(
      res.frames.map((f) => f.event),
      ['message', 'done'],
    );
  });

  test('earlier assistant and tool messages are accepted as history and forwarded', async () => {
    const res = await runAgent(stack, {
      model: 'm',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'what time is it?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'tooluse_1', type: 'function', function: { name: 'dyno_run_command', arguments: { who: 'me' } } }],
        },
        { role: 'tool', tool_call_id: 'tooluse_1', name: 'dyno_run_command', content: 'noon' },
      ],
    });
    assert.equal(res.status, 200);
    assert.equal(res.messages[0].choices[0].message.content, 'Done: noon');
    const sent = stack.model.requests.at(-1)!.body.messages;
    assert.equal(sent[2].tool_calls[0].function.arguments, '{"who":"me"}');
  });

  test('finish_reason length ends the run', async () => {
    stack.model.setHandler(() => reply.length('cut sh'));
    try {
      const res = await runAgent(stack, userAsks('hello'));
      assert.equal(res.messages.length, 1);
      assert.equal(res.messages[0].choices[0].finish_reason, 'length');
      assert.deepEqual(
        res.frames.map((f) => f.event),
        ['message', 'done'],
      );
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
  });
});

describe('dyno_run_command', () => {
  test('model arguments reach the dyno only through its environment, metacharacters and all', async () => {
    const evil = `$(touch /tmp/pwned-by-agent); \`id\` && echo "x" | cat; rm -rf / # '`;
    const before = stack.heroku.creates.length;
    const res = await runAgent(stack, userAsks(`CALL dyno_run_command ${JSON.stringify({ who: evil })}`));
    const content = res.messages[1].choices[0].message.content;
    assert.equal(content, `Tool 'dyno_run_command' returned result: hello\nwho=${evil}`);
    const create = stack.heroku.creates[before]!;
    assert.equal(create.app, 'my-app');
    assert.equal(create.body.command, '(\necho hello && echo "who=$TOOL_ARG_WHO"\n)\necho "\uFFFF heroku-command-exit-status: $?"');
    assert.equal(create.body.command.includes('pwned'), false);
    assert.equal(create.body.env.TOOL_ARG_WHO, evil);
    assert.equal(create.body.env.TOOL_ARGUMENTS, JSON.stringify({ who: evil }));
    assert.match(create.body.env.TOOL_CALL_ID, /^chatcmpl-[0-9a-f]{24}:0$/);
    // Exactly the tool's variables: nothing of the worker's environment (its keys) reaches the dyno.
    assert.deepEqual(Object.keys(create.body.env).sort(), ['TOOL_ARGUMENTS', 'TOOL_ARG_WHO', 'TOOL_CALL_ID']);
    const dyno = stack.heroku.dynos().find((d) => d.env.TOOL_CALL_ID === create.body.env.TOOL_CALL_ID);
    assert.deepEqual(dyno?.env, create.body.env);
    assert.equal(create.body.size, 'standard-1x');
    assert.equal(create.body.time_to_live, 120);
    assert.equal(create.body.attach, true);
    assert.equal(create.body.force_no_tty, true);
    assert.equal(create.body.type, 'run');
  });

  test('non-string arguments arrive as JSON; dyno_size and ttl_seconds are passed on', async () => {
    const tool = dynoTool(
      {
        cmd: 'echo "$TOOL_ARG_COUNT $TOOL_ARG_TAGS"',
        parameters: { type: 'object', properties: { count: { type: 'integer' }, tags: { type: 'array' } } },
      },
      { dyno_size: 'performance-l', ttl_seconds: 30 },
    );
    const before = stack.heroku.creates.length;
    const res = await runAgent(stack, userAsks('CALL dyno_run_command {"count":3,"tags":["a","b"]}', [tool]));
    assert.equal(res.messages[1].choices[0].message.content, `Tool 'dyno_run_command' returned result: 3 ["a","b"]`);
    assert.equal(stack.heroku.creates[before]!.body.size, 'performance-l');
    assert.equal(stack.heroku.creates[before]!.body.time_to_live, 30);
  });

  test('arguments that do not match the parameters schema are not run; the model reads why', async () => {
    const before = stack.heroku.creates.length;
    const res = await runAgent(stack, userAsks('CALL dyno_run_command {"who":42}'));
    const content: string = res.messages[1].choices[0].message.content;
    assert.match(content, /^Tool 'dyno_run_command' returned result: Error: invalid arguments: arguments\/who must be string/);
    assert.equal(stack.heroku.creates.length, before);
    assert.equal(res.messages.length, 3);
  });

  test('arguments that are not JSON are reported, not run', async () => {
    const before = stack.heroku.creates.length;
    const res = await runAgent(stack, userAsks('CALL dyno_run_command {"who": nope'));
    assert.match(res.messages[1].choices[0].message.content, /Error: the arguments are not valid JSON/);
    assert.equal(stack.heroku.creates.length, before);
  });

  test('a non-zero exit status is reported to the model', async () => {
    const res = await runAgent(
      stack,
      userAsks('CALL dyno_run_command {}', [dynoTool({ cmd: 'echo failing; exit 3', parameters: { type: 'object' } })]),
    );
    assert.equal(res.messages[1].choices[0].message.content, "Tool 'dyno_run_command' returned result: failing\n[exit status 3]");
  });

  test('ttl_seconds is enforced by the worker too: it stops the dyno and returns the partial output', async () => {
    // A platform that does not end the dyno at its time_to_live: only the worker's own deadline can.
    stack.heroku.setTimeToLiveEnforced(false);
    try {
      const started = Date.now();
      const res = await runAgent(
        stack,
        userAsks('CALL dyno_run_command {}', [dynoTool({ cmd: 'echo started; sleep 60', parameters: { type: 'object' } }, { ttl_seconds: 2 })]),
      );
      assert.ok(Date.now() - started < 40_000, `took ${Date.now() - started} ms`);
      assert.equal(
        res.messages[1].choices[0].message.content,
        "Tool 'dyno_run_command' returned result: started\n[timed out after 2s: the process was stopped]",
      );
      const runId = res.headers.get('agent-run-id')!;
      const dyno = stack.heroku.dynos().find((d) => d.env.TOOL_CALL_ID?.startsWith(`${runId}:`))!;
      await until(() => stack.heroku.stops.some((s) => s.dyno === dyno.name), 'the worker to stop the dyno', 20_000);
      assert.equal(stack.heroku.dynos().find((d) => d.name === dyno.name)?.state, 'down');
    } finally {
      stack.heroku.setTimeToLiveEnforced(true);
    }
  });

  test('max_calls caps how often the model may call the tool in one run', async () => {
    const before = stack.heroku.creates.length;
    const res = await runAgent(stack, userAsks('LOOP dyno_run_command {"who":"again"}', [dynoTool({}, { max_calls: 2 })]));
    const toolResults = res.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content);
    assert.equal(stack.heroku.creates.length - before, 2);
    assert.equal(toolResults[0], "Tool 'dyno_run_command' returned result: hello\nwho=again");
    assert.equal(toolResults[1], "Tool 'dyno_run_command' returned result: hello\nwho=again");
    assert.match(toolResults[2], /has reached its max_calls limit \(2\)/);
  });

  test('MAX_MODEL_CALLS_PER_RUN ends a runaway loop with an error event', async () => {
    const res = await runAgent(stack, userAsks('LOOP dyno_run_command {"who":"x"}', [dynoTool({}, { max_calls: 50 })]));
    const chats = res.messages.filter((m) => m.object === 'chat.completion');
    assert.equal(chats.length, 4);
    assert.deepEqual(
      res.frames.slice(-2).map((f) => f.event),
      ['error', 'done'],
    );
    const error = JSON.parse(res.frames.at(-2)!.data);
    assert.deepEqual(error, {
      error: { code: 429, type: 'run_limit_exceeded', message: 'the run reached its limit of 4 model calls (MAX_MODEL_CALLS_PER_RUN)' },
    });
    assert.ok(res.raw.endsWith('event:error\ndata:' + JSON.stringify(error) + '\n\nevent:done\ndata:[DONE]\n\n'));
    const status = await getJson(stack, `/v1/agents/runs/${res.headers.get('agent-run-id')}`);
    assert.equal(status.body.status, 'failed');
    assert.equal(status.body.model_calls, 4);
    assert.deepEqual(status.body.error, error.error);
  });

  test('a Platform API error becomes a tool result, not a failed run', async () => {
    const tool = dynoTool({}, { target_app_name: 'missing-app' });
    const res = await runAgent(stack, userAsks('CALL dyno_run_command {"who":"x"}', [tool]));
    const content: string = res.messages[1].choices[0].message.content;
    assert.match(content, /^Tool 'dyno_run_command' returned result: Error: .*missing-app/);
    assert.equal(res.messages.length, 3);
    assert.equal(res.frames.at(-1)!.event, 'done');
    assert.equal(
      res.frames.some((f) => f.event === 'error'),
      false,
    );
  });

  test('an unknown tool name from the model is reported back to it', async () => {
    const res = await runAgent(stack, userAsks('CALL no_such_tool {}'));
    assert.equal(
      res.messages[1].choices[0].message.content,
      "Tool 'no_such_tool' returned result: Error: unknown tool 'no_such_tool'. Available tools: dyno_run_command.",
    );
  });
});

describe('validation and auth before the stream', () => {
  const valid = userAsks('hi');
  const cases: Array<[string, unknown, string]> = [
    ['missing model', { messages: valid.messages }, 'model is required'],
    ['empty model', { ...valid, model: '' }, 'model must be a non-empty string'],
    ['model not a string', { ...valid, model: 7 }, 'model is required and must be a string'],
    ['missing messages', { model: 'm' }, 'messages is required'],
    ['empty messages', { ...valid, messages: [] }, 'messages must not be empty'],
    ['bad role', { ...valid, messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    ['tool message without tool_call_id', { ...valid, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id is required'],
    ['temperature above 1', { ...valid, temperature: 1.5 }, 'temperature must be between 0 and 1'],
    ['temperature not a number', { ...valid, temperature: 'hot' }, 'temperature must be a number'],
    ['top_p below 0', { ...valid, top_p: -0.1 }, 'top_p must be between 0 and 1'],
    ['max tokens zero', { ...valid, max_tokens_per_inference_request: 0 }, 'max_tokens_per_inference_request must be greater than 0'],
    ['max tokens fractional', { ...valid, max_tokens_per_inference_request: 1.5 }, 'max_tokens_per_inference_request must be an integer'],
    ['stop of numbers', { ...valid, stop: [1] }, 'stop must be a string or an array of strings'],
    ['tools not an array', { ...valid, tools: {} }, 'tools must be an array'],
    ['bad tool type', { ...valid, tools: [{ ...dynoTool(), type: 'plugin' }] }, 'tools[0].type must be "heroku_tool" or "mcp"'],
    ['unknown heroku tool', { ...valid, tools: [{ ...dynoTool(), name: 'make_coffee' }] }, "tools[0].name 'make_coffee' is not a known heroku_tool"],
    ['duplicate tool names', { ...valid, tools: [dynoTool(), dynoTool()] }, "tools[1].name 'dyno_run_command' is a duplicate"],
    [
      'ttl above 120',
      { ...valid, tools: [dynoTool({}, { ttl_seconds: 121 })] },
      'tools[0].runtime_params.ttl_seconds must be an integer between 1 and 120',
    ],
    ['ttl zero', { ...valid, tools: [dynoTool({}, { ttl_seconds: 0 })] }, 'tools[0].runtime_params.ttl_seconds must be an integer between 1 and 120'],
    ['ttl fractional', { ...valid, tools: [dynoTool({}, { ttl_seconds: 1.5 })] }, 'tools[0].runtime_params.ttl_seconds must be an integer'],
    ['max_calls zero', { ...valid, tools: [dynoTool({}, { max_calls: 0 })] }, 'tools[0].runtime_params.max_calls must be at least 1'],
    [
      'missing app',
      { ...valid, tools: [{ type: 'heroku_tool', name: 'dyno_run_command', runtime_params: { tool_params: { cmd: 'x', description: 'y' } } }] },
      'tools[0].runtime_params.target_app_name is required',
    ],
    ['missing cmd', { ...valid, tools: [dynoTool({ cmd: undefined })] }, 'tools[0].runtime_params.tool_params.cmd is required'],
    [
      'missing description',
      { ...valid, tools: [dynoTool({ description: undefined })] },
      'tools[0].runtime_params.tool_params.description is required',
    ],
    [
      'bad parameters schema',
      { ...valid, tools: [dynoTool({ parameters: { type: 'object', properties: { a: { type: 'nonsense' } } } })] },
      'tools[0].runtime_params.tool_params.parameters is not a valid JSON Schema',
    ],
    ['body is an array', [valid], 'the request body must be a JSON object'],
  ];
  for (const [name, body, message] of cases) {
    test(`400 for ${name}`, async () => {
      const res = await post(stack, body);
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const json = await res.json();
      assert.equal(json.error.code, 400);
      assert.equal(json.error.type, 'invalid_request_error');
      assert.ok(json.error.message.includes(message), `"${json.error.message}" should include "${message}"`);
    });
  }

  test('400 for malformed JSON', async () => {
    const res = await post(stack, '{"model": "m", ');
    assert.equal(res.status, 400);
    const json = await res.json();
    assert.equal(json.error.type, 'invalid_request_error');
    assert.match(json.error.message, /^malformed JSON/);
  });

  test('413 for a body over the size limit', async () => {
    const res = await post(stack, userAsks('x'.repeat(2 * 1024 * 1024)));
    assert.equal(res.status, 413);
    assert.deepEqual(await res.json(), { error: { code: 413, message: 'request body is larger than the limit', type: 'invalid_request_error' } });
  });

  test('401 without a bearer key, and with a wrong one', async () => {
    for (const headers of [{ Authorization: '' }, { Authorization: 'Bearer wrong' }, { Authorization: 'Basic abc' }]) {
      const res = await post(stack, valid, headers);
      assert.equal(res.status, 401);
      const json = await res.json();
      assert.equal(json.error.type, 'authentication_error');
      assert.equal(json.error.code, 401);
    }
  });

  test('every configured key is accepted', async () => {
    const res = await post({ ...stack, apiKey: OTHER_API_KEY }, { model: 'm', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(res.status, 200);
    await res.text();
  });
});

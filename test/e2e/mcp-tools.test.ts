/**
 * MCP tools (`type: "mcp"`) end to end: a real MCP server (test/doubles/mcp-server.ts)
 * started by the worker and the API over stdio, another over streamable HTTP,
 * and one configured but not yet running; requests through POST /v1/agents/heroku.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { workflowIdFor } from '../../common/run-ids';
import { freePort } from '../../dev/dev-server';
import { startMcpHttpServer, type McpHttpServer } from '../doubles/mcp-server';
import { historyText, workflowInput } from '../support/history';
import { KEY_ID_SECRET, OTHER_API_KEY, useStack } from '../support/stack';
import { logLines, theLine } from '../support/logs';
import { getJson, post, readStream, runAgent } from '../support/sse';
import { sleep, until, within } from '../support/wait';

const ROOT = path.resolve(__dirname, '../..');
const SERVER_SCRIPT = path.join(ROOT, 'test/doubles/mcp-server.ts');
const notesToken = `notes-token-${randomBytes(12).toString('hex')}`;
const webToken = `web-token-${randomBytes(12).toString('hex')}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-tools-'));
const notesFile = path.join(dir, 'notes.txt');
const registryFile = path.join(dir, 'mcp-servers.json');

let web: McpHttpServer;
let late: McpHttpServer | undefined;
let latePort: number;
/** Everything the API sent, for the leak check at the end. */
const seen: string[] = [];

const stack = useStack(async () => {
  web = await startMcpHttpServer({ token: webToken });
  latePort = await freePort();
  const servers = [
    {
      namespace: 'notes',
      command: process.execPath,
      args: ['--import', 'tsx', SERVER_SCRIPT],
      env: { NOTES_TOKEN: notesToken, NOTES_FILE: notesFile },
    },
    { namespace: 'web', url: web.url, headers: { Authorization: `Bearer ${webToken}` } },
    // Configured but not running yet: started by a test below.
    { namespace: 'late', url: `http://127.0.0.1:${latePort}/mcp?key=${webToken}`, headers: { Authorization: `Bearer ${webToken}` } },
  ];
  fs.writeFileSync(registryFile, JSON.stringify({ servers }));
  return {
    workerEnv: { MCP_SERVERS: registryFile },
    apiEnv: { MCP_SERVERS: registryFile, MCP_MAX_TTL_SECONDS: '300', MAX_MODEL_CALLS_PER_RUN: '4' },
  };
});
after(async () => {
  await Promise.all([web?.close(), late?.close()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const mcpTool = (name: string, runtime_params?: Record<string, unknown>) => ({ type: 'mcp', name, ...(runtime_params ? { runtime_params } : {}) });
const userAsks = (content: string, tools: unknown[]) => ({ model: 'claude-4-sonnet', messages: [{ role: 'user', content }], tools });

async function run(content: string, tools: unknown[]) {
  const res = await runAgent(stack, userAsks(content, tools));
  seen.push(res.raw);
  assert.equal(res.status, 200, res.raw);
  return res;
}

const toolContents = (res: { messages: any[] }) =>
  res.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content as string);

/**
 * How the model calls an MCP tool: OpenAI-compatible APIs allow only
 * ^[a-zA-Z0-9_-]{1,64}$ function names, so `notes/echo` reaches the model as
 * `notes__echo`; the scripted model calls it by that name.
 */
const modelName = (name: string) => name.replace('/', '__');
const callLine = (name: string, args: string) => `CALL ${modelName(name)} ${args}`;

const ECHO_SCHEMA = {
  type: 'object',
  properties: { text: { type: 'string' } },
  required: ['text'],
  $schema: 'http://json-schema.org/draft-07/schema#',
};

describe('GET /v1/mcp/servers', () => {
  test("lists the configured servers and their tools in Heroku's shape, without secrets", async () => {
    const { status, body } = await getJson(stack, '/v1/mcp/servers');
    assert.equal(status, 200);
    seen.push(JSON.stringify(body));
    assert.deepEqual(
      body.map((s: any) => s.namespace),
      ['notes', 'web', 'late'],
    );
    const [notes, webServer, lateServer] = body;
    for (const s of body) {
      assert.deepEqual(Object.keys(s), [
        'id',
        'app_id',
        'process_type',
        'process_command',
        'url',
        'created_at',
        'updated_at',
        'namespace',
        'server_status',
        'primitives_status',
        'error',
        'tools',
      ]);
      assert.match(s.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(s.app_id, null);
      assert.ok(!Number.isNaN(Date.parse(s.created_at)) && !Number.isNaN(Date.parse(s.updated_at)));
    }

    assert.equal(notes.process_type, process.execPath);
    assert.equal(notes.process_command, process.execPath); // never the args: they may hold secrets
    assert.equal(notes.url, null);
    assert.equal(notes.server_status, 'registered');
    assert.equal(notes.primitives_status, 'synced');
    assert.equal(notes.error, null);
    assert.deepEqual(
      notes.tools.map((t: any) => t.namespaced_name),
      ['notes/echo', 'notes/add', 'notes/slow', 'notes/fail', 'notes/write_note', 'notes/crash'],
    );
    assert.deepEqual(notes.tools[0], {
      name: 'echo',
      namespaced_name: 'notes/echo',
      description: 'Returns the text it is given',
      input_schema: ECHO_SCHEMA,
      annotations: { readOnlyHint: true },
    });
    assert.deepEqual(notes.tools[3].annotations, {});

    assert.equal(webServer.process_type, null);
    assert.equal(webServer.process_command, null);
    assert.equal(webServer.url, web.url);
    assert.equal(webServer.server_status, 'registered');
    assert.deepEqual(
      webServer.tools.map((t: any) => t.namespaced_name),
      ['web/echo', 'web/add', 'web/slow', 'web/fail'],
    );

    // The query string may hold a secret: it is not shown.
    assert.equal(lateServer.url, `http://127.0.0.1:${latePort}/mcp`);
    assert.equal(lateServer.server_status, 'disconnected');
    assert.equal(lateServer.primitives_status, 'error');
    assert.match(lateServer.error, /fetch failed|ECONNREFUSED/);
    assert.deepEqual(lateServer.tools, []);

    const text = JSON.stringify(body);
    assert.equal(text.includes(notesToken), false);
    assert.equal(text.includes(webToken), false);
  });

  test('needs the bearer key', async () => {
    const res = await fetch(`${stack.apiUrl}/v1/mcp/servers`);
    assert.equal(res.status, 401);
  });
});

describe('calling MCP tools', () => {
  test('by namespaced name: the payload is the CallToolResult JSON; the model sees the server schema under a valid name', async () => {
    const res = await run(callLine('notes/echo', '{"text":"hello"}'), [mcpTool('notes/echo')]);
    // The client sees <namespace>/<tool> everywhere: the call, the tool message's name and its content.
    assert.deepEqual(
      res.messages[0].choices[0].message.tool_calls.map((c: any) => c.function),
      [{ name: 'notes/echo', arguments: '{"text":"hello"}' }],
    );
    const tool = res.messages[1].choices[0].message;
    assert.equal(tool.name, 'notes/echo');
    assert.equal(tool.content, `Tool 'notes/echo' returned result: {"content":[{"type":"text","text":"hello"}],"isError":false}`);
    assert.equal(res.messages[2].choices[0].message.content, `Done: ${tool.content}`);

    // The model sees notes__echo, in the tool list and in the conversation it is sent back.
    const upstream = stack.model.requests.filter((r) => r.body.messages[0].content === callLine('notes/echo', '{"text":"hello"}'));
    const { $schema: _draft, ...parameters } = ECHO_SCHEMA;
    assert.deepEqual(upstream[0]!.body.tools, [
      { type: 'function', function: { name: 'notes__echo', description: 'Returns the text it is given', parameters } },
    ]);
    assert.equal(upstream[1]!.body.messages[1].tool_calls[0].function.name, 'notes__echo');
    assert.equal(upstream[1]!.body.messages[2].name, 'notes__echo');
    assert.deepEqual(stack.model.refused, []);
  });

  test('by bare name where it is unique; a destructive tool runs exactly once per call', async () => {
    const res = await run(callLine('notes/write_note', '{"note":"first"}'), [mcpTool('write_note')]);
    assert.deepEqual(toolContents(res), [
      `Tool 'notes/write_note' returned result: {"content":[{"type":"text","text":"saved note 1"}],"isError":false}`,
    ]);
    assert.equal(fs.readFileSync(notesFile, 'utf8'), 'first\n');
  });

  test('over streamable HTTP, with the configured headers', async () => {
    const before = web.calls.length;
    const res = await run(callLine('web/add', '{"a":2,"b":3}'), [mcpTool('web/add')]);
    assert.deepEqual(toolContents(res), [`Tool 'web/add' returned result: {"content":[{"type":"text","text":"5"}],"isError":false}`]);
    assert.deepEqual(web.calls.slice(before), ['add']);
  });

  test('a tool description from the request replaces the server’s', async () => {
    const res = await run(callLine('notes/add', '{"a":1,"b":1}'), [{ ...mcpTool('notes/add'), description: 'Use for sums' }]);
    assert.equal(toolContents(res)[0], `Tool 'notes/add' returned result: {"content":[{"type":"text","text":"2"}],"isError":false}`);
    const upstream = stack.model.requests.find((r) => r.body.messages[0].content === callLine('notes/add', '{"a":1,"b":1}'))!;
    assert.equal(upstream.body.tools[0].function.description, 'Use for sums');
  });

  test('an isError result from the server is passed through', async () => {
    const res = await run(callLine('web/fail', '{}'), [mcpTool('web/fail')]);
    assert.deepEqual(toolContents(res), [
      `Tool 'web/fail' returned result: {"content":[{"type":"text","text":"the tool failed on purpose"}],"isError":true}`,
    ]);
  });

  test('ttl_seconds bounds the call; the model reads that it timed out', async () => {
    const started = Date.now();
    // Far longer than the ttl, so ending well before it shows the ttl cut the call.
    const res = await run(callLine('notes/slow', '{"seconds":90}'), [mcpTool('notes/slow', { ttl_seconds: 1 })]);
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
    assert.deepEqual(toolContents(res), [
      `Tool 'notes/slow' returned result: {"content":[{"type":"text","text":"'notes/slow' did not answer within ttl_seconds (1s); the call was cancelled."}],"isError":true}`,
    ]);
  });

  test('arguments that do not match the server schema are not sent', async () => {
    const before = web.calls.length;
    const res = await run(callLine('web/add', '{"a":"x"}'), [mcpTool('web/add')]);
    assert.match(toolContents(res)[0]!, /^Tool 'web\/add' returned result: Error: invalid arguments: .*; the tool was not run\.$/);
    assert.equal(web.calls.length, before);
  });

  test('max_calls caps how often the model may call an MCP tool', async () => {
    const res = await runAgent(stack, userAsks('LOOP notes__echo {"text":"again"}', [mcpTool('notes/echo', { max_calls: 2 })]));
    seen.push(res.raw);
    const results = toolContents(res);
    assert.equal(results[0], `Tool 'notes/echo' returned result: {"content":[{"type":"text","text":"again"}],"isError":false}`);
    assert.equal(results[1], results[0]);
    assert.match(results[2]!, /has reached its max_calls limit \(2\)/);
  });

  test('cancelling the run cancels the MCP request in flight', async () => {
    const res = await post(stack, userAsks(callLine('web/slow', '{"seconds":60}'), [mcpTool('web/slow', { ttl_seconds: 90 })]));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(() => web.calls.includes('slow'), 'the call to reach the server', 30_000);
    const started = Date.now();
    assert.equal((await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' })).status, 202);
    const stream = await within(reading, 'the stream to end after the cancel', 30_000);
    seen.push(stream.raw);
    assert.ok(Date.now() - started < 20_000, `stream ended ${Date.now() - started} ms after cancel`);
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['message', 'error', 'done'],
    );
    assert.equal(JSON.parse(stream.frames[1]!.data).error.type, 'cancelled');
    // The worker told the server it gave up (notifications/cancelled).
    await until(() => web.cancellations > 0, 'notifications/cancelled to reach the server', 30_000);
    assert.ok(Date.now() - started < 20_000, `the server heard of the cancel ${Date.now() - started} ms later`);
  });

  test('a stdio server that dies mid-call is reported, then started again for the next call', async () => {
    const crashed = await run(callLine('notes/crash', '{}'), [mcpTool('notes/crash')]);
    assert.match(
      toolContents(crashed)[0]!,
      /^Tool 'notes\/crash' returned result: \{"content":\[\{"type":"text","text":"the connection to MCP server 'notes' broke during the call \(.*\), so its outcome is unknown; the server will be reconnected on the next call\."\}\],"isError":true\}$/,
    );
    const res = await run(callLine('notes/echo', '{"text":"back"}'), [mcpTool('notes/echo')]);
    assert.equal(toolContents(res)[0], `Tool 'notes/echo' returned result: {"content":[{"type":"text","text":"back"}],"isError":false}`);
  });
});

describe('a destructive tool whose worker dies mid-call', () => {
  test('is not run again: the note is written once, and the model reads that the outcome is unknown', { timeout: 120_000 }, async () => {
    const note = `held-${randomBytes(6).toString('hex')}`;
    const res = await post(stack, userAsks(callLine('notes/write_note', JSON.stringify({ note, hold_seconds: 60 })), [mcpTool('notes/write_note')]));
    const reading = readStream(res);
    await until(() => fs.existsSync(notesFile) && fs.readFileSync(notesFile, 'utf8').includes(note), 'the note to be written', 30_000);
    await stack.worker.kill('SIGKILL');
    await stack.worker.start();

    // The heartbeat timeout (15 s) tells Temporal the worker is gone.
    const stream = await within(reading, 'the stream to end', 90_000);
    seen.push(stream.raw);
    assert.deepEqual(toolContents(stream), [
      "Tool 'notes/write_note' returned result: Error: the outcome of this 'notes/write_note' call is unknown " +
        '(the worker running it stopped responding); it was not retried because it may have side effects.',
    ]);
    assert.equal(
      fs
        .readFileSync(notesFile, 'utf8')
        .split('\n')
        .filter((line) => line === note).length,
      1,
      'the note was written once',
    );
  });
});

describe('the workflow input', () => {
  test('carries the side-effect class from the annotations, and no secret reaches history or events', async () => {
    const marker = `echoed-${randomBytes(6).toString('hex')}`;
    const res = await run(callLine('notes/echo', JSON.stringify({ text: marker })), [
      mcpTool('notes/echo'),
      mcpTool('web/add'),
      mcpTool('write_note', { target_app_name: 'ignored', dyno_size: 'performance-l' }),
    ]);
    const runId = res.headers.get('agent-run-id')!;
    const input = await workflowInput(stack.client, runId);
    assert.deepEqual(
      input.tools.map((t: any) => [t.name, t.type, t.sideEffect]),
      [
        ['notes/echo', 'mcp', 'read-only'],
        ['web/add', 'mcp', 'idempotent'],
        ['notes/write_note', 'mcp', 'side-effecting'],
      ],
    );
    assert.deepEqual(input.tools[2].runtime, { dyno_size: 'performance-l', ttl_seconds: 120, max_calls: 3, tool_params: {} });

    const history = await historyText(stack.client, workflowIdFor(runId));
    // Positive control: the tool's payloads are searched as text, not as base64.
    assert.ok(history.includes(marker), 'the echoed text is found in the history');
    for (const secret of [notesToken, webToken]) {
      assert.equal(history.includes(secret), false);
      assert.equal(res.raw.includes(secret), false);
    }
  });
});

describe('validation before the stream', () => {
  const cases: Array<[string, unknown[], string]> = [
    ['ambiguous bare name', [mcpTool('echo')], "tools[0].name 'echo' is ambiguous: it matches notes/echo, web/echo; use the namespaced name"],
    [
      'unknown bare name',
      [mcpTool('nope')],
      "tools[0].name 'nope' is not a tool of any configured MCP server (GET /v1/mcp/servers lists them) (MCP server 'late' is unavailable: ",
    ],
    ['unknown tool of a server', [mcpTool('notes/nope')], "tools[0].name 'notes/nope': MCP server 'notes' has no tool 'nope'"],
    [
      'unknown namespace',
      [mcpTool('zzz/echo')],
      "tools[0].name 'zzz/echo': there is no MCP server with namespace 'zzz'; configured: notes, web, late",
    ],
    [
      'ttl above MCP_MAX_TTL_SECONDS',
      [mcpTool('notes/echo', { ttl_seconds: 301 })],
      'tools[0].runtime_params.ttl_seconds must be an integer between 1 and 300 for mcp tools',
    ],
    ['ttl zero', [mcpTool('notes/echo', { ttl_seconds: 0 })], 'tools[0].runtime_params.ttl_seconds must be an integer between 1 and 300'],
    ['tool_params', [mcpTool('notes/echo', { tool_params: { cmd: 'x' } })], 'tools[0].runtime_params.tool_params is not supported for mcp tools'],
    [
      'the same tool twice',
      [mcpTool('write_note'), mcpTool('notes/write_note')],
      "tools[1].name 'notes/write_note' is a duplicate: tool names must be unique",
    ],
    ['second tool unknown', [mcpTool('notes/echo'), mcpTool('web/nope')], "tools[1].name 'web/nope': MCP server 'web' has no tool 'nope'"],
  ];
  for (const [name, tools, message] of cases) {
    test(`400 for ${name}`, async () => {
      const res = await post(stack, userAsks('hi', tools));
      assert.equal(res.status, 400);
      const json = await res.json();
      seen.push(JSON.stringify(json));
      assert.equal(json.error.type, 'invalid_request_error');
      assert.ok(json.error.message.startsWith(message), `"${json.error.message}" should start with "${message}"`);
    });
  }

  test('a ttl above 120 is accepted up to MCP_MAX_TTL_SECONDS', async () => {
    const res = await run(callLine('notes/echo', '{"text":"long"}'), [mcpTool('notes/echo', { ttl_seconds: 300 })]);
    assert.equal(toolContents(res)[0], `Tool 'notes/echo' returned result: {"content":[{"type":"text","text":"long"}],"isError":false}`);
  });
});

describe('servers that come up later', () => {
  test('a request naming a tool of a server that was down lists it again', async () => {
    late = await startMcpHttpServer({ token: webToken, port: latePort });
    // A server is re-listed at most every 5 s on unknown names; let that pass since the last attempt.
    await sleep(5_500);
    const res = await run(callLine('late/add', '{"a":20,"b":22}'), [mcpTool('late/add')]);
    assert.equal(toolContents(res)[0], `Tool 'late/add' returned result: {"content":[{"type":"text","text":"42"}],"isError":false}`);
    const { body } = await getJson(stack, '/v1/mcp/servers');
    assert.equal(body[2].server_status, 'registered');
    assert.equal(body[2].primitives_status, 'synced');
    assert.equal(body[2].error, null);
  });

  test('POST /v1/mcp/servers/sync lists every server again now', async () => {
    await late!.close();
    late = undefined;
    const res = await fetch(`${stack.apiUrl}/v1/mcp/servers/sync`, { method: 'POST', headers: { Authorization: `Bearer ${stack.apiKey}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as any[];
    seen.push(JSON.stringify(body));
    assert.deepEqual(
      body.map((s) => [s.namespace, s.server_status, s.primitives_status]),
      [
        ['notes', 'registered', 'synced'],
        ['web', 'registered', 'synced'],
        ['late', 'disconnected', 'error'],
      ],
    );
  });
});

describe('secrets', () => {
  test("a stdio server gets only its own env and the basics (HOME, PATH, ...), never the service's", () => {
    // Each stdio server the API and the worker started wrote down its environment.
    const reports = fs.readdirSync(dir).filter((f) => f.startsWith('notes.txt.env-'));
    assert.ok(reports.length >= 2, `expected the reports of the API's and the worker's servers, got ${reports.join(', ')}`);
    const basics = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER'];
    for (const report of reports) {
      const env = JSON.parse(fs.readFileSync(path.join(dir, report), 'utf8')) as Record<string, string>;
      assert.equal(env.NOTES_TOKEN, notesToken);
      assert.deepEqual(
        Object.keys(env)
          .filter((k) => !basics.includes(k))
          .sort(),
        ['NOTES_FILE', 'NOTES_TOKEN'],
        `${report}: ${Object.keys(env).join(' ')}`,
      );
      for (const secret of [...stack.secrets, webToken]) assert.equal(JSON.stringify(env).includes(secret), false, `${report} holds a secret`);
    }
  });

  test('the env and header secrets appear in no response and no process output', () => {
    for (const secret of [notesToken, webToken]) {
      for (const text of [...seen, stack.worker.output, stack.api.output]) assert.equal(text.includes(secret), false);
    }
  });
});

describe('the MCP_SERVERS file', () => {
  test('the API does not start with a bad file, and says why', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ servers: [{ namespace: 'Bad!', command: 'x' }] }));
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'api/main.ts')], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AGENTS_API_KEYS: OTHER_API_KEY,
        AGENTS_KEY_ID_SECRET: KEY_ID_SECRET,
        MCP_SERVERS: file,
        PORT: '1',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 1, result.stderr);
    const refusal = theLine(logLines(result.stdout), /^cannot run: /);
    assert.deepEqual([refusal.level, refusal.name], ['error', 'api']);
    assert.match(refusal.msg, new RegExp(`^cannot run: MCP_SERVERS file ${file}: servers\\[0\\]\\.namespace must match`));
  });
});

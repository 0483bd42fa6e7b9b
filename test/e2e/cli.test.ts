/**
 * The command-line client (bin/durable-agents) as a user runs it: a child
 * process against the test stack, read by its output and exit code. A run is
 * shown as it streams and resumes by itself when the API is killed mid-run;
 * runs, show, tail and cancel; refusals show Heroku's error body and end with
 * the exit code for it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../../common/free-port';
import { reply, scriptedAgent, type ModelRequest } from '../doubles/model-server';
import { post } from '../support/sse';
import { useStack } from '../support/stack';
import { until, within } from '../support/wait';

const BIN = path.join(__dirname, '../../bin/durable-agents');
const stack = useStack();

interface Cli {
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

/** Starts `durable-agents ...args` with AGENTS_URL and AGENTS_API_KEY of the stack (unless `env` says otherwise). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AGENTS_URL: stack.apiUrl, AGENTS_API_KEY: stack.apiKey, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result: Cli = { stdout: '', stderr: '', exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stdout.on('data', (b: Buffer) => (result.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (result.stderr += b.toString()));
  return result;
}

/** Runs the command to its end (60 s at most). */
async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const c = cli(args, env);
  const code = await within(c.exited, `durable-agents ${args.join(' ')} to exit`, 60_000);
  return { code, stdout: c.stdout, stderr: c.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-cli-'));
const toolsFile = path.join(tmp, 'tools.json');
fs.writeFileSync(
  toolsFile,
  JSON.stringify([
    {
      type: 'heroku_tool',
      name: 'dyno_run_command',
      runtime_params: { target_app_name: 'my-app', tool_params: { cmd: 'echo hello', description: 'Says hello' } },
    },
  ]),
);
const RUN_ID = /^run (chatcmpl-[0-9a-f]{24}) /m;

describe('durable-agents run', () => {
  test('shows each model reply and tool call of the stream, then the totals; exit 0', async () => {
    const { code, stdout, stderr } = await run(['run', '-m', 'claude-4-sonnet', '--tools', toolsFile, 'CALL dyno_run_command {"a":1}']);
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines[0], '  -> dyno_run_command {"a":1}');
    assert.match(lines[1]!, /^ {2}<- dyno_run_command: /);
    assert.match(lines.at(-1)!, /^assistant: Done: /);
    assert.match(stderr, RUN_ID);
    assert.match(stderr, /^done: 3 events, \d+ tokens \(\d+ prompt, \d+ completion\)$/m);
  });

  test('resumes by itself after the API is killed mid-stream: every event once, exit 0', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The model's second call (after the tool result) waits until the API has been killed and restarted.
    stack.model.setHandler(async (req: ModelRequest) => {
      if (req.body.messages.at(-1)?.role === 'tool') await gate;
      return scriptedAgent(req);
    });
    try {
      const c = cli(['run', '-m', 'm', '--tools', toolsFile, 'CALL dyno_run_command {}']);
      await until(() => c.stdout.includes('  <- dyno_run_command'), 'the tool result to be shown');
      await stack.api.kill('SIGKILL');
      await until(() => c.stderr.includes('reconnecting: '), 'the client to notice the dropped connection');
      await stack.api.start();
      release();
      const code = await within(c.exited, 'the resumed run to end', 120_000);
      assert.equal(code, 0, c.stderr);
      const lines = c.stdout.trimEnd().split('\n');
      assert.deepEqual(
        lines.map((l) => l.replace(/: .*/s, ':')),
        ['  -> dyno_run_command {}', '  <- dyno_run_command:', 'assistant:'],
      );
      assert.match(c.stderr, /^done: 3 events, /m);
    } finally {
      release();
      stack.model.setHandler(scriptedAgent);
    }
  });

  test('prints events as JSON lines with --json; reads messages from a file', async () => {
    const messagesFile = path.join(tmp, 'messages.json');
    fs.writeFileSync(messagesFile, JSON.stringify({ messages: [{ role: 'user', content: 'from a file' }] }));
    const { code, stdout } = await run(['run', '-m', 'm', '--messages', messagesFile, '--json']);
    assert.equal(code, 0);
    const events = stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(events.length, 1);
    assert.equal(events[0].object, 'chat.completion');
    assert.equal(events[0].choices[0].message.content, 'Echo: from a file');
  });

  test('a run that fails shows its error event and exits 1', async () => {
    stack.model.setHandler(() => reply.error(400));
    try {
      const { code, stderr } = await run(['run', '-m', 'm', 'refuse me']);
      assert.equal(code, 1);
      assert.match(stderr, /^error: .+ \(\w+, \d+\)$/m);
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
  });
});

describe('durable-agents runs, show, tail, cancel', () => {
  test('tail follows a running run; cancel ends it; show and runs report it as cancelled', async () => {
    stack.model.setHandler(() => reply.hang());
    let runId: string;
    try {
      const res = await post(stack, { model: 'm', messages: [{ role: 'user', content: 'hang for the cli' }] });
      runId = res.headers.get('agent-run-id')!;
      await res.body?.cancel();
      const tail = cli(['tail', runId]);
      await until(() => stack.model.requests.some((r) => r.body.messages.at(-1)?.content === 'hang for the cli'), 'the model call to hang');

      const cancel = await run(['cancel', runId]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.equal(cancel.stdout, `${runId}: cancelling\n`);
      assert.equal(await within(tail.exited, 'tail to end with the cancel', 60_000), 1);
      assert.match(tail.stderr, /^error: .*cancel.* \(\w+, \d+\)$/im);
    } finally {
      stack.model.setHandler(scriptedAgent);
    }

    const show = await run(['show', runId]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^run {8}${runId}$`, 'm'));
    assert.match(show.stdout, /^status {5}cancelled$/m);
    assert.match(show.stdout, /^model {6}m$/m);

    const shown = JSON.parse((await run(['show', runId, '--json'])).stdout);
    assert.equal(shown.status, 'cancelled');

    // Visibility catches up with the cancel in its own time.
    await until(async () => (await run(['runs', '--status', 'cancelled'])).stdout.includes(runId), 'the run to be listed as cancelled');
    const list = await run(['runs', '--limit', '5']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^RUN +STATUS +MODEL +CREATED$/m);
    assert.match(list.stdout, new RegExp(`^${runId} +cancelled +m +\\d{4}-\\d\\d-\\d\\dT`, 'm'));
  });

  test('without AGENTS_API_KEY the key is the one `npm start` keeps in $DATA_DIR/api-key', async () => {
    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'));
    fs.writeFileSync(path.join(dataDir, 'api-key'), `${stack.apiKey}\n`);
    const { code, stdout } = await run(['runs', '--limit', '1'], { AGENTS_API_KEY: undefined, DATA_DIR: dataDir });
    assert.equal(code, 0);
    assert.match(stdout, /^RUN +STATUS/);
  });
});

describe('durable-agents errors', () => {
  test("a refused request shows Heroku's error body and exits 3", async () => {
    const wrongKey = await run(['runs'], { AGENTS_API_KEY: 'wrong-key' });
    assert.equal(wrongKey.code, 3);
    assert.equal(wrongKey.stderr, 'durable-agents: error 401 authentication_error: invalid bearer key\n');

    const noRun = await run(['show', 'chatcmpl-000000000000000000000000']);
    assert.equal(noRun.code, 3);
    assert.equal(noRun.stderr, "durable-agents: error 404 not_found_error: no run with id 'chatcmpl-000000000000000000000000'\n");

    const badBody = await run(['run', '-m', 'm', '--temperature', '7', 'hi']);
    assert.equal(badBody.code, 3);
    assert.match(badBody.stderr, /^durable-agents: error 400 invalid_request_error: .*temperature/);
  });

  test('an unreachable service exits 4 and names the URL', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const { code, stderr } = await run(['runs'], { AGENTS_URL: nobody });
    assert.equal(code, 4);
    assert.equal(stderr, `durable-agents: cannot reach ${nobody}: ECONNREFUSED\n`);
  });

  test('bad usage exits 2 and says what is wrong', async () => {
    const noModel = await run(['run', 'hi']);
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /required option '-m, --model <name>' not specified/);

    const noPrompt = await run(['run', '-m', 'm']);
    assert.equal(noPrompt.code, 2);
    assert.equal(noPrompt.stderr, 'durable-agents: nothing to ask: give a prompt or --messages <file>\n');

    const badTools = path.join(tmp, 'bad.json');
    fs.writeFileSync(badTools, '{not json');
    const notJson = await run(['run', '-m', 'm', '--tools', badTools, 'hi']);
    assert.equal(notJson.code, 2);
    assert.equal(notJson.stderr, `durable-agents: tools file ${badTools} is not valid JSON\n`);

    const noKey = await run(['runs'], { AGENTS_API_KEY: undefined, DATA_DIR: path.join(tmp, 'nowhere') });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /^durable-agents: no API key: set AGENTS_API_KEY/);

    const badUrl = await run(['runs'], { AGENTS_URL: 'localhost:3000' });
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /AGENTS_URL/);
  });
});

/**
 * code_exec_python/node/ruby/go, and dyno_run_command without Heroku, end to
 * end through POST /v1/agents/heroku: the worker runs the code for real in
 * its bubblewrap sandbox (or, with target_app_name and HEROKU_API_KEY, in the
 * Heroku double's "dyno"). The worker is started again with HEROKU_API_KEY
 * unset, with TOOL_SANDBOX=none, and with no bwrap on its PATH.
 * Needs the Debian packages bubblewrap, python3, ruby and golang-go, which
 * npm test's pretest step installs: a missing runtime fails, it is not skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findExecutable, SANDBOX_PATH } from '../../runtimes/sandbox/bubblewrap';
import { workflowInput } from '../support/history';
import { useStack } from '../support/stack';
import { getJson, post, readStream, runAgent } from '../support/sse';
import { until, within } from '../support/wait';

const ROOT = path.resolve(__dirname, '../..');
const SECRET = `worker-secret-${randomBytes(8).toString('hex')}`;

let server: net.Server;
let port = 0;
let connections = 0;

before(async () => {
  server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => undefined);
    socket.end('hello\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
after(async () => {
  await new Promise((resolve) => server?.close(resolve));
});
const stack = useStack({ workerEnv: { CODE_EXEC_TEST_SECRET: SECRET }, apiEnv: { MAX_MODEL_CALLS_PER_RUN: '4' } });

const LANGUAGES = { python: 'python3', node: 'node', ruby: 'ruby', go: 'go' } as const;
type Language = keyof typeof LANGUAGES;

const codeTool = (name: string, runtime: Record<string, unknown> = {}) => ({ type: 'heroku_tool', name, runtime_params: runtime });

interface Called {
  runId: string;
  /** The tool message's content, exactly as the client sees it. */
  content: string;
  /** What follows "Tool '<name>' returned result: ". */
  payload: string;
}

interface CallToolResult {
  content: { type: string; text: string }[];
  isError: boolean;
}

async function call(tool: string, args: unknown, runtime: Record<string, unknown> = {}): Promise<Called> {
  const res = await runAgent(stack, {
    model: 'claude-4-sonnet',
    messages: [{ role: 'user', content: `CALL ${tool} ${JSON.stringify(args)}` }],
    tools: [codeTool(tool, runtime)],
  });
  assert.equal(res.status, 200, res.raw);
  const message = res.messages.find((m) => m.object === 'tool.completion');
  assert.ok(message, res.raw);
  const content: string = message.choices[0].message.content;
  const prefix = `Tool '${tool}' returned result: `;
  assert.ok(content.startsWith(prefix), content);
  return { runId: res.headers.get('agent-run-id')!, content, payload: content.slice(prefix.length) };
}

/** The payload as the CallToolResult it must be: anything else (bare text, say) fails. */
function callToolResult(payload: string): CallToolResult {
  const result = JSON.parse(payload) as CallToolResult;
  assert.deepEqual(Object.keys(result), ['content', 'isError']);
  return result;
}

/** The tool message of one dyno_run_command call of `cmd` (in the local sandbox when the worker has no Heroku key). */
async function commandResult(cmd: string, description: string): Promise<string> {
  const res = await runAgent(stack, {
    model: 'claude-4-sonnet',
    messages: [{ role: 'user', content: 'CALL dyno_run_command {}' }],
    tools: [{ type: 'heroku_tool', name: 'dyno_run_command', runtime_params: { target_app_name: 'app', tool_params: { cmd, description } } }],
  });
  return res.messages[1].choices[0].message.content as string;
}

/** The `{returncode, stdout, stderr}` of a code_exec call, checked against its isError. */
async function exec(lang: Language, code: string, more: Record<string, unknown> = {}, runtime: Record<string, unknown> = {}) {
  const result = callToolResult((await call(`code_exec_${lang}`, { code, ...more }, runtime)).payload);
  assert.equal(result.content.length, 1);
  assert.equal(result.content[0]!.type, 'text');
  const execution = JSON.parse(result.content[0]!.text) as { returncode: number; stdout: string; stderr: string };
  assert.deepEqual(Object.keys(execution), ['returncode', 'stdout', 'stderr']);
  assert.equal(result.isError, execution.returncode !== 0);
  return execution;
}

const HELLO: Record<Language, string> = {
  python: 'import sys\nprint("hello from python", sys.version_info[0])\nprint("to stderr", file=sys.stderr)',
  node: 'console.log("hello from node", typeof require("fs").readFileSync)\nconsole.error("to stderr")',
  ruby: 'puts "hello from ruby #{1 + 1}"\nwarn "to stderr"',
  go: `package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	b, _ := json.Marshal(map[string]int{"go": 1})
	fmt.Println("hello from go", string(b))
	fmt.Fprintln(os.Stderr, "to stderr")
}
`,
};
const HELLO_OUT: Record<Language, string> = {
  python: 'hello from python 3\n',
  node: 'hello from node function\n',
  ruby: 'hello from ruby 2\n',
  go: 'hello from go {"go":1}\n',
};

describe('code_exec_* in the local sandbox', () => {
  test('every runtime is installed where the sandbox looks (npm test installs them)', () => {
    const missing = Object.values(LANGUAGES).filter((binary) => !findExecutable(binary, SANDBOX_PATH));
    assert.deepEqual(
      missing,
      [],
      `not on the sandbox's PATH (${SANDBOX_PATH}): ${missing.join(', ')}; run bash test/support/ensure-system-deps.sh as root`,
    );
  });

  for (const lang of Object.keys(LANGUAGES) as Language[]) {
    test(`code_exec_${lang} runs the code and answers {returncode, stdout, stderr}`, async () => {
      // Go's first call on a fresh worker also compiles the standard library: ttl 120.
      const { content } = await call(`code_exec_${lang}`, { code: HELLO[lang] });
      const text = JSON.stringify({ returncode: 0, stdout: HELLO_OUT[lang], stderr: 'to stderr\n' });
      assert.equal(content, `Tool 'code_exec_${lang}' returned result: ${JSON.stringify({ content: [{ type: 'text', text }], isError: false })}`);
    });
  }

  // How fast a warm Go build is: `npm run bench` measures it.
  test('a second Go call runs from the build cache the first one made', async () => {
    const r = await exec('go', 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(6 * 7) }\n', {}, { ttl_seconds: 60 });
    assert.deepEqual(r, { returncode: 0, stdout: '42\n', stderr: '' });
  });

  test('a failing program is an isError result with its returncode and stderr', async () => {
    const r = await exec('python', 'print("before")\nraise ValueError("boom")');
    assert.equal(r.returncode, 1);
    assert.equal(r.stdout, 'before\n');
    assert.match(r.stderr, /ValueError: boom\n$/);
    const compile = await exec('go', 'package main\n\nfunc main() { undefined() }\n', {}, { ttl_seconds: 60 });
    assert.equal(compile.returncode, 1);
    assert.match(compile.stderr, /undefined: undefined/);
  });

  test('the code cannot reach the network, not even a server on the host loopback', async () => {
    const before = connections;
    const r = await exec(
      'python',
      `import socket
try:
    socket.create_connection(("127.0.0.1", ${port}), timeout=3)
    print("connected")
except OSError as e:
    print("no network:", e)`,
    );
    assert.match(r.stdout, /^no network: /);
    const viaNode = await exec(
      'node',
      `require("net").connect(${port}, "127.0.0.1")
        .on("connect", () => console.log("connected"))
        .on("error", (e) => console.log("no network:", e.code))`,
    );
    assert.match(viaNode.stdout, /^no network: (ENETUNREACH|ECONNREFUSED)\n$/);
    assert.equal(connections, before);
  });

  test("the code cannot read the worker's environment", async () => {
    const r = await exec(
      'python',
      `import os, glob
print(sorted(os.environ))
for f in glob.glob("/proc/*/environ"):
    print(open(f, "rb").read())`,
    );
    assert.ok(!r.stdout.includes(SECRET), r.stdout);
    assert.match(r.stdout, /^\['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR', 'TOOL_CALL_ID'\]\n/);
    assert.ok(!stack.worker.output.includes(SECRET));
  });

  test('the code cannot write outside its temp dir, and sees no home, work or project dir', async () => {
    const r = await exec(
      'ruby',
      `["/etc", "/usr", "/var", "/root", "${ROOT}", "/tmp"].each do |d|
  begin
    File.write("#{d}/x-#{Process.pid}", "x")
    puts "wrote #{d}"
  rescue SystemCallError => e
    puts "refused #{d}: #{e.class}"
  end
end
puts Dir.exist?("${ROOT}"), Dir.exist?("/var"), Dir.exist?("/home")`,
    );
    assert.equal(r.returncode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^refused \/etc: Errno::EROFS$/);
    assert.match(lines[1]!, /^refused \/usr: Errno::EROFS$/);
    for (const line of lines.slice(2, 5)) assert.match(line, /^refused .*: Errno::(ENOENT|EROFS)$/);
    assert.equal(lines[5], 'wrote /tmp');
    assert.deepEqual(lines.slice(6), ['false', 'false', 'false', '']);
  });

  test('no process outlives the call', async () => {
    const marker = `code-exec-marker-${randomBytes(6).toString('hex')}`;
    const r = await exec(
      'node',
      `require("child_process").spawn("sh", ["-c", "sleep 1000; echo ${marker}"], { detached: true, stdio: "ignore" }).unref()
console.log("spawned")`,
    );
    assert.equal(r.stdout, 'spawned\n');
    assert.equal(spawnSync('pgrep', ['-f', marker]).status, 1, 'no process with the marker is left');
  });

  test('the ttl stops the code: returncode 124 and a stderr that says so', async () => {
    const marker = `code-exec-marker-${randomBytes(6).toString('hex')}`;
    const started = Date.now();
    const code = `import subprocess, time
subprocess.Popen(["sh", "-c", "sleep 1000; echo ${marker}"])
print("working", flush=True)
while True:
    time.sleep(0.1)`;
    const r = await exec('python', code, {}, { ttl_seconds: 2 });
    assert.deepEqual(r, { returncode: 124, stdout: 'working\n', stderr: '[timed out after 2s: the process was stopped]' });
    assert.ok(Date.now() - started < 15_000);
    assert.equal(spawnSync('pgrep', ['-f', marker]).status, 1);
  });

  test('cancelling the run kills the sandboxed process and all it started, within seconds', async () => {
    const marker = `code-exec-marker-${randomBytes(6).toString('hex')}`;
    const code = `import subprocess, time
subprocess.Popen(["sh", "-c", "sleep 1000; echo ${marker}"])
print("working", flush=True)
time.sleep(1000)`;
    const res = await post(stack, {
      model: 'claude-4-sonnet',
      messages: [{ role: 'user', content: `CALL code_exec_python ${JSON.stringify({ code })}` }],
      tools: [codeTool('code_exec_python', { ttl_seconds: 120 })],
    });
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    const running = () => spawnSync('pgrep', ['-f', marker]).status === 0;
    await until(running, 'the sandboxed process to start', 30_000);

    const cancelled = Date.now();
    assert.equal((await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' })).status, 202);
    const stream = await within(reading, 'the stream to end after the cancel', 30_000);
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['message', 'error', 'done'],
    );
    assert.equal(JSON.parse(stream.frames[1]!.data).error.type, 'cancelled');
    await until(() => !running(), 'the sandboxed processes to be gone', 30_000);
    // Well inside the ttl (120 s): the cancel, not the ttl, ended them.
    assert.ok(Date.now() - cancelled < 20_000, `gone ${Date.now() - cancelled} ms after the cancel`);
  });

  test('output beyond 64 KiB per stream is cut, with a note', async () => {
    const r = await exec('python', 'import sys\nprint("a" * 100000)\nprint("b" * 10, file=sys.stderr)');
    assert.equal(r.stdout, `${'a'.repeat(65536)}\n[stdout truncated to 65536 bytes]`);
    assert.equal(r.stderr, 'bbbbbbbbbb\n');
    assert.equal(r.returncode, 0);
  });

  test('packages cannot be installed without network: returncode 1, the reason in stderr, nothing run', async () => {
    const r = await exec('python', 'print("ran")', { packages: ['requests', 'numpy==2.0'] });
    assert.deepEqual(r, {
      returncode: 1,
      stdout: '',
      stderr:
        "packages cannot be installed: this code runs in the worker's local sandbox, which has no network access (asked for: requests, numpy==2.0). " +
        'The code was not run; call again without "packages" to use what is installed on the worker.',
    });
  });

  test('a call that fills /tmp is told which limit it ran into and how it is set', async () => {
    const code = `import os
fd = os.open("/tmp/big", os.O_WRONLY | os.O_CREAT)
try:
    for _ in range(300):
        os.write(fd, b"\\0" * (1 << 20))
except OSError as e:
    print("stopped:", e.strerror)`;
    const r = await exec('python', code);
    assert.deepEqual(r, {
      returncode: 0,
      stdout: 'stopped: No space left on device\n',
      stderr: '[/tmp is full: it holds at most 256 MiB (SANDBOX_TMP_MB)]',
    });
  });

  test('arguments are validated against the schema before anything runs', async () => {
    const missingCode = await call('code_exec_node', { packages: [] });
    // Refusals before anything runs are plain text, not a CallToolResult.
    assert.match(missingCode.content, /^Tool 'code_exec_node' returned result: Error: invalid arguments: .*code/);
    const option = await call('code_exec_node', { code: '1', packages: ['--registry=http://evil'] });
    assert.match(option.content, /Error: invalid arguments: .*packages\/0 must match pattern/);
  });

  // The retry itself, after a worker crash: test/e2e/crash.test.ts.
  test('sandboxed calls are classed idempotent (retried), calls in a dyno side-effecting (never retried)', async () => {
    const local = await call('code_exec_ruby', { code: 'puts 1' });
    assert.equal((await workflowInput(stack.client, local.runId)).tools[0].sideEffect, 'idempotent');
    const dyno = await call('code_exec_ruby', { code: 'puts 1' }, { target_app_name: 'my-app' });
    assert.equal((await workflowInput(stack.client, dyno.runId)).tools[0].sideEffect, 'side-effecting');
  });
});

describe('code_exec_* in a one-off dyno (HEROKU_API_KEY set and target_app_name given)', () => {
  test('the code travels in TOOL_CODE, never in the command; the output comes back as stdout', async () => {
    const code = 'import os\nprint("in the dyno: $(id) `x` \'q\' ;")\nprint(os.environ["TOOL_CALL_ID"].split(":")[1])';
    const before = stack.heroku.creates.length;
    const r = await exec('python', code, {}, { target_app_name: 'my-app', ttl_seconds: 30 });
    assert.deepEqual(r, { returncode: 0, stdout: "in the dyno: $(id) `x` 'q' ;\n0\n", stderr: '' });
    const create = stack.heroku.creates[before]!;
    assert.equal(create.app, 'my-app');
    assert.equal(create.body.env.TOOL_CODE, code);
    assert.equal(create.body.env.TOOL_PACKAGES, '');
    assert.equal(create.body.command.includes('in the dyno'), false);
    assert.equal(create.body.time_to_live, 30);
    // Nothing of the worker's environment: exactly the tool's variables.
    assert.deepEqual(Object.keys(create.body.env).sort(), ['TOOL_CALL_ID', 'TOOL_CODE', 'TOOL_PACKAGES']);
    const dyno = stack.heroku.dynos().find((d) => d.env.TOOL_CALL_ID === create.body.env.TOOL_CALL_ID);
    assert.deepEqual(dyno?.env, create.body.env);
  });

  test('a failing program in a dyno reports its exit status', async () => {
    const r = await exec('ruby', 'warn "oops"\nexit 7', {}, { target_app_name: 'my-app' });
    assert.deepEqual(r, { returncode: 7, stdout: 'oops\n', stderr: '' });
  });
});

describe('dyno_run_command without a Heroku API key', () => {
  before(async () => {
    await stack.worker.kill('SIGTERM');
    await stack.worker.start({ HEROKU_API_KEY: '' });
  });

  test('runs the command in the local sandbox, with the model arguments in its environment', async () => {
    const before = stack.heroku.creates.length;
    const res = await runAgent(stack, {
      model: 'claude-4-sonnet',
      messages: [{ role: 'user', content: `CALL dyno_run_command {"who":"$(id) world"}` }],
      tools: [
        {
          type: 'heroku_tool',
          name: 'dyno_run_command',
          runtime_params: {
            target_app_name: 'ignored-app',
            tool_params: {
              cmd: 'echo "who=$TOOL_ARG_WHO"; echo "on $(hostname)" >&2; ls /var 2>/dev/null || echo "no /var"; exit 3',
              description: 'Greets',
              parameters: { type: 'object', properties: { who: { type: 'string' } }, required: ['who'] },
            },
          },
        },
      ],
    });
    assert.equal(
      res.messages[1].choices[0].message.content,
      "Tool 'dyno_run_command' returned result: who=$(id) world\non sandbox\nno /var\n[exit status 3]",
    );
    assert.equal(stack.heroku.creates.length, before, 'no dyno was asked for');
  });
});

describe('dyno_run_command in the local sandbox at its memory limit (still without a Heroku API key)', () => {
  test('the process is killed, and the result names the limit and its setting', async () => {
    assert.equal(
      await commandResult('python3 -c "x = bytearray(2 << 30)"', 'Takes 2 GiB'),
      "Tool 'dyno_run_command' returned result: Killed\n[exit status 137]\n" +
        "[memory limit: the call's processes together may use 1024 MiB, /tmp included (SANDBOX_MEMORY_MB); a process that went past it was killed]",
    );
  });
});

describe('a worker without a Go build cache yet', () => {
  let tmp = '';
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'code-exec-tmpdir-'));
    fs.chmodSync(tmp, 0o755); // the Go cache is kept here, and the sandbox (nobody) binds it by path
    await stack.worker.kill('SIGTERM');
    await stack.worker.start({ TMPDIR: tmp });
  });
  // The cache build goes on in the background while the folder is removed: retry until it is quiet.
  after(() => fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 20, retryDelay: 250 }));

  test('a Go call whose ttl ends while the cache is being built says so and runs nothing', async () => {
    const r = await exec('go', 'package main\n\nfunc main() {}\n', {}, { ttl_seconds: 2 });
    assert.equal(r.returncode, 124);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^\[timed out after 2s\] Preparing Go's build cache \(the first Go call on this worker compiles the standard library\)/);
    assert.match(r.stderr, /goes on in the background: try again shortly. The code was not run.$/);
  });
});

describe('TOOL_SANDBOX=none', () => {
  before(async () => {
    await stack.worker.kill('SIGTERM');
    await stack.worker.start({ TOOL_SANDBOX: 'none' });
  });

  test('runs the code without a sandbox, with a clean environment, and the worker log says so', async () => {
    const r = await exec('node', 'console.log(Object.keys(process.env).sort().join(" "), process.cwd() === process.env.HOME)');
    assert.equal(r.stdout, 'HOME LANG PATH PWD TMPDIR TOOL_CALL_ID true\n');
    assert.match(stack.worker.output, /TOOL_SANDBOX=none: commands and code of tools run on the worker host WITHOUT a sandbox/);
    const packages = await exec('node', '1', { packages: ['left-pad'] });
    assert.match(packages.stderr, /^packages cannot be installed: this code runs on the worker host, where tools do not install packages/);
  });
});

describe('a worker whose sandbox cannot be set up', () => {
  before(async () => {
    await stack.worker.kill('SIGTERM');
    await stack.worker.start({ PATH: '/nonexistent-bin', HEROKU_API_KEY: '' }); // no bwrap to be found
  });

  test('runs nothing and says why, for code and for commands', async () => {
    const before = connections;
    const { payload } = await call('code_exec_python', { code: `import socket\nsocket.create_connection(("127.0.0.1", ${port}))` });
    assert.deepEqual(callToolResult(payload), {
      content: [
        {
          type: 'text',
          text:
            "the local sandbox could not be set up, so nothing was run: bubblewrap is not installed: there is no 'bwrap' on the worker's PATH. " +
            'Install bubblewrap on the worker (Debian/Ubuntu: apt-get install bubblewrap), with user namespaces allowed; or set TOOL_SANDBOX=none to run tools without a sandbox.',
        },
      ],
      isError: true,
    });
    assert.equal(connections, before, 'the code did not run unsandboxed');

    assert.equal(
      await commandResult('echo hi', 'Says hi'),
      "Tool 'dyno_run_command' returned result: Error: the local sandbox could not be set up, so nothing was run: bubblewrap is not installed: there is no 'bwrap' on the worker's PATH. " +
        'Install bubblewrap on the worker (Debian/Ubuntu: apt-get install bubblewrap), with user namespaces allowed; or set TOOL_SANDBOX=none to run tools without a sandbox.',
    );
  });
});

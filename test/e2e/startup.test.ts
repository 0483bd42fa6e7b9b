/**
 * Start-up that tells the truth: the worker (alone, or inside `npm start`)
 * asks the model API once whether it answers and logs which URL it asked
 * (never the key); without INFERENCE_KEY nothing that looks like a key goes
 * upstream; a model call that cannot reach the API says which URL it tried;
 * a missing bubblewrap is reported at start with the command that installs it.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort } from '../../dev/dev-server';
import { locateTemporalCli } from '../../dev/temporal-cli';
import { startModelServer } from '../doubles/model-server';
import { logLines, theLine } from '../support/logs';
import { ServiceProcess, useStack } from '../support/stack';
import { runAgent } from '../support/sse';

const stack = useStack();
const TEST_TIMEOUT = { timeout: 120_000 };
const ask = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });

/** Runs `body` with `replacement` as the only worker of the stack, then puts the stack's own worker back. */
async function withOnlyWorker(env: NodeJS.ProcessEnv, body: (worker: ServiceProcess) => Promise<void>): Promise<void> {
  await stack.worker.kill();
  const replacement = await stack.addWorker(env);
  try {
    await body(replacement);
  } finally {
    await replacement.kill();
    await stack.worker.start();
  }
}

describe('the worker at start', () => {
  test('asks the model API once, with the key, and logs the URL that answered', () => {
    const line = theLine(logLines(stack.worker.output), /^the model API answered at /);
    assert.equal(line.level, 'info');
    assert.equal(line.url, `${stack.model.url}/v1/models`);
    assert.equal(line.status, 200);
    assert.equal(stack.model.modelListRequests.length, 1);
    assert.equal(stack.model.modelListRequests[0]!.authorization, `Bearer ${stack.model.key}`);
  });

  test('says when the model API does not answer, naming the URL; a run then fails naming the URL it tried', TEST_TIMEOUT, async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    await withOnlyWorker({ INFERENCE_URL: nobody }, async (worker) => {
      const line = theLine(logLines(worker.output), /^the model API at /);
      assert.equal(line.level, 'warn');
      assert.equal(line.url, `${nobody}/v1/models`);
      assert.match(line.msg, /did not answer \(.+\): model calls fail until it does; set INFERENCE_URL/);

      const res = await runAgent(stack, ask('anyone there?'));
      assert.deepEqual(
        res.frames.map((f) => f.event),
        ['error', 'done'],
      );
      assert.deepEqual(JSON.parse(res.frames[0]!.data).error, {
        code: 502,
        type: 'upstream_error',
        message: `the upstream model API (${nobody}/v1/chat/completions) could not be reached or gave an unreadable answer: Connection error.`,
      });
    });
  });

  test('without INFERENCE_KEY sends no Authorization header, neither in its check nor in model calls', TEST_TIMEOUT, async () => {
    const keyless = await startModelServer({ open: true });
    try {
      await withOnlyWorker({ INFERENCE_URL: keyless.url, INFERENCE_KEY: '' }, async (worker) => {
        assert.equal(theLine(logLines(worker.output), /^the model API answered at /).url, `${keyless.url}/v1/models`);
        const res = await runAgent(stack, ask('no key'));
        assert.equal(res.messages[0].choices[0].message.content, 'Echo: no key');
        assert.equal(keyless.modelListRequests.length, 1);
        assert.equal(keyless.requests.length, 1);
        for (const headers of [keyless.modelListRequests[0]!, keyless.requests[0]!.headers]) {
          assert.equal(headers.authorization, undefined, JSON.stringify(headers));
        }
      });
    } finally {
      await keyless.close();
    }
  });
});

test(
  'npm start: JSON lines, the model API check, a missing bubblewrap with its install command, the key only in its file',
  TEST_TIMEOUT,
  async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-start-'));
    const emptyPath = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-path-')); // no bwrap on it
    after(() => {
      for (const dir of [dataDir, emptyPath]) fs.rmSync(dir, { recursive: true, force: true });
    });
    const env = {
      PATH: emptyPath,
      HOME: process.env.HOME,
      DATA_DIR: dataDir,
      PORT: String(await freePort()),
      TEMPORAL_DEV_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      TEMPORAL_CLI_PATH: await locateTemporalCli(),
      INFERENCE_URL: stack.model.url,
      INFERENCE_KEY: stack.model.key,
    };
    const service = new ServiceProcess('npm start', 'service/start.ts', () => env, /"msg":"API listening on /);
    await service.start();
    try {
      const lines = logLines(service.output);
      const bubblewrap = theLine(lines, /^the local sandbox cannot run tools: bubblewrap is not installed/);
      assert.equal(bubblewrap.level, 'warn');
      assert.match(bubblewrap.msg, /\(Debian\/Ubuntu: apt-get install bubblewrap\)/);
      assert.equal(theLine(lines, /^the model API answered at /).url, `${stack.model.url}/v1/models`);
      const ready = theLine(lines, /^API listening on /);
      assert.equal(ready.url, `http://localhost:${env.PORT}`);
      assert.equal(ready.apiKeyFile, path.join(dataDir, 'api-key'));
      const key = fs.readFileSync(path.join(dataDir, 'api-key'), 'utf8').trim();
      assert.match(key, /^da_/);
      assert.equal(service.output.includes(key), false, 'the generated key reached the log');
      assert.equal(service.output.includes(stack.model.key), false, 'INFERENCE_KEY reached the log');
      // The embedded server's SQLite file is safe against a crash of any process (README, Durability).
      assert.match(fs.readFileSync(path.join(dataDir, 'temporal.log'), 'utf8'), /--sqlite-pragma synchronous=NORMAL /);
    } finally {
      assert.deepEqual(await service.kill('SIGTERM'), { code: 0, signal: null });
    }
    assert.ok(logLines(service.output).some((l) => l.msg === 'SIGTERM: shutting down'));
  },
);

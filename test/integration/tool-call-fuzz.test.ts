/**
 * Property-based fuzzing of the tool-call path (fast-check): thousands of
 * malformed arguments, as a model could send them, through the tool activity
 * and the real runners (the bubblewrap sandbox, the database and web tools).
 * Each call ends, within its ttl, in a readable tool result; none throws.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { jsonValue, text, withCause } from '../support/fuzz';
import { createToolRunner } from '../../activities/run-tool';
import { JsonSchemas } from '../../catalog/json-schema';
import { resolveTools } from '../../catalog/resolve-tools';
import { workerConfig } from '../../common/config';
import type { ResolvedTool, ToolCallInput, ToolCallResult } from '../../contract/run-contract';
import { toolObjectSchema } from '../../contract/request-schema';
import { McpPool } from '../../mcp/pool';
import { createRunners } from '../../runners/registry';
import { CommandRuntime } from '../../runtimes/command-runtime';
import { DocumentConverter } from '../../runtimes/documents/converter';
import { ReadOnlyDatabases } from '../../runtimes/postgres/session';
import { openSandbox, sandboxSettings } from '../support/sandbox';

const TTL_SECONDS = 5;
const log = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  trace: () => undefined,
  log: () => undefined,
};
const config = workerConfig({});
const mcp = McpPool.fromFile(undefined, log);
const converter = new DocumentConverter(config.converter);
const databases = new ReadOnlyDatabases(config.postgres);
after(() => Promise.all([mcp.close(), converter.close(), databases.close()]));

/** The tool activity with the real runners, as a worker builds them (no Heroku token: commands run in the sandbox). */
async function toolActivity() {
  const runners = createRunners({
    commands: new CommandRuntime(await openSandbox(sandboxSettings('bubblewrap')), undefined),
    databases,
    fetchAllowHosts: [],
    web: config.web,
    converter,
    mcp,
  });
  return createToolRunner(runners, new JsonSchemas(config.toolSchemas));
}

async function tools(): Promise<ResolvedTool[]> {
  const runtime = { ttl_seconds: TTL_SECONDS, max_calls: 100 };
  const objects = [
    {
      type: 'heroku_tool',
      name: 'dyno_run_command',
      runtime_params: {
        ...runtime,
        target_app_name: 'app',
        tool_params: {
          cmd: 'printf %s "$TOOL_ARGUMENTS" | head -c 200',
          description: 'd',
          parameters: {
            type: 'object',
            properties: { n: { type: 'integer' }, s: { type: 'string', maxLength: 20 } },
            required: ['n'],
            additionalProperties: false,
          },
        },
      },
    },
    { type: 'heroku_tool', name: 'postgres_run_query', runtime_params: { ...runtime, tool_params: { db_attachment: 'NO_SUCH' } } },
    { type: 'heroku_tool', name: 'postgres_get_schema', runtime_params: { ...runtime, tool_params: { db_attachment: 'NO_SUCH' } } },
    { type: 'heroku_tool', name: 'html_to_markdown', runtime_params: runtime },
    { type: 'heroku_tool', name: 'pdf_to_markdown', runtime_params: runtime },
    { type: 'heroku_tool', name: 'code_exec_python', runtime_params: runtime },
  ];
  return resolveTools(
    objects.map((o) => toolObjectSchema.parse(o)),
    {
      mcp: { pool: mcp, maxTtlSeconds: 120 },
      schemas: new JsonSchemas(config.toolSchemas),
      limits: { herokuApps: [], dynoSizes: [], maxToolCalls: 100, maxApprovalTimeoutSeconds: 30 * 86_400 },
    },
  );
}

/** What a confused or hostile model may send as a call's arguments string. */
const args = fc.oneof(
  text,
  jsonValue.map((v) => JSON.stringify(v) ?? ''),
  fc
    .record({ n: jsonValue, s: jsonValue, query: jsonValue, url: jsonValue, code: jsonValue, packages: jsonValue }, { requiredKeys: [] })
    .map((v) => JSON.stringify(v)),
  fc.nat({ max: 5000 }).map((depth) => `{"n":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.constantFrom(
    '{"n":1e400}',
    '{"n":-0}',
    '{"__proto__":{"n":1}}',
    '{"n":1,"n":"x"}',
    '\u0000',
    '{"url":"file:///etc/passwd"}',
    '{"url":"http://169.254.169.254/"}',
  ),
);

describe('fuzzing the tool activity', () => {
  test('thousands of malformed arguments: every call ends in a readable result, in time', async () => {
    const resolved = await tools();
    const activity = await toolActivity();
    let calls = 0;
    await fc
      .assert(
        fc.asyncProperty(fc.nat({ max: resolved.length - 1 }), args, async (which, a) => {
          const tool = resolved[which]!;
          const input: ToolCallInput = { runId: 'chatcmpl-fuzz', callKey: `chatcmpl-fuzz:${calls++}`, tool, arguments: a };
          const started = Date.now();
          const result = await new MockActivityEnvironment().run<[ToolCallInput], ToolCallResult, typeof activity>(activity, input);
          assert.equal(typeof result.payload, 'string');
          assert.ok(result.payload.length > 0, `${tool.name} ${JSON.stringify(a)}: an empty result`);
          // Three times the ttl: room for a loaded machine, and still far from a hang.
          assert.ok(Date.now() - started < 3 * TTL_SECONDS * 1000, `${tool.name} ${JSON.stringify(a)} took ${Date.now() - started} ms`);
        }),
        { numRuns: 3000, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: false },
      )
      .catch(withCause);
    assert.ok(calls >= 1000, `only ${calls} calls within the time limit`);
  });
});

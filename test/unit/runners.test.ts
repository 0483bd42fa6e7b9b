/** The runner registry: every catalogued tool can run on a worker, and MCP tools answer with CallToolResults. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOOL_SPECS } from '../../catalog/resolve-tools';
import type { ResolvedTool } from '../../contract/run-contract';
import { McpPool } from '../../mcp/pool';
import { createRunners } from '../../runners/registry';
import { workerConfig } from '../../common/config';
import { CommandRuntime } from '../../runtimes/command-runtime';
import { LocalSandbox } from '../../runtimes/sandbox/local-sandbox';
import { DocumentConverter } from '../../runtimes/documents/converter';
import { ReadOnlyDatabases } from '../../runtimes/postgres/session';

const runners = createRunners({
  commands: new CommandRuntime(
    new LocalSandbox(
      workerConfig({}).sandbox,
      { kind: 'unavailable', problem: 'not opened in unit tests', remedy: '' },
      { info: () => {}, warn: () => {} },
    ),
  ),
  databases: new ReadOnlyDatabases(workerConfig({}).postgres),
  fetchAllowHosts: [],
  web: workerConfig({}).web,
  converter: new DocumentConverter(workerConfig({}).converter), // starts no process until a conversion
  mcp: McpPool.fromFile(undefined, { info: () => {}, warn: () => {} }),
});

const resolved = (name: string, type: ResolvedTool['type'] = 'heroku_tool'): ResolvedTool => ({
  name,
  type,
  sideEffect: 'read-only',
  function: { name, description: '', parameters: { type: 'object' } },
  runtime: { dyno_size: 'standard-1x', ttl_seconds: 5, max_calls: 3, tool_params: {} },
});

test('every tool of the catalogue has a runner, answering in its spec’s format', () => {
  for (const spec of TOOL_SPECS) assert.equal(runners(resolved(spec.name))?.payload, spec.payload, spec.name);
});

test('MCP tools go to the MCP client; unknown heroku_tools have no runner', () => {
  assert.equal(runners(resolved('files/read', 'mcp'))?.payload, 'call-tool-result');
  assert.equal(runners(resolved('no_such_tool')), undefined);
});

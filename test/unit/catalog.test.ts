/**
 * The tool catalogue on its own: how a request's tools become the
 * ResolvedTools the workflow gets, and the 400 message for each mistake. MCP
 * tools are resolved against an in-memory list of servers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { JsonSchemas } from '../../catalog/json-schema';
import type { McpServerListing, McpToolCatalog } from '../../catalog/mcp-tools';
import { resolveTools, TOOL_SPECS } from '../../catalog/resolve-tools';
import { ToolValidationError } from '../../catalog/tool-spec';
import { apiConfig } from '../../common/config';
import { toolObjectSchema } from '../../contract/request-schema';

const servers: McpServerListing[] = [
  {
    namespace: 'files',
    error: null,
    tools: [
      {
        name: 'read',
        description: 'Reads a file',
        inputSchema: { type: 'object', properties: { path: { type: 'string' } } },
        annotations: { readOnlyHint: true },
      },
      { name: 'write', inputSchema: { type: 'object' } },
      { name: 'grep', inputSchema: { type: 'object', properties: { re: { type: 'string', pattern: '(\\w+)\\1' } } } },
    ],
  },
  { namespace: 'other', error: null, tools: [{ name: 'write', inputSchema: { type: 'object' }, annotations: { idempotentHint: true } }] },
];
let refreshes = 0;
const mcp: McpToolCatalog = {
  pool: { servers, server: (ns) => servers.find((s) => s.namespace === ns), refresh: () => Promise.resolve(void refreshes++) },
  maxTtlSeconds: 300,
};
const noMcp: McpToolCatalog = { pool: { servers: [], server: () => undefined, refresh: () => Promise.resolve() }, maxTtlSeconds: 120 };

/** Tool objects as the API has parsed them. */
const parse = (tools: unknown[]) => tools.map((t) => toolObjectSchema.parse(t));
const schemas = new JsonSchemas(apiConfig({}).toolSchemas);
const resolve = (tools: unknown[], catalog = mcp) =>
  resolveTools(parse(tools), {
    mcp: catalog,
    schemas,
    limits: { herokuApps: [], dynoSizes: [], maxToolCalls: 100, maxApprovalTimeoutSeconds: 30 * 86_400 },
  });

async function refusal(tools: unknown[], catalog = mcp): Promise<string> {
  const err = await resolve(tools, catalog).then(
    () => assert.fail('the tools were accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ToolValidationError, String(err));
  return err.message;
}

const dyno = {
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'app', tool_params: { cmd: 'date', description: 'Tells the date' } },
};

describe('heroku tools', () => {
  test('defaults are applied once: ttl 120, max_calls 3, standard-1x; the model sees the tool function', async () => {
    const [tool] = await resolve([dyno]);
    assert.deepEqual(tool, {
      name: 'dyno_run_command',
      type: 'heroku_tool',
      sideEffect: 'side-effecting',
      function: { name: 'dyno_run_command', description: 'Tells the date', parameters: { type: 'object', properties: {}, required: [] } },
      runtime: {
        target_app_name: 'app',
        dyno_size: 'standard-1x',
        ttl_seconds: 120,
        max_calls: 3,
        tool_params: { cmd: 'date', description: 'Tells the date', parameters: { type: 'object', properties: {}, required: [] } },
      },
    });
  });

  test('code_exec is idempotent in the sandbox and side-effecting in a dyno', async () => {
    const [local, remote] = await resolve([
      { type: 'heroku_tool', name: 'code_exec_python' },
      { type: 'heroku_tool', name: 'code_exec_node', runtime_params: { target_app_name: 'app' } },
    ]);
    assert.equal(local?.sideEffect, 'idempotent');
    assert.equal(remote?.sideEffect, 'side-effecting');
  });

  test('every catalogued tool has a unique name', () => {
    const names = TOOL_SPECS.map((s) => s.name);
    assert.equal(new Set(names).size, names.length);
  });

  const cases: [string, unknown[], string][] = [
    ['an unknown name', [{ type: 'heroku_tool', name: 'shell' }], "tools[0].name 'shell' is not a known heroku_tool; known: "],
    [
      'a missing app',
      [{ ...dyno, runtime_params: { tool_params: dyno.runtime_params.tool_params } }],
      'tools[0].runtime_params.target_app_name is required for dyno_run_command',
    ],
    [
      'a ttl above 120',
      [{ ...dyno, runtime_params: { ...dyno.runtime_params, ttl_seconds: 121 } }],
      'tools[0].runtime_params.ttl_seconds must be an integer between 1 and 120',
    ],
    [
      'a missing cmd',
      [{ ...dyno, runtime_params: { target_app_name: 'app', tool_params: { description: 'x' } } }],
      'tools[0].runtime_params.tool_params.cmd is required',
    ],
    [
      'a schema that is not an object',
      [{ ...dyno, runtime_params: { target_app_name: 'app', tool_params: { cmd: 'x', description: 'x', parameters: { type: 'string' } } } }],
      'tools[0].runtime_params.tool_params.parameters must describe an object (type "object")',
    ],
    [
      'tool_params for a tool that takes none',
      [{ type: 'heroku_tool', name: 'html_to_markdown', runtime_params: { tool_params: { depth: 2 } } }],
      'tools[0].runtime_params.tool_params.depth is not a parameter of this tool: it takes no tool_params',
    ],
    [
      'a bad attachment name',
      [{ type: 'heroku_tool', name: 'postgres_run_query', runtime_params: { tool_params: { db_attachment: 'database_url' } } }],
      'tools[0].runtime_params.tool_params.db_attachment must be an attachment name',
    ],
    [
      'a parameters schema over TOOL_SCHEMA_MAX_BYTES',
      [
        {
          ...dyno,
          runtime_params: {
            ...dyno.runtime_params,
            tool_params: { cmd: 'x', description: 'x', parameters: { type: 'object', description: 'x'.repeat(40_000) } },
          },
        },
      ],
      "tools[0].runtime_params.tool_params.parameters is larger than 32768 bytes of JSON, this server's limit (TOOL_SCHEMA_MAX_BYTES)",
    ],
    [
      'a parameters schema that is not a JSON Schema',
      [
        {
          ...dyno,
          runtime_params: { ...dyno.runtime_params, tool_params: { cmd: 'x', description: 'x', parameters: { type: 'object', required: 'a' } } },
        },
      ],
      'tools[0].runtime_params.tool_params.parameters is not a valid JSON Schema: schema is invalid: data/required must be array',
    ],
    ['a duplicate', [dyno, dyno], "tools[1].name 'dyno_run_command' is a duplicate: tool names must be unique"],
  ];
  for (const [what, tools, message] of cases) {
    test(`refuses ${what}, naming the field`, async () => {
      assert.ok((await refusal(tools)).startsWith(message), message);
    });
  }
});

describe('mcp tools', () => {
  test('a namespaced name takes the server’s schema, description and side-effect class', async () => {
    const [tool] = await resolve([{ type: 'mcp', name: 'files/read' }]);
    assert.deepEqual(tool, {
      name: 'files/read',
      type: 'mcp',
      sideEffect: 'read-only',
      function: { name: 'files/read', description: 'Reads a file', parameters: { type: 'object', properties: { path: { type: 'string' } } } },
      runtime: { dyno_size: 'standard-1x', ttl_seconds: 120, max_calls: 3, tool_params: {} },
    });
  });

  test('a bare name that only one server has is namespaced; without hints a tool is side-effecting', async () => {
    const [read] = await resolve([{ type: 'mcp', name: 'read', runtime_params: { ttl_seconds: 300 } }]);
    assert.equal(read?.name, 'files/read');
    assert.equal(read?.runtime.ttl_seconds, 300);
    const [write] = await resolve([{ type: 'mcp', name: 'files/write' }]);
    assert.equal(write?.sideEffect, 'side-effecting');
  });

  test('an unknown tool makes the catalogue list the servers again once', async () => {
    const before = refreshes;
    assert.match(await refusal([{ type: 'mcp', name: 'files/delete' }]), /MCP server 'files' has no tool 'delete'/);
    assert.equal(refreshes, before + 1);
  });

  const cases: [string, unknown[], string, McpToolCatalog?][] = [
    [
      'an ambiguous bare name',
      [{ type: 'mcp', name: 'write' }],
      "tools[0].name 'write' is ambiguous: it matches files/write, other/write; use the namespaced name",
    ],
    [
      'a server schema with a pattern RE2 cannot run',
      [{ type: 'mcp', name: 'files/grep' }],
      "tools[0].name 'files/grep': the input schema MCP server 'files' gives for 'grep' has a pattern this server cannot run at /properties/re/pattern: \"(\\\\w+)\\\\1\" (error parsing regexp: invalid escape sequence: `\\1`); patterns run on RE2, in linear time, so lookaround and backreferences are not supported",
    ],
    [
      'an unknown namespace',
      [{ type: 'mcp', name: 'web/get' }],
      "tools[0].name 'web/get': there is no MCP server with namespace 'web'; configured: files, other",
    ],
    [
      'a ttl above MCP_MAX_TTL_SECONDS',
      [{ type: 'mcp', name: 'files/read', runtime_params: { ttl_seconds: 301 } }],
      'tools[0].runtime_params.ttl_seconds must be an integer between 1 and 300 for mcp tools',
    ],
    [
      'tool_params',
      [{ type: 'mcp', name: 'files/read', runtime_params: { tool_params: { x: 1 } } }],
      'tools[0].runtime_params.tool_params is not supported for mcp tools',
    ],
    [
      'any mcp tool when no server is configured',
      [{ type: 'mcp', name: 'files/read' }],
      "tools[0].name 'files/read': no MCP servers are configured on this server (MCP_SERVERS)",
      noMcp,
    ],
  ];
  for (const [what, tools, message, catalog] of cases) {
    test(`refuses ${what}`, async () => {
      assert.equal(await refusal(tools, catalog), message);
    });
  }
});

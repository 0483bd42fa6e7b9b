/**
 * The MCP_SERVERS registry file: every mistake is refused with a message
 * naming the file and the field at fault.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadMcpRegistry } from '../../mcp/registry-file';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-registry-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the MCP_SERVERS file', () => {
  const write = (content: unknown) => {
    const file = path.join(dir, `bad-${randomBytes(4).toString('hex')}.json`);
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const cases: Array<[string, unknown, string]> = [
    ['not JSON', '{"servers": [', 'not valid JSON'],
    ['not an object', [], 'must be a JSON object: {"servers": [...]}'],
    ['no servers', {}, 'servers is required'],
    ['neither command nor url', { servers: [{ namespace: 'a' }] }, 'servers[0] needs "command" (a stdio server) or "url" (a streamable HTTP server)'],
    ['both command and url', { servers: [{ namespace: 'a', command: 'x', url: 'http://x' }] }, 'servers[0] has both "command" and "url"'],
    ['bad namespace', { servers: [{ namespace: 'My Tools', command: 'x' }] }, 'servers[0].namespace must match ^[a-z0-9_-]+$'],
    ['missing namespace', { servers: [{ url: 'https://x.example/mcp' }] }, 'servers[0].namespace is required'],
    ['args not strings', { servers: [{ namespace: 'a', command: 'x', args: [1] }] }, 'servers[0].args[0] must be a string'],
    ['env value not a string', { servers: [{ namespace: 'a', command: 'x', env: { TOKEN: 5 } }] }, 'servers[0].env.TOKEN must be a string'],
    ['bad url', { servers: [{ namespace: 'a', url: 'ftp://x.example' }] }, 'servers[0].url must be an http(s) URL'],
    ['misspelt field', { servers: [{ namespace: 'a', url: 'https://x.example/mcp', header: {} }] }, 'servers[0] has unknown field(s): header'],
    [
      'duplicate namespace',
      {
        servers: [
          { namespace: 'a', command: 'x' },
          { namespace: 'a', url: 'https://x.example/mcp' },
        ],
      },
      "servers[1].namespace 'a' is a duplicate",
    ],
  ];
  for (const [name, content, message] of cases) {
    test(`is refused with a message naming the file and the field: ${name}`, () => {
      const file = write(content);
      assert.throws(
        () => loadMcpRegistry(file),
        (err: Error) => {
          assert.ok(err.message.startsWith(`MCP_SERVERS file ${file}: ${message}`), err.message);
          return true;
        },
      );
    });
  }

  test('a missing file is named', () => {
    assert.throws(() => loadMcpRegistry(path.join(dir, 'missing.json')), /^ConfigError: MCP_SERVERS file .*missing\.json: cannot be read \(ENOENT/);
  });

  test('a good file gives each server its transport and defaults', () => {
    const file = write({
      servers: [
        { namespace: 'files', command: 'node', args: ['server.js'] },
        { namespace: 'search', url: 'https://mcp.example/mcp' },
      ],
    });
    assert.deepEqual(loadMcpRegistry(file), [
      { namespace: 'files', command: 'node', args: ['server.js'], env: {}, transport: 'stdio' },
      { namespace: 'search', url: 'https://mcp.example/mcp', headers: {}, transport: 'streamable_http' },
    ]);
  });
});

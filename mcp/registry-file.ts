/**
 * The MCP server registry file named by MCP_SERVERS
 * (docs/api.md#part-c-configuration). Read and checked once per process; its
 * `env` and `headers` are secrets that stay in the process that read them.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../common/errors';
import { describeIssue } from '../contract/request-schema';

const namespace = z.string({ error: 'must be a string' }).regex(/^[a-z0-9_-]+$/, 'must match ^[a-z0-9_-]+$ (lower-case letters, digits, _ and -)');
/** Strict: a misspelt field is an error, not silently ignored. */
const strict = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `has unknown field(s): ${iss.keys.join(', ')}` : undefined),
  });
const stringMap = z.record(z.string(), z.string({ error: 'must be a string' }), { error: 'must be an object of strings' });

const stdioServer = strict({
  namespace,
  command: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'),
  args: z.array(z.string({ error: 'must be a string' }), { error: 'must be an array of strings' }).default([]),
  env: stringMap.default({}),
});

const httpServer = strict({
  namespace,
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  headers: stringMap.default({}),
});

export type StdioServerConfig = z.infer<typeof stdioServer> & { transport: 'stdio' };
export type HttpServerConfig = z.infer<typeof httpServer> & { transport: 'streamable_http' };
export type McpServerConfig = StdioServerConfig | HttpServerConfig;

/** A stdio server has a `command`, a streamable HTTP server a `url`; the other fields are checked accordingly. */
const serverEntry = z.record(z.string(), z.unknown(), { error: 'must be an object' }).transform((entry, ctx): McpServerConfig => {
  if ('command' in entry === 'url' in entry) {
    const problem = 'command' in entry ? 'has both "command" and "url"' : 'needs "command" (a stdio server) or "url" (a streamable HTTP server)';
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  const parsed = ('command' in entry ? stdioServer : httpServer).safeParse(entry, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue(issue as z.core.$ZodRawIssue);
    return z.NEVER;
  }
  return 'command' in parsed.data ? { ...parsed.data, transport: 'stdio' } : { ...parsed.data, transport: 'streamable_http' };
});

const file = z.object({ servers: z.array(serverEntry, { error: 'must be an array' }) }, { error: 'must be a JSON object: {"servers": [...]}' });

/** The servers listed in `path`; throws an Error naming the file and the field at fault. */
export function loadMcpRegistry(path: string): McpServerConfig[] {
  const fail = (problem: string, cause?: unknown) => new ConfigError(`MCP_SERVERS file ${path}: ${problem}`, { cause });
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (err) {
    throw fail(err instanceof SyntaxError ? `not valid JSON (${err.message})` : `cannot be read (${(err as Error).message})`, err);
  }
  const parsed = file.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw fail(parsed.error.issues[0] ? describeIssue(parsed.error.issues[0]) : 'is not valid');
  const seen = new Set<string>();
  parsed.data.servers.forEach((server, i) => {
    if (seen.has(server.namespace)) throw fail(`servers[${i}].namespace '${server.namespace}' is a duplicate: namespaces must be unique`);
    seen.add(server.namespace);
  });
  return parsed.data.servers;
}

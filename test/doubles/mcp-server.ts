// A real MCP server for tests, written with the MCP SDK. Its tools cover every
// side-effect class and failure the service must handle.
//
// stdio:  tsx test/doubles/mcp-server.ts
//   needs NOTES_TOKEN (a stand-in secret: the server refuses to start without
//   it, which proves env passing) and NOTES_FILE (where write_note appends, so
//   tests can count executions). Exits when its stdin closes.
// HTTP:   tsx test/doubles/mcp-server.ts --http --token T [--port P]
//   streamable HTTP on 127.0.0.1 at /mcp, requiring `Authorization: Bearer T`;
//   prints {"url":...} on stdout. Tests usually call startMcpHttpServer instead.
//
// Tools: echo (readOnlyHint), add (idempotentHint), slow (sleeps, for ttl),
// fail (an isError result); stdio only: write_note (destructive; with
// hold_seconds it stays in flight after writing) and crash (the process exits
// mid-call). A stdio server reports the environment it was started with in
// <NOTES_FILE>.env-<pid>.json, so tests can show what a stdio server is given.

import * as fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });

function buildServer(notesFile?: string): McpServer {
  const server = new McpServer({ name: 'test-mcp-server', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Returns the text it is given', inputSchema: { text: z.string() }, annotations: { readOnlyHint: true } },
    ({ text: t }) => text(t),
  );
  server.registerTool(
    'add',
    {
      description: 'Adds two numbers',
      inputSchema: { a: z.number(), b: z.number() },
      annotations: { readOnlyHint: false, idempotentHint: true },
    },
    ({ a, b }) => text(String(a + b)),
  );
  server.registerTool(
    'slow',
    { description: 'Sleeps for some seconds', inputSchema: { seconds: z.number() }, annotations: { readOnlyHint: true } },
    async ({ seconds }) => {
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      return text(`slept ${seconds}s`);
    },
  );
  server.registerTool('fail', { description: 'Always fails', inputSchema: {} }, () => ({
    ...text('the tool failed on purpose'),
    isError: true,
  }));
  if (notesFile) {
    server.registerTool(
      'write_note',
      {
        description: 'Appends a note',
        inputSchema: { note: z.string(), hold_seconds: z.number().optional() },
        annotations: { destructiveHint: true },
      },
      async ({ note, hold_seconds }) => {
        fs.appendFileSync(notesFile, `${note}\n`);
        const count = fs.readFileSync(notesFile, 'utf8').split('\n').filter(Boolean).length;
        if (hold_seconds) await new Promise((resolve) => setTimeout(resolve, hold_seconds * 1000));
        return text(`saved note ${count}`);
      },
    );
    server.registerTool('crash', { description: 'Exits the server process', inputSchema: {} }, () => process.exit(3));
  }
  return server;
}

export interface McpHttpServer {
  /** The endpoint, `http://127.0.0.1:<port>/mcp`. */
  url: string;
  /** tools/call requests received, by tool name. */
  calls: string[];
  /** notifications/cancelled received: a client gave up on a request. */
  cancellations: number;
  close(): Promise<void>;
}

/** Stateless streamable HTTP: a fresh McpServer per request, as the SDK's stateless example does. */
export function startMcpHttpServer(opts: { token: string; port?: number }): Promise<McpHttpServer> {
  const calls: string[] = [];
  let cancellations = 0;
  const app = express();
  app.use(express.json());
  app.post('/mcp', async (req, res) => {
    if (req.get('authorization') !== `Bearer ${opts.token}`) {
      res.status(401).json({ error: 'unauthorized' });
      return;
    }
    if (req.body?.method === 'tools/call') calls.push(String(req.body.params?.name));
    if (req.body?.method === 'notifications/cancelled') cancellations++;
    const server = buildServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.all('/mcp', (_req, res) => {
    res.status(405).set('Allow', 'POST').end();
  });
  return new Promise((resolve, reject) => {
    const http: Server = app.listen(opts.port ?? 0, '127.0.0.1', () => {
      const { port } = http.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/mcp`,
        calls,
        get cancellations() {
          return cancellations;
        },
        close: () =>
          new Promise((done) => {
            http.closeAllConnections();
            http.close(() => done());
          }),
      });
    });
    http.once('error', reject);
  });
}

async function main() {
  const { values } = parseArgs({ options: { http: { type: 'boolean' }, token: { type: 'string' }, port: { type: 'string' } } });
  if (values.http) {
    if (!values.token) throw new Error('--token is required with --http');
    const s = await startMcpHttpServer({ token: values.token, port: values.port ? Number(values.port) : undefined });
    console.log(JSON.stringify({ url: s.url }));
    const stop = () => void s.close().then(() => process.exit(0));
    process.on('SIGTERM', stop).on('SIGINT', stop);
    return;
  }
  if (!process.env.NOTES_TOKEN) throw new Error('NOTES_TOKEN is not set');
  if (!process.env.NOTES_FILE) throw new Error('NOTES_FILE is not set');
  fs.writeFileSync(`${process.env.NOTES_FILE}.env-${process.pid}.json`, JSON.stringify(process.env));
  await buildServer(process.env.NOTES_FILE).connect(new StdioServerTransport());
  // Whoever started us is gone: do not linger as an orphan.
  process.stdin.on('end', () => process.exit(0));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`mcp-server: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}

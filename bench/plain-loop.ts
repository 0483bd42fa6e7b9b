/**
 * The bench's non-durable floor: the same HTTP contract (POST
 * /v1/agents/heroku answering an SSE stream of chat.completion and
 * tool.completion events) as a plain loop in one process, with no Temporal.
 * It calls the same model double through the same `openai` client settings
 * and runs tools through the same runners (the Heroku double's TLS
 * rendezvous and a real `bash`), so the difference to durable-agents is what
 * durability costs. Started by bench/systems.ts as a child process with the
 * worker's environment plus PORT; prints `plain: listening` when ready.
 */
import express from 'express';
import { openEventStream, messageFrame, DONE_FRAME } from '../api/sse';
import { modelClient } from '../activities/model-client';
import { JsonSchemas } from '../catalog/json-schema';
import { resolveTools } from '../catalog/resolve-tools';
import { workerConfig } from '../common/config';
import { agentRequestSchema } from '../contract/request-schema';
import { SYSTEM_FINGERPRINT, toolResultContent, type ChatMessage } from '../contract/wire';
import { McpPool } from '../mcp/pool';
import { createRunners } from '../runners/registry';
import { CommandRuntime } from '../runtimes/command-runtime';
import { DocumentConverter } from '../runtimes/documents/converter';
import { ReadOnlyDatabases } from '../runtimes/postgres/session';
import { LocalSandbox } from '../runtimes/sandbox/local-sandbox';

const config = workerConfig();
const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {}, trace: () => {}, log: () => {} };
const mcp = McpPool.fromFile(undefined, quiet);
// Opened at the first request: a CommonJS module has no top-level await.
const sandbox = LocalSandbox.open(config.sandbox, quiet);
const runnersReady = sandbox.then((opened) =>
  createRunners({
    commands: new CommandRuntime(opened, config.heroku),
    databases: new ReadOnlyDatabases(config.postgres),
    fetchAllowHosts: config.fetchAllowHosts,
    web: config.web,
    converter: new DocumentConverter(config.converter),
    mcp,
  }),
);
const catalog = {
  mcp: { pool: mcp, maxTtlSeconds: 120 },
  schemas: new JsonSchemas(config.toolSchemas),
  limits: { herokuApps: [], dynoSizes: [], maxToolCalls: 100, maxApprovalTimeoutSeconds: 30 * 86_400 },
};
const client = modelClient(config.inference, { timeoutMs: 60_000 });
let runs = 0;

const app = express();
app.post('/v1/agents/heroku', express.json({ limit: '1mb' }), async (req, res) => {
  const request = agentRequestSchema.parse(req.body);
  const tools = await resolveTools(request.tools ?? [], catalog);
  const runners = await runnersReady;
  const runId = `chatcmpl-plain${String(++runs).padStart(19, '0')}`;
  const conversation: ChatMessage[] = [...request.messages];
  const created = () => Math.floor(Date.now() / 1000);
  let offset = 0;
  openEventStream(res, runId);
  const used = new Map<string, number>();
  for (let call = 0; call < Number(process.env.MAX_MODEL_CALLS_PER_RUN ?? 25); call++) {
    const completion = await client.chat.completions.create({
      model: request.model,
      messages: conversation,
      ...(tools.length ? { tools: tools.map((t) => ({ type: 'function' as const, function: t.function })) } : {}),
    });
    const choice = completion.choices[0]!;
    const toolCalls = (choice.message.tool_calls ?? []).flatMap((c) => (c.type === 'function' ? [c] : []));
    const message = {
      role: 'assistant' as const,
      content: choice.message.content,
      refusal: null,
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
    };
    res.write(
      messageFrame(offset++, {
        id: runId,
        object: 'chat.completion',
        created: created(),
        model: request.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [{ index: 0, message, finish_reason: toolCalls.length ? 'tool_calls' : 'stop' }],
        usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, ...completion.usage },
      }),
    );
    conversation.push(message);
    if (!toolCalls.length) break;
    for (const toolCall of toolCalls) {
      const tool = tools.find((t) => t.name === toolCall.function.name)!;
      const count = (used.get(tool.name) ?? 0) + 1;
      used.set(tool.name, count);
      const payload =
        count > tool.runtime.max_calls
          ? `Error: tool '${tool.name}' has reached its max_calls limit`
          : await runners(tool)!.run(
              { runtime: tool.runtime, callKey: `${runId}:${offset}`, signal: new AbortController().signal, progress: () => {} },
              JSON.parse(toolCall.function.arguments || '{}'),
            );
      const content = toolResultContent(tool.name, payload);
      res.write(
        messageFrame(offset++, {
          id: runId,
          object: 'tool.completion',
          created: created(),
          system_fingerprint: SYSTEM_FINGERPRINT,
          choices: [{ index: 0, message: { role: 'tool', content, refusal: null, tool_call_id: toolCall.id, name: tool.name }, finish_reason: '' }],
          usage: {},
        }),
      );
      conversation.push({ role: 'tool', content, tool_call_id: toolCall.id, name: tool.name });
    }
  }
  res.end(DONE_FRAME);
});

const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('plain: listening'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));

/**
 * The model call: one chat-completions request to the OpenAI-compatible
 * upstream. Retries belong to Temporal (every attempt shows in the UI), so the
 * client's own are off; this module only classifies failures.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import OpenAI from 'openai';
import { conversationQuery, UPSTREAM_ERROR, type ModelCallInput, type ModelCallResult } from '../contract/run-contract';
import type { AssistantMessage, ChatMessage } from '../contract/wire';
import type { ConversationCache } from './conversation-cache';
import { withHeartbeats } from './heartbeat';
import { modelApiUrl, modelClient, type Inference } from './model-client';
import { ModelToolNames } from './model-tool-names';

/** How long one model call may take before it is retried. */
const MODEL_CALL_TIMEOUT_MS = 4 * 60_000;

export function createModelCaller(inference: Inference, conversations: ConversationCache) {
  const client = modelClient(inference, { timeoutMs: MODEL_CALL_TIMEOUT_MS });
  const url = modelApiUrl(inference, '/v1/chat/completions');

  return withHeartbeats(async function callModel(input: ModelCallInput): Promise<ModelCallResult> {
    const signal = Context.current().cancellationSignal;
    const names = new ModelToolNames(input.tools.map((f) => f.name));
    const messages = await conversation(input, conversations);
    const request: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
      model: input.model,
      messages: names.conversation(messages),
      ...(input.tools.length ? { tools: names.functions(input.tools).map((f) => ({ type: 'function' as const, function: f })) } : {}),
      ...(input.params.max_tokens !== undefined ? { max_tokens: input.params.max_tokens } : {}),
      ...(input.params.temperature !== undefined ? { temperature: input.params.temperature } : {}),
      ...(input.params.top_p !== undefined ? { top_p: input.params.top_p } : {}),
      ...(input.params.stop !== undefined ? { stop: input.params.stop } : {}),
    };
    let completion: OpenAI.Chat.ChatCompletion;
    try {
      completion = await client.chat.completions.create(request, { signal });
    } catch (err) {
      throw classify(err, signal, url);
    }
    const result = toResult(completion, url);
    return { ...result, message: names.answer(result.message) };
  });
}

/** The whole conversation: as given, or the messages the run passed by reference (`known`) followed by the new ones. */
async function conversation(input: ModelCallInput, cache: ConversationCache): Promise<ChatMessage[]> {
  if (input.known === undefined) return input.messages;
  const ctx = Context.current();
  const run = ctx.info.workflowExecution;
  if (!run) throw ApplicationFailure.nonRetryable('a model call given a conversation by reference must run for a workflow');
  const { workflowId, runId } = run;
  const execution = `${workflowId}/${runId}`;
  // The first call of an execution knows nothing earlier: no cache, no query.
  const earlier =
    input.known === 0
      ? []
      : (cache.prefix(execution, input.known) ??
        (await ctx.client.workflow.getHandle(workflowId, runId).query(conversationQuery, { upTo: input.known })));
  if (earlier.length !== input.known) {
    throw ApplicationFailure.create({ message: `the run holds ${earlier.length} messages where the model call expected ${input.known}` });
  }
  const messages = [...earlier, ...input.messages];
  cache.remember(execution, messages);
  return messages;
}

function toResult(completion: OpenAI.Chat.ChatCompletion, url: string): ModelCallResult {
  const choice = completion?.choices?.[0];
  if (!choice?.message) {
    // Could be a passing glitch of the upstream: retryable, with a message that says what came back.
    throw ApplicationFailure.create({
      type: UPSTREAM_ERROR,
      message: `the upstream model API (${url}) answered without any choices`,
      details: [{ status: 502 }],
    });
  }
  const toolCalls = (choice.message.tool_calls ?? []).flatMap((call) =>
    call.type === 'function'
      ? [{ id: call.id, type: 'function' as const, function: { name: call.function.name, arguments: call.function.arguments ?? '{}' } }]
      : [],
  );
  const message: AssistantMessage = {
    role: 'assistant',
    content: choice.message.content ?? null,
    refusal: choice.message.refusal ?? null,
    ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
  };
  const finish_reason = toolCalls.length ? 'tool_calls' : choice.finish_reason === 'length' ? 'length' : 'stop';
  const usage = {
    prompt_tokens: completion.usage?.prompt_tokens ?? 0,
    completion_tokens: completion.usage?.completion_tokens ?? 0,
    total_tokens: completion.usage?.total_tokens ?? 0,
  };
  return { message, finish_reason, usage, system_fingerprint: completion.system_fingerprint ?? undefined };
}

const RETRYABLE_STATUS = new Set([408, 409, 429]);

/** Network errors, 5xx, 408, 409 and 429 are retried by Temporal; other 4xx end the run. Messages name the URL tried. */
function classify(err: unknown, signal: AbortSignal, url: string): unknown {
  if (signal.aborted) return err; // cancellation: let the SDK report it as such
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    const status = err.status;
    const retryable = status >= 500 || RETRYABLE_STATUS.has(status);
    return ApplicationFailure.create({
      type: UPSTREAM_ERROR,
      message: `the upstream model API (${url}) answered ${status}: ${upstreamMessage(err.error) ?? err.message}`,
      nonRetryable: !retryable,
      details: [{ status }],
      nextRetryDelay: retryable && err.headers instanceof Headers ? retryAfter(err.headers) : undefined,
    });
  }
  const reason = err instanceof OpenAI.APIConnectionTimeoutError ? 'timed out' : err instanceof Error ? err.message : String(err);
  return ApplicationFailure.create({
    type: UPSTREAM_ERROR,
    message: `the upstream model API (${url}) could not be reached or gave an unreadable answer: ${reason}`,
    details: [{ status: 502 }],
  });
}

/** The message of an OpenAI-style error body, `{message}` or `{error: {message}}`. */
function upstreamMessage(body: unknown): string | undefined {
  const field = (o: unknown, key: string): unknown => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined);
  const msg = field(body, 'message') ?? field(field(body, 'error'), 'message');
  return typeof msg === 'string' ? msg : undefined;
}

/** Retry-After in seconds or as an HTTP date; capped so one answer cannot park a run for long. */
function retryAfter(headers: Headers): string | undefined {
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : (Date.parse(raw) - Date.now()) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  return `${Math.min(Math.ceil(seconds * 1000), 120_000)} ms`;
}

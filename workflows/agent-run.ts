/**
 * One agent run = one workflow: the loop of spec A4 and the run's event log.
 * Deterministic: no I/O here, only activities, timers and workflow state.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentActivities } from '../activities/contract';
import {
  eventsQuery,
  summaryQuery,
  waitForEventsUpdate,
  type AgentRunInput,
  type EventBatch,
  type ModelCallResult,
  type ResolvedTool,
  type RunSummary,
  type RunTerminal,
} from '../common/run-contract';
import {
  SYSTEM_FINGERPRINT,
  toolResultContent,
  type ChatMessage,
  type CompletionEvent,
  type ErrorBody,
  type ToolCall,
  type Usage,
} from '../common/wire';

const MODEL_CALL_RETRY = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '20s',
  maximumAttempts: 5,
} as const;

const { callModel, runTool } = proxyActivities<AgentActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15 seconds',
  retry: MODEL_CALL_RETRY,
});

/** Largest batch one long-poll answer carries, to stay far below the payload limit. */
const MAX_BATCH_EVENTS = 200;

export async function agentRun(input: AgentRunInput): Promise<RunTerminal> {
  const created = Math.floor(workflowInfo().startTime.getTime() / 1000);
  const log: CompletionEvent[] = [];
  let terminal: RunTerminal | undefined;
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const toolCalls: Record<string, number> = {};
  let modelCalls = 0;

  const batchAfter = (after: number, limit = MAX_BATCH_EVENTS): EventBatch => {
    const from = Math.max(0, after + 1);
    const events = log.slice(from, from + limit);
    const complete = from + events.length >= log.length;
    return { from, events, terminal: complete ? terminal : undefined };
  };

  setHandler(
    waitForEventsUpdate,
    async ({ after, timeoutMs }) => {
      // Not cancellable: a cancelled run must still hand its final batch to waiting subscribers.
      await CancellationScope.nonCancellable(() =>
        condition(() => log.length > after + 1 || terminal !== undefined, timeoutMs),
      );
      return batchAfter(after);
    },
    {
      validator: ({ after, timeoutMs }) => {
        if (!Number.isInteger(after) || after < -1) throw new Error('after must be an integer >= -1');
        if (!(timeoutMs > 0 && timeoutMs <= 60_000)) throw new Error('timeoutMs must be in (0, 60000]');
      },
    },
  );
  setHandler(eventsQuery, ({ after, limit }) => batchAfter(after, limit));
  setHandler(
    summaryQuery,
    (): RunSummary => ({
      runId: input.runId,
      status: terminal?.status ?? 'running',
      model: input.model,
      created,
      usage,
      model_calls: modelCalls,
      tool_calls: toolCalls,
      events: log.length,
      error: terminal?.error ?? null,
    }),
  );

  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const conversation: ChatMessage[] = [...input.messages];
  const toolsByName = new Map(input.tools.map((t) => [t.name, t]));
  const functions = input.tools.map((t) => t.function);
  let toolCallPosition = 0;

  const runToolCall = async (call: ToolCall): Promise<string> => {
    const position = toolCallPosition++;
    const tool = toolsByName.get(call.function.name);
    if (!tool) return `Error: unknown tool '${call.function.name}'. Available tools: ${[...toolsByName.keys()].join(', ') || 'none'}.`;
    const used = toolCalls[tool.name] ?? 0;
    if (used >= tool.runtime.max_calls) {
      return `Error: tool '${tool.name}' has reached its max_calls limit (${tool.runtime.max_calls}) for this run; it was not run.`;
    }
    toolCalls[tool.name] = used + 1;
    try {
      const result = await runTool.executeWithOptions(toolActivityOptions(tool, position), [
        { runId: input.runId, callKey: `${input.runId}:${position}`, tool, arguments: call.function.arguments },
      ]);
      return result.payload;
    } catch (err) {
      if (isCancellation(err)) throw err;
      return describeToolFailure(tool, err);
    }
  };

  let cancellation: unknown;
  try {
    for (;;) {
      if (modelCalls >= input.maxModelCalls) {
        terminal = {
          status: 'failed',
          error: {
            code: 429,
            type: 'run_limit_exceeded',
            message: `the run reached its limit of ${input.maxModelCalls} model calls (MAX_MODEL_CALLS_PER_RUN)`,
          },
        };
        break;
      }
      modelCalls++;
      const reply: ModelCallResult = await callModel.executeWithOptions(
        {
          startToCloseTimeout: '5 minutes',
          heartbeatTimeout: '15 seconds',
          retry: MODEL_CALL_RETRY,
          summary: `model call ${modelCalls}: ${input.model}`,
        },
        [{ model: input.model, messages: conversation, tools: functions, params: input.inference }],
      );
      addUsage(usage, reply.usage);
      log.push({
        id: input.runId,
        object: 'chat.completion',
        created: nowSeconds(),
        model: input.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [{ index: 0, message: reply.message, finish_reason: reply.finish_reason }],
        usage: reply.usage,
      });
      conversation.push(toHistoryMessage(reply.message));

      const calls = reply.message.tool_calls ?? [];
      if (reply.finish_reason !== 'tool_calls' || calls.length === 0) {
        terminal = { status: 'completed' };
        break;
      }
      for (const call of calls) {
        const content = toolResultContent(call.function.name, await runToolCall(call));
        log.push({
          id: input.runId,
          object: 'tool.completion',
          created: nowSeconds(),
          system_fingerprint: SYSTEM_FINGERPRINT,
          choices: [
            {
              index: 0,
              message: { role: 'tool', content, refusal: null, tool_call_id: call.id, name: call.function.name },
              finish_reason: '',
            },
          ],
          usage: {},
        });
        conversation.push({ role: 'tool', content, tool_call_id: call.id, name: call.function.name });
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      cancellation = err;
      terminal = { status: 'cancelled', error: { code: 499, type: 'cancelled', message: 'the run was cancelled' } };
    } else {
      terminal = { status: 'failed', error: describeRunFailure(err) };
    }
  }

  // Let every waiting subscriber collect the terminal batch before the run closes.
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  // Ended as Temporal records it, so the UI and visibility queries tell failed and cancelled runs apart.
  if (cancellation) throw cancellation;
  if (terminal.status === 'failed' && terminal.error) {
    throw ApplicationFailure.create({ type: terminal.error.type, message: terminal.error.message, nonRetryable: true, details: [terminal.error] });
  }
  return terminal;
}

function toolActivityOptions(tool: ResolvedTool, position: number) {
  return {
    // The tool's own ttl bounds it; the margin covers dyno start-up and clean-up.
    startToCloseTimeout: `${tool.runtime.ttl_seconds + 30} seconds`,
    heartbeatTimeout: '15 seconds',
    retry:
      tool.sideEffect === 'side-effecting'
        ? { maximumAttempts: 1 } // at most once: an unknown outcome is reported, never re-run
        : { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
    summary: `tool call ${position + 1}: ${tool.name}`,
  } as const;
}

function toHistoryMessage(message: ModelCallResult['message']): ChatMessage {
  return {
    role: 'assistant',
    content: message.content,
    ...(message.tool_calls?.length ? { tool_calls: message.tool_calls } : {}),
  };
}

function addUsage(total: Usage, add: Usage): void {
  total.prompt_tokens += add.prompt_tokens;
  total.completion_tokens += add.completion_tokens;
  total.total_tokens += add.total_tokens;
}

/** The model gets a readable sentence when the tool activity itself failed. */
function describeToolFailure(tool: ResolvedTool, err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (tool.sideEffect === 'side-effecting') {
    return `Error: the outcome of this '${tool.name}' call is unknown (${failureMessage(cause)}); it was not retried because it may have side effects.`;
  }
  return `Error: '${tool.name}' failed: ${failureMessage(cause)}`;
}

function failureMessage(err: unknown): string {
  if (err instanceof TimeoutFailure) return `timed out (${err.timeoutType === undefined ? 'timeout' : String(err.timeoutType)})`;
  if (err instanceof Error) return err.message;
  return String(err);
}

function describeRunFailure(err: unknown): ErrorBody['error'] {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type === 'UpstreamError') {
    const [details] = (cause.details ?? []) as [{ status?: number } | undefined];
    return { code: details?.status ?? 502, type: 'upstream_error', message: cause.message };
  }
  return { code: 500, type: 'server_error', message: `the run failed: ${failureMessage(cause)}` };
}

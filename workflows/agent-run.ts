/**
 * One agent run = one workflow: the loop of docs/api.md#a4-the-agent-loop and
 * the run's event log. Deterministic: no I/O here, only activities, timers and
 * workflow state; it imports nothing but contract/ and Temporal's workflow
 * packages (a lint rule keeps it so), and the saved histories in
 * test/replay/ must still replay after any change. Long runs continue-as-new
 * between steps, carrying the conversation, the counters and the stream
 * offset, so no history limit ends them.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import {
  conversationQuery,
  decideApprovalUpdate,
  eventsQuery,
  summaryQuery,
  TOOL_TASK_QUEUE,
  UPSTREAM_ERROR,
  waitForEventsUpdate,
  type AgentActivities,
  type AgentRunInput,
  type AgentRunWorkflow,
  type CarriedState,
  type DecideApprovalArgs,
  type ResolvedTool,
  type RunSummary,
} from '../contract/run-contract';
import { AGENT_AWAITING_APPROVAL, AGENT_TOTAL_TOKENS } from '../contract/search-attributes';
import { TOOL_ACTIVITY_MARGIN_SECONDS } from '../contract/tool-defaults';
import { errorPayload } from '../contract/tool-payload';
import {
  addUsage,
  BUDGET_EXCEEDED_CODE,
  RUN_CANCELLED,
  SYSTEM_FINGERPRINT,
  toolResultContent,
  type AssistantMessage,
  type ChatMessage,
  type ErrorBody,
  type ToolCall,
} from '../contract/wire';
import { Approvals, denialMessage, type WaitLimit } from './approvals';
import { boundedInOrder } from './bounded';
import { EventLog } from './event-log';
import { WaitingPolls } from './stream-polls';

const MODEL_CALL_OPTIONS = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s', maximumAttempts: 5 },
} as const;

const { callModel, runTool, deliverWebhook } = proxyActivities<AgentActivities>(MODEL_CALL_OPTIONS);
const { keyTokensUsed } = proxyActivities<AgentActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
});

/**
 * What changed since runs started without the patch 'lean-steps', decided
 * once when an execution starts: an execution replayed from an older history
 * keeps the older behaviour to its end (or its continue-as-new). One patch
 * for all of them: each patch costs a marker and a search-attribute upsert
 * (TemporalChangeVersion) in every execution.
 */
function changesInThisExecution() {
  const lean = patched('lean-steps');
  return {
    /** Stream polls wait without a durable timer; a newer poll of the same feed releases the older. */
    timerlessPolls: lean,
    /** AgentTotalTokens is upserted when an execution ends or continues-as-new, not after every model call. */
    tokensAtEnd: lean,
    /** A cancelled run waits until each activity acknowledges, so its history shows them cancelled. */
    waitCancellation: lean,
    /** The tool calls of one reply run at once (bounded), on the tool task queue. */
    parallelTools: lean,
    /** A model call gets only the messages it has not been given before (ModelCallInput.known). */
    conversationByReference: lean,
  };
}
type Changes = ReturnType<typeof changesInThisExecution>;

interface PlannedToolCall {
  call: ToolCall;
  /** Position of the call in the run (TOOL_CALL_ID). */
  position: number;
  /** The tool and which of its max_calls this is, unless the call was refused. */
  run?: { tool: ResolvedTool; nth: number };
  /** The payload of a call that is not run. */
  refusal?: string;
}

export const agentRun: AgentRunWorkflow = async function agentRun(input) {
  const changes = changesInThisExecution();
  const info = workflowInfo();
  const state: CarriedState = input.carried ?? {
    baseOffset: 0,
    conversation: input.messages,
    toolCalls: {},
    modelCalls: 0,
    toolCallPosition: 0,
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    created: Math.floor(info.startTime.getTime() / 1000),
  };
  const log = new EventLog(state.baseOffset, info.continuedFromExecutionRunId);
  const polls = new WaitingPolls();
  let continuing = false;

  setHandler(
    waitForEventsUpdate,
    async ({ after, timeoutMs, feed }) => {
      const ready = () => log.hasAfter(after) || log.terminal !== undefined || continuing;
      let superseded = false;
      // Not cancellable: a cancelled run must still hand its final batch to waiting subscribers.
      if (changes.timerlessPolls) {
        const poll = polls.open(feed);
        await CancellationScope.nonCancellable(() => condition(() => ready() || poll.released));
        polls.close(poll);
        superseded = !ready();
      } else {
        await CancellationScope.nonCancellable(() => condition(ready, timeoutMs));
      }
      return { ...log.batchAfter(after), ...(continuing && !log.hasAfter(after) ? { continuing } : {}), ...(superseded ? { superseded } : {}) };
    },
    {
      validator: ({ after, timeoutMs, feed }) => {
        if (!Number.isInteger(after) || after < -1) throw new Error('after must be an integer >= -1');
        if (!(timeoutMs > 0 && timeoutMs <= 60_000)) throw new Error('timeoutMs must be in (0, 60000]');
        if (feed !== undefined && (typeof feed !== 'string' || feed.length > 100)) throw new Error('feed must be a string of at most 100 characters');
      },
    },
  );
  /** What the UI's current details show: every tool call running or waiting for a reviewer now. */
  const running = new Map<number, string>();
  const showCurrentDetails = () =>
    setCurrentDetails(
      [
        ...running.values(),
        ...approvals.waiting.map(
          (a) => `awaiting approval of ${a.name} (tool call ${a.tool_call_id}) until ${new Date(a.expires_at * 1000).toISOString()}`,
        ),
      ].join('\n'),
    );
  let awaitingApproval = false;
  const approvals = new Approvals(() => {
    showCurrentDetails();
    const awaiting = approvals.waiting.length > 0;
    if (awaiting !== awaitingApproval && input.searchAttributes) upsertSearchAttributes([{ key: AGENT_AWAITING_APPROVAL, value: awaiting }]);
    awaitingApproval = awaiting;
  });
  setHandler(decideApprovalUpdate, (args) => approvals.decide(args), { validator: (args: DecideApprovalArgs) => approvals.validate(args) });
  setHandler(eventsQuery, ({ after, limit }) => log.batchAfter(after, limit));
  setHandler(conversationQuery, ({ upTo }) => state.conversation.slice(0, upTo));
  const summary = (): RunSummary => ({
    runId: input.runId,
    status: log.terminal?.status ?? 'running',
    model: input.model,
    created: state.created,
    usage: state.usage,
    model_calls: state.modelCalls,
    tool_calls: state.toolCalls,
    events: log.length,
    error: log.terminal?.error ?? null,
    message: lastAssistantMessage(state),
    pending_approvals: approvals.waiting,
    decided_approvals: approvals.decided,
  });
  setHandler(summaryQuery, summary);

  const nowSeconds = () => Math.floor(Date.now() / 1000);
  /** How long the run may still go by max_duration_seconds, counted from its start (undefined: no budget). */
  const durationBudgetLeftMs = () => {
    const seconds = input.budgets?.maxDurationSeconds;
    return seconds === undefined ? undefined : state.created * 1000 + seconds * 1000 - Date.now();
  };
  const toolsByName = new Map(input.tools.map((t) => [t.name, t]));
  const functions = input.tools.map((t) => t.function);

  /** Positions and max_calls are taken in the order of the calls, before any runs. */
  const planToolCall = (call: ToolCall): PlannedToolCall => {
    const position = state.toolCallPosition++;
    const tool = toolsByName.get(call.function.name);
    if (!tool) {
      return {
        call,
        position,
        refusal: errorPayload(`unknown tool '${call.function.name}'. Available tools: ${[...toolsByName.keys()].join(', ') || 'none'}.`),
      };
    }
    const used = state.toolCalls[tool.name] ?? 0;
    if (used >= tool.runtime.max_calls) {
      return {
        call,
        position,
        refusal: errorPayload(`tool '${tool.name}' has reached its max_calls limit (${tool.runtime.max_calls}) for this run; it was not run.`),
      };
    }
    state.toolCalls[tool.name] = used + 1;
    return { call, position, run: { tool, nth: used + 1 } };
  };

  /** Logs the approval request of a call whose tool requires one, and resolves with the denial payload (undefined: approved). */
  const requestApproval = async ({ call, run }: PlannedToolCall): Promise<string | undefined> => {
    const timeoutSeconds = run?.tool.runtime.approval?.timeout_seconds;
    if (timeoutSeconds === undefined) return undefined;
    const requested = nowSeconds();
    const limit: WaitLimit = {
      ms: timeoutSeconds * 1000,
      by: 'timeout',
      reason: `no reviewer decided within approval_timeout_seconds (${timeoutSeconds} s)`,
    };
    const budgetMs = durationBudgetLeftMs();
    const waitLimit: WaitLimit =
      budgetMs !== undefined && budgetMs < limit.ms
        ? {
            ms: Math.max(budgetMs, 1),
            by: 'budget',
            reason: `the run reached its max_duration_seconds budget (${input.budgets?.maxDurationSeconds} s)`,
          }
        : limit;
    const approval = {
      tool_call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
      requested_at: requested,
      expires_at: requested + timeoutSeconds,
    };
    log.push({
      id: input.runId,
      object: 'approval.request',
      created: requested,
      system_fingerprint: SYSTEM_FINGERPRINT,
      tool_call_id: approval.tool_call_id,
      name: approval.name,
      arguments: approval.arguments,
      expires_at: approval.expires_at,
    });
    const decided = await approvals.request(approval, waitLimit);
    return decided.decision === 'approve' ? undefined : errorPayload(denialMessage(decided));
  };

  const runPlannedCall = async ({ call, position, run, refusal }: PlannedToolCall, approval?: Promise<string | undefined>): Promise<string> => {
    if (!run) return refusal ?? '';
    const denial = await approval;
    if (denial !== undefined) return denial;
    const { tool, nth } = run;
    running.set(position, `running ${tool.name} (tool call ${position + 1}; call ${nth} of max_calls ${tool.runtime.max_calls})`);
    showCurrentDetails();
    try {
      const result = await runTool.executeWithOptions(toolActivityOptions(tool, position, call.function.arguments, changes), [
        { runId: input.runId, callKey: `${input.runId}:${position}`, tool, arguments: call.function.arguments },
      ]);
      return result.payload;
    } catch (err) {
      if (isCancellation(err)) throw err;
      return describeToolFailure(tool, err);
    } finally {
      running.delete(position);
      showCurrentDetails();
    }
  };

  const logToolCompletion = (call: ToolCall, payload: string): void => {
    const content = toolResultContent(call.function.name, payload);
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
    state.conversation.push({ role: 'tool', content, tool_call_id: call.id, name: call.function.name });
  };

  /** Runs one reply's tool calls (at most `parallelToolCalls` at once) and logs their results in call order. */
  const runToolCalls = async (calls: ToolCall[]): Promise<void> => {
    const planned = calls.map(planToolCall);
    // Every approval of the reply is asked for at once, before any call runs: reviewers see them all together.
    const approved = planned.map((p) => {
      const decision = requestApproval(p);
      decision.catch(() => undefined); // a cancellation: the call that awaits it rethrows
      return decision;
    });
    if (!changes.parallelTools) {
      for (const [i, p] of planned.entries()) logToolCompletion(p.call, await runPlannedCall(p, approved[i]));
      return;
    }
    const results = boundedInOrder(
      planned.map((p, i) => () => runPlannedCall(p, approved[i])),
      input.parallelToolCalls ?? 1,
    );
    for (const [i, p] of planned.entries()) {
      try {
        logToolCompletion(p.call, await results[i]!);
      } catch (err) {
        // Only a cancellation gets here: let every call that still runs acknowledge it first.
        await Promise.allSettled(results);
        throw err;
      }
    }
  };

  const upsertTotalTokens = () => {
    if (input.searchAttributes) upsertSearchAttributes([{ key: AGENT_TOTAL_TOKENS, value: state.usage.total_tokens }]);
  };

  let cancelled: { error: unknown } | undefined;
  try {
    for (;;) {
      if (state.modelCalls >= input.maxModelCalls) {
        log.terminal = {
          status: 'failed',
          error: {
            code: 429,
            type: 'run_limit_exceeded',
            message: `the run reached its limit of ${input.maxModelCalls} model calls (MAX_MODEL_CALLS_PER_RUN)`,
          },
        };
        break;
      }
      const overBudget = budgetExceeded(input, state, durationBudgetLeftMs()) ?? (await keyBudgetExceeded(input, state, info.workflowId));
      if (overBudget) {
        log.terminal = { status: 'failed', error: overBudget };
        break;
      }
      if (workflowInfo().continueAsNewSuggested) {
        continuing = true;
        await condition(allHandlersFinished);
        if (changes.tokensAtEnd) upsertTotalTokens();
        await continueAsNew<typeof agentRun>({ ...input, messages: [], carried: { ...state, baseOffset: log.length } });
      }
      state.modelCalls++;
      const known = changes.conversationByReference ? (state.knownToModel ?? 0) : undefined;
      const reply = await callModel.executeWithOptions(
        {
          ...MODEL_CALL_OPTIONS,
          summary: `model call ${state.modelCalls}: ${input.model}`,
          ...(changes.waitCancellation ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
        },
        [
          known === undefined
            ? { model: input.model, messages: state.conversation, tools: functions, params: input.inference }
            : { model: input.model, messages: state.conversation.slice(known), known, tools: functions, params: input.inference },
        ],
      );
      if (known !== undefined) state.knownToModel = state.conversation.length;
      addUsage(state.usage, reply.usage);
      // A key's daily budget is counted from the runs' AgentTotalTokens, so those runs keep it current.
      if (!changes.tokensAtEnd || input.keyBudget) upsertTotalTokens();
      log.push({
        id: input.runId,
        object: 'chat.completion',
        created: nowSeconds(),
        model: input.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [{ index: 0, message: reply.message, finish_reason: reply.finish_reason }],
        usage: reply.usage,
      });
      state.conversation.push(toHistoryMessage(reply.message));

      const calls = reply.message.tool_calls ?? [];
      if (reply.finish_reason !== 'tool_calls' || calls.length === 0) {
        log.terminal = { status: 'completed' };
        break;
      }
      await runToolCalls(calls);
    }
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err; // the hand-over to the next execution, not a failure
    if (isCancellation(err)) {
      cancelled = { error: err };
      log.terminal = { status: 'cancelled', error: RUN_CANCELLED };
    } else {
      log.terminal = { status: 'failed', error: describeRunFailure(err) };
    }
  }

  // Let every waiting subscriber collect the terminal batch before the run closes.
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  if (changes.tokensAtEnd) upsertTotalTokens();
  if (input.webhook) await notifyWebhook(input.runId, input.webhook, summary());
  // Ended as Temporal records it, so the UI and visibility queries tell failed and cancelled runs apart.
  if (cancelled) throw cancelled.error;
  const terminal = log.terminal; // every way out of the loop above sets it
  if (terminal.status === 'failed' && terminal.error) {
    throw ApplicationFailure.create({ type: terminal.error.type, message: terminal.error.message, nonRetryable: true, details: [terminal.error] });
  }
  return terminal;
};

/** The `budget_exceeded` error of a run past max_total_tokens or max_duration_seconds; checked between steps. */
function budgetExceeded(input: AgentRunInput, state: CarriedState, durationLeftMs: number | undefined): ErrorBody['error'] | undefined {
  const maxTokens = input.budgets?.maxTotalTokens;
  if (maxTokens !== undefined && state.usage.total_tokens >= maxTokens) {
    return {
      code: BUDGET_EXCEEDED_CODE,
      type: 'budget_exceeded',
      message: `the run used ${state.usage.total_tokens} tokens, reaching its max_total_tokens budget of ${maxTokens}`,
    };
  }
  if (durationLeftMs !== undefined && durationLeftMs <= 0) {
    return {
      code: BUDGET_EXCEEDED_CODE,
      type: 'budget_exceeded',
      message: `the run reached its max_duration_seconds budget of ${input.budgets?.maxDurationSeconds} s`,
    };
  }
  return undefined;
}

/** The `budget_exceeded` error of a run whose key's daily token budget is used up; checked between steps, not before the first. */
async function keyBudgetExceeded(input: AgentRunInput, state: CarriedState, workflowId: string): Promise<ErrorBody['error'] | undefined> {
  const budget = input.keyBudget;
  if (!budget || state.modelCalls === 0) return undefined;
  let others: number;
  try {
    others = await keyTokensUsed({ apiKeyId: budget.apiKeyId, day: budget.day, exceptWorkflowId: workflowId });
  } catch (err) {
    if (isCancellation(err)) throw err;
    return undefined; // visibility unreachable: the run goes on rather than fail for the count's sake
  }
  const used = others + state.usage.total_tokens;
  if (used < budget.dailyTokens) return undefined;
  return {
    code: BUDGET_EXCEEDED_CODE,
    type: 'budget_exceeded',
    message: `the API key's daily token budget of ${budget.dailyTokens} (KEY_DAILY_TOKEN_BUDGET) is used up for ${budget.day}: ${used} tokens`,
  };
}

function toolActivityOptions(tool: ResolvedTool, position: number, args: string, changes: Changes) {
  return {
    ...(changes.parallelTools ? { taskQueue: TOOL_TASK_QUEUE } : {}),
    ...(changes.waitCancellation ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
    // The tool's own ttl bounds it; the margin covers dyno start-up and clean-up.
    startToCloseTimeout: `${tool.runtime.ttl_seconds + TOOL_ACTIVITY_MARGIN_SECONDS} seconds`,
    heartbeatTimeout: '15 seconds',
    retry:
      tool.sideEffect === 'side-effecting'
        ? { maximumAttempts: 1 } // at most once: an unknown outcome is reported, never re-run
        : { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
    summary: `tool call ${position + 1}: ${tool.name} ${args.length > 80 ? `${args.slice(0, 77)}...` : args}`,
  } as const;
}

/** The run's outcome to its webhook; a webhook that cannot be delivered after its retries does not change the outcome. */
async function notifyWebhook(runId: string, webhook: NonNullable<AgentRunInput['webhook']>, summary: RunSummary): Promise<void> {
  const { runId: id, pending_approvals: _pending, decided_approvals: _decided, ...data } = summary;
  const status = summary.status === 'running' ? 'failed' : summary.status; // every way out of the loop ends it
  const delivery = {
    url: webhook.url,
    webhookId: `msg_${runId.replace(/^chatcmpl-/, '')}`,
    payload: { type: `run.${status}` as const, timestamp: new Date().toISOString(), data: { id, ...data, status } },
  };
  try {
    await CancellationScope.nonCancellable(() =>
      deliverWebhook.executeWithOptions(
        {
          startToCloseTimeout: '30 seconds',
          retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: webhook.maxAttempts },
          summary: `webhook to ${webhook.url.replace(/^https?:\/\/([^/?#]*).*$/s, '$1')}`,
        },
        [delivery],
      ),
    );
  } catch {
    // Its attempts and their failures are in the run's history.
  }
}

/** The assistant's last message, once the model was called (before that, the conversation's are the client's). */
function lastAssistantMessage(state: CarriedState): AssistantMessage | null {
  if (state.modelCalls === 0) return null;
  const last = [...state.conversation].reverse().find((m) => m.role === 'assistant');
  if (!last || last.role !== 'assistant') return null;
  return { role: 'assistant', content: last.content ?? null, refusal: null, ...(last.tool_calls?.length ? { tool_calls: last.tool_calls } : {}) };
}

function toHistoryMessage(message: AssistantMessage): ChatMessage {
  return {
    role: 'assistant',
    content: message.content,
    ...(message.tool_calls?.length ? { tool_calls: message.tool_calls } : {}),
  };
}

/** The model gets a readable sentence when the tool activity itself failed. */
function describeToolFailure(tool: ResolvedTool, err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (tool.sideEffect === 'side-effecting') {
    return errorPayload(
      `the outcome of this '${tool.name}' call is unknown (${failureMessage(cause)}); it was not retried because it may have side effects.`,
    );
  }
  return errorPayload(`'${tool.name}' failed: ${failureMessage(cause)}`);
}

function failureMessage(err: unknown): string {
  if (err instanceof TimeoutFailure) {
    return err.timeoutType === TimeoutType.HEARTBEAT ? 'the worker running it stopped responding' : 'it did not finish in time';
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

function describeRunFailure(err: unknown): ErrorBody['error'] {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type === UPSTREAM_ERROR) {
    const [details] = (cause.details ?? []) as [{ status?: number } | undefined];
    return { code: details?.status ?? 502, type: 'upstream_error', message: cause.message };
  }
  return { code: 500, type: 'server_error', message: `the run failed: ${failureMessage(cause)}` };
}

/**
 * The run's approvals (docs/api.md#b5-approvals): tool calls that wait for a
 * reviewer's decision, which arrives through the decideApproval update, or
 * for their timeout (a durable timer). Waiting is a workflow condition, not an
 * activity, so a run can wait for days without holding a worker slot.
 */
import { ApplicationFailure, condition } from '@temporalio/workflow';
import {
  APPROVAL_ALREADY_DECIDED,
  APPROVAL_NOT_FOUND,
  type DecideApprovalArgs,
  type DecidedApproval,
  type PendingApproval,
} from '../contract/run-contract';

/** The longest reason kept (the API refuses longer ones with a 400). */
export const MAX_REASON_CHARS = 2000;

/** What ends a wait other than a reviewer: the approval's own timeout or the run's duration budget. */
export interface WaitLimit {
  ms: number;
  by: 'timeout' | 'budget';
  reason: string;
}

export class Approvals {
  private readonly pending = new Map<string, PendingApproval>();
  private readonly decisions = new Map<string, DecidedApproval>();

  constructor(private readonly onChange: () => void) {}

  get waiting(): PendingApproval[] {
    return [...this.pending.values()];
  }

  get decided(): DecidedApproval[] {
    return [...this.decisions.values()];
  }

  /** Refuses, before anything is written to history, what the update must not do. */
  validate({ toolCallId, decision, reason }: DecideApprovalArgs): void {
    if (decision !== 'approve' && decision !== 'deny') throw new Error('decision must be "approve" or "deny"');
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_REASON_CHARS)) {
      throw new Error(`reason must be a string of at most ${MAX_REASON_CHARS} characters`);
    }
    const earlier = this.decisions.get(toolCallId);
    if (earlier) {
      throw ApplicationFailure.create({
        type: APPROVAL_ALREADY_DECIDED,
        nonRetryable: true,
        message: `tool call '${toolCallId}' was already decided (${earlier.decision}, by ${earlier.decided_by})`,
        details: [earlier],
      });
    }
    if (!this.pending.has(toolCallId)) {
      throw ApplicationFailure.create({
        type: APPROVAL_NOT_FOUND,
        nonRetryable: true,
        message: `no tool call '${toolCallId}' is waiting for approval`,
      });
    }
  }

  decide({ toolCallId, decision, reason }: DecideApprovalArgs, by: DecidedApproval['decided_by'] = 'reviewer'): DecidedApproval {
    const pending = this.pending.get(toolCallId);
    if (!pending) throw new Error(`no tool call '${toolCallId}' is waiting for approval`); // the validator refused it already
    const decided: DecidedApproval = { tool_call_id: toolCallId, name: pending.name, decision, reason: reason ?? null, decided_by: by };
    this.pending.delete(toolCallId);
    this.decisions.set(toolCallId, decided);
    this.onChange();
    return decided;
  }

  /** Registers the call as pending (the caller logs its event) and resolves with its decision. */
  async request(approval: PendingApproval, limit: WaitLimit): Promise<DecidedApproval> {
    this.pending.set(approval.tool_call_id, approval);
    this.onChange();
    const decided = () => this.decisions.get(approval.tool_call_id);
    let answered: boolean;
    try {
      answered = await condition(() => decided() !== undefined, limit.ms);
    } catch (err) {
      // The run was cancelled while the call waited: it waits no more.
      this.pending.delete(approval.tool_call_id);
      this.onChange();
      throw err;
    }
    return (answered ? decided() : undefined) ?? this.decide({ toolCallId: approval.tool_call_id, decision: 'deny', reason: limit.reason }, limit.by);
  }
}

/** What the model reads as the result of a denied call (after "Tool '<name>' returned result: "). */
export function denialMessage(decided: DecidedApproval): string {
  switch (decided.decided_by) {
    case 'reviewer':
      return `the call was denied by a reviewer${decided.reason ? `: ${decided.reason}` : ''}`;
    case 'timeout':
    case 'budget':
      return `the call was denied: ${decided.reason ?? 'no decision'}`;
  }
}

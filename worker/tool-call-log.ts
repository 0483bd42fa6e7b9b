/**
 * Every log line of a tool call's activity carries its `toolCallId` (its
 * TOOL_CALL_ID), the SDK's own lines ("Activity failed", ...) included: the
 * SDK asks the interceptors for a line's attributes each time it logs.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { ToolCallInput } from '../contract/run-contract';

export const toolCallLogAttributes: ActivityInterceptorsFactory = () => {
  let toolCallId: string | undefined;
  return {
    inbound: {
      execute: (input, next) => {
        const callKey = (input.args[0] as Partial<ToolCallInput> | undefined)?.callKey;
        if (typeof callKey === 'string') toolCallId = callKey;
        return next(input);
      },
    },
    outbound: {
      getLogAttributes: (attributes, next) => next(toolCallId === undefined ? attributes : { ...attributes, toolCallId }),
    },
  };
};

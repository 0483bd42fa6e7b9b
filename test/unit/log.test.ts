/**
 * The log's settings and the shape the SDK's lines are put into (the lines
 * themselves are checked end to end in test/e2e/logs.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../common/errors';
import { logLevel, runFields } from '../../common/log';
import { sdkFields } from '../../worker/runtime';

const activityLine = {
  sdkComponent: 'activity',
  taskToken: 'CiQwMWEyMzNkMy1jOWNlLTdkNGQtOTA0Mi1lMjgwMGYyODZkMGUSImFnZW50LXJ1bi0y',
  activityType: 'runTool',
  workflowId: 'agent-run-27b16c9a8dc15cc478205231',
  workflowRunId: '01a233d3-df18-7d2e-8e10-bc5ce1ecea05',
  toolCallId: 'chatcmpl-27b16c9a8dc15cc478205231:0',
};

describe('LOG_LEVEL', () => {
  test('info by default; any of the five levels', () => {
    assert.equal(logLevel({}), 'info');
    assert.equal(logLevel({ LOG_LEVEL: 'debug' }), 'debug');
  });

  test('refuses anything else, naming the variable and the levels', () => {
    assert.throws(
      () => logLevel({ LOG_LEVEL: 'verbose' }),
      (err: unknown) =>
        err instanceof ConfigError && err.message === "LOG_LEVEL must be 'trace' or 'debug' or 'info' or 'warn' or 'error', got 'verbose'",
    );
  });
});

describe("the SDK's fields", () => {
  test("an activity line names our run id and Temporal's apart, and drops the task token below debug", () => {
    for (const level of ['INFO', 'WARN', 'ERROR'] as const) {
      assert.deepEqual(sdkFields(level, activityLine), {
        sdkComponent: 'activity',
        activityType: 'runTool',
        workflowId: 'agent-run-27b16c9a8dc15cc478205231',
        toolCallId: 'chatcmpl-27b16c9a8dc15cc478205231:0',
        runId: 'chatcmpl-27b16c9a8dc15cc478205231',
        temporalRunId: '01a233d3-df18-7d2e-8e10-bc5ce1ecea05',
      });
    }
  });

  test('debug and trace lines keep the task token', () => {
    for (const level of ['DEBUG', 'TRACE'] as const) assert.equal(sdkFields(level, activityLine).taskToken, activityLine.taskToken);
  });

  test("a workflow line's runId is Temporal's", () => {
    const fields = sdkFields('INFO', { sdkComponent: 'workflow', workflowId: 'agent-run-27b16c9a8dc15cc478205231', runId: '01a2-temporal' });
    assert.equal(fields.runId, 'chatcmpl-27b16c9a8dc15cc478205231');
    assert.equal(fields.temporalRunId, '01a2-temporal');
  });

  test('a line about no run of ours gets no run id', () => {
    assert.deepEqual(sdkFields('INFO', { sdkComponent: 'worker', taskQueue: 'durable-agents' }), {
      sdkComponent: 'worker',
      taskQueue: 'durable-agents',
    });
  });

  test('our own lines name a run the same way', () => {
    assert.deepEqual(runFields('chatcmpl-27b16c9a8dc15cc478205231'), {
      runId: 'chatcmpl-27b16c9a8dc15cc478205231',
      workflowId: 'agent-run-27b16c9a8dc15cc478205231',
    });
  });
});

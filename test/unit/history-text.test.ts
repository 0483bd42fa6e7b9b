/**
 * The leak checks search histories through historyAsText: a positive control
 * that a secret inside a payload is found there, where a plain JSON.stringify
 * of the history (payload bytes as base64) misses it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { historyAsText } from '../support/history';

const SECRET = 'planted-secret-4f1c2a';
const b64 = (text: string) => Buffer.from(text).toString('base64');

test('a secret in any payload (here a memo) is found; a plain JSON.stringify misses it', () => {
  const payload = (value: unknown) => ({ metadata: { encoding: b64('json/plain') }, data: b64(JSON.stringify(value)) });
  const history = historyFromJSON({
    events: [
      {
        eventId: '1',
        eventTime: '2026-01-01T00:00:00Z',
        eventType: 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED',
        workflowExecutionStartedEventAttributes: {
          workflowType: { name: 'agentRun' },
          input: { payloads: [payload({ messages: [{ role: 'user', content: 'no secret here' }] })] },
          memo: { fields: { note: payload({ key: SECRET }) } },
        },
      },
    ],
  });
  assert.equal(JSON.stringify(history).includes(SECRET), false, 'the trap this helper avoids');
  const text = historyAsText(history);
  assert.ok(text.includes(SECRET));
  assert.ok(text.includes('no secret here'));
  assert.ok(text.includes('json/plain'), 'metadata is decoded too');
});

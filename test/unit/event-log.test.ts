/** The workflow's offset-addressed event log (pure: no workflow needed). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CompletionEvent } from '../../contract/wire';
import { EventLog } from '../../workflows/event-log';

const event = (n: number, size = 10): CompletionEvent => ({
  id: 'chatcmpl-1',
  object: 'tool.completion',
  created: n,
  system_fingerprint: 'durable-agents',
  choices: [{ index: 0, message: { role: 'tool', content: 'x'.repeat(size), refusal: null, tool_call_id: `c${n}`, name: 't' }, finish_reason: '' }],
  usage: {},
});

test('offsets run on across a continue-as-new: earlier ones are found in the execution before', () => {
  const log = new EventLog(3, 'earlier-run');
  log.push(event(3));
  log.push(event(4));
  assert.equal(log.length, 5);
  assert.deepEqual(log.batchAfter(0), { from: 3, events: [], earlier: 'earlier-run' });
  assert.deepEqual(
    log.batchAfter(2).events.map((e) => e.created),
    [3, 4],
  );
  assert.ok(log.hasAfter(3) && !log.hasAfter(4));
});

test('the terminal record comes with the batch that holds the last event', () => {
  const log = new EventLog(0, undefined);
  log.push(event(0));
  log.terminal = { status: 'completed' };
  assert.deepEqual(log.batchAfter(-1).terminal, { status: 'completed' });
  assert.deepEqual(log.batchAfter(0), { from: 1, events: [], terminal: { status: 'completed' } });
});

test('a batch stops at 256 KiB, but always carries at least one event', () => {
  const log = new EventLog(0, undefined);
  for (let i = 0; i < 5; i++) log.push(event(i, 100 * 1024));
  log.terminal = { status: 'completed' };
  const first = log.batchAfter(-1);
  assert.deepEqual(
    first.events.map((e) => e.created),
    [0, 1],
  );
  assert.equal(first.terminal, undefined, 'not the end yet');
  const huge = new EventLog(0, undefined);
  huge.push(event(0, 400 * 1024));
  assert.equal(huge.batchAfter(-1).events.length, 1);
  assert.equal(log.batchAfter(-1, 1).events.length, 1, 'and never more than the limit asked for');
});

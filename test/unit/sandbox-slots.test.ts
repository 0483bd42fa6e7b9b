/** The sandbox's slots (SANDBOX_MAX_CONCURRENT): calls beyond the cap wait in order, until their deadline or cancellation. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Slots } from '../../runtimes/sandbox/slots';

test('calls beyond the cap wait, and get slots in arrival order as others release theirs', async () => {
  const slots = new Slots(2);
  assert.equal(await slots.acquire(1000), true);
  assert.equal(slots.tryAcquire(), true);
  assert.equal(slots.tryAcquire(), false);
  const order: string[] = [];
  const a = slots.acquire(10_000).then((got) => order.push(`a:${got}`));
  const b = slots.acquire(10_000).then((got) => order.push(`b:${got}`));
  assert.equal(slots.queued, 2);
  slots.release();
  await a;
  assert.deepEqual(order, ['a:true']);
  slots.release();
  await b;
  assert.deepEqual(order, ['a:true', 'b:true']);
  assert.equal(slots.queued, 0);
  assert.equal(slots.tryAcquire(), false, 'both slots are held again');
});

test('a wait ends at its deadline (false) or on cancellation (its reason), and leaves the queue', async () => {
  const slots = new Slots(1);
  assert.equal(slots.tryAcquire(), true);
  assert.equal(await slots.acquire(20), false);
  const controller = new AbortController();
  const cancelled = slots.acquire(10_000, controller.signal);
  const next = slots.acquire(10_000);
  controller.abort(new Error('run cancelled'));
  await assert.rejects(cancelled, /run cancelled/);
  assert.equal(slots.queued, 1);
  slots.release();
  assert.equal(await next, true, 'the slot went to the one still waiting');
  await assert.rejects(slots.acquire(10, AbortSignal.abort(new Error('already cancelled'))), /already cancelled/);
  assert.throws(() => new Slots(0), /positive integer/);
});

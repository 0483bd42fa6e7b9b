/**
 * The payload store's sweeper against a real Temporal dev server: what a
 * retained run may still reference stays, what no retained run can reference
 * goes. "Now" is moved forward instead of waiting out a retention period.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { payloadHorizon, sweepPayloads, SWEEP_GRACE_MS } from '../../api/payload-sweeper';
import { AGENT_RUN_WORKFLOW, TASK_QUEUE } from '../../contract/run-contract';
import { freePort, startDevServer, type DevServer } from '../../dev/dev-server';
import { locateTemporalCli } from '../../dev/temporal-cli';
import { until } from '../support/wait';

const HOUR = 3600_000;
let server: DevServer;
let client: Client;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sweeper-'));

before(async () => {
  server = await startDevServer({ cliPath: await locateTemporalCli(), port: await freePort() });
  client = new Client({ connection: await Connection.connect({ address: server.address }) });
});
after(async () => {
  await client.connection.close();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A payload file last written at `when`. */
function payload(name: string, when: number): string {
  const file = path.join(dir, name.padEnd(64, name));
  fs.writeFileSync(file, 'p');
  fs.utimesSync(file, new Date(when), new Date(when));
  return file;
}

async function retentionMs(): Promise<number> {
  const { config } = await client.workflowService.describeNamespace({ namespace: 'default' });
  return Number(config?.workflowExecutionRetentionTtl?.seconds) * 1000;
}

describe('the payload sweeper', () => {
  beforeEach(() => {
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name));
  });

  test('with no old runs, payloads older than the retention and the grace go', async () => {
    const now = Date.now();
    const retention = await retentionMs();
    assert.ok(retention > 0);
    assert.equal((await payloadHorizon(client, 'default', new Date(now))).getTime(), now - retention - SWEEP_GRACE_MS);
    const gone = payload('a', now - retention - SWEEP_GRACE_MS - HOUR);
    const kept = payload('b', now - retention - SWEEP_GRACE_MS + HOUR);
    assert.equal(await sweepPayloads(client, 'default', dir, new Date(now)), 1);
    assert.equal(fs.existsSync(gone), false);
    assert.equal(fs.existsSync(kept), true);
  });

  test('a run older than the retention that Temporal still keeps protects what was written since it started', async () => {
    // A run that stays open (no worker polls this queue in this test), started now...
    const handle = await client.workflow.start(AGENT_RUN_WORKFLOW, { taskQueue: TASK_QUEUE, workflowId: `agent-run-${Date.now()}`, args: [] });
    const started = (await handle.describe()).startTime.getTime();
    // ...seen from two retention periods later.
    const later = new Date(started + 2 * (await retentionMs()));
    await until(async () => (await payloadHorizon(client, 'default', later)).getTime() === started - SWEEP_GRACE_MS, 'the run in visibility');
    const beforeTheRun = payload('c', started - SWEEP_GRACE_MS - HOUR);
    const duringTheRun = payload('d', started + HOUR);
    const inTheGrace = payload('e', started - SWEEP_GRACE_MS / 2);
    assert.equal(await sweepPayloads(client, 'default', dir, later), 1);
    assert.equal(fs.existsSync(beforeTheRun), false);
    assert.equal(fs.existsSync(duringTheRun), true, 'what the old run may reference stays');
    assert.equal(fs.existsSync(inTheGrace), true);
    await handle.terminate();
    // Closed, but kept for the retention period: still protected.
    assert.equal((await payloadHorizon(client, 'default', later)).getTime(), started - SWEEP_GRACE_MS);
  });

  test('files that are not payloads are left alone; half-written ones go too', async () => {
    const old = Date.now() - 400 * 24 * HOUR;
    const notOurs = path.join(dir, 'README');
    fs.writeFileSync(notOurs, 'x');
    fs.utimesSync(notOurs, new Date(old), new Date(old));
    const partial = payload('f', old);
    fs.renameSync(partial, `${partial}.123.partial`);
    await sweepPayloads(client, 'default', dir);
    assert.equal(fs.existsSync(notOurs), true);
    assert.equal(fs.existsSync(`${partial}.123.partial`), false);
  });
});

/**
 * Determinism check: the saved histories of real runs (test/replay/histories,
 * recorded by test/replay/record.ts) are replayed through today's workflow
 * code. A change that would break runs already in flight (a command added,
 * removed or reordered without `patched()`) fails here. No server needed.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

const HISTORIES = path.join(__dirname, 'histories');
const files = fs
  .readdirSync(HISTORIES)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('the saved histories cover every recorded scenario', () => {
  for (const scenario of ['tool-call', 'cancel-during-tool', 'continue-as-new', 'upstream-4xx', 'idempotent-reattach', 'parallel-tools']) {
    assert.ok(
      files.some((f) => new RegExp(`^${scenario}(-\\d+)?\\.json$`).test(f)),
      `no history of ${scenario} recorded with today's workflow code`,
    );
  }
  assert.ok(files.filter((f) => /^continue-as-new-\d+\.json$/.test(f)).length >= 2, 'the run continued as new at least once');
  // Runs started by older workflow code may still be in flight: their histories stay (v1: before the 'lean-steps' patch).
  assert.ok(files.filter((f) => f.startsWith('v1-')).length >= 5, 'the histories of the first version are kept');
});

test('every saved history replays through the current workflow code', { timeout: 120_000 }, async () => {
  const histories = files.map((file) => ({
    workflowId: file.replace(/\.json$/, ''),
    history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(HISTORIES, file), 'utf8'))),
  }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories)) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  assert.equal(replayed, files.length);
  assert.deepEqual(failures, []);
});

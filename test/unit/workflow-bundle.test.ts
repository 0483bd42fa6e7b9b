/**
 * The workflow bundle is built by a child process (worker/workflow-bundle.ts):
 * it must get the worker's module loaders and nothing else of its Node
 * options, and a failed build must say why.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { buildWorkflowBundle, loaderOptions } from '../../worker/workflow-bundle';

describe('the workflow bundle', () => {
  test("the child gets the worker's module loaders, not its --eval, --test or --inspect", () => {
    assert.deepEqual(
      loaderOptions(['--import', 'tsx', '--eval', 'run()', '--inspect-brk=9229', '--require=./a.js', '--test', '-r', 'b', '--loader']),
      ['--import', 'tsx', '--require=./a.js', '-r', 'b'],
    );
  });

  test("is the workflows' code", async () => {
    const { code } = await buildWorkflowBundle(require.resolve('../../workflows'));
    assert.match(code, /agentRun/);
    assert.match(code, /__TEMPORAL__/);
  });

  test('that cannot be built fails with what the bundler said', async () => {
    const missing = path.resolve(__dirname, 'no-such-workflows.ts');
    await assert.rejects(buildWorkflowBundle(missing), (err: Error) => {
      assert.match(err.message, /^building the workflow bundle failed \(exit 1\): /);
      assert.match(err.message, /no-such-workflows/);
      return true;
    });
  });
});

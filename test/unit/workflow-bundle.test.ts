/**
 * The workflow bundle is built by a child process (worker/workflow-bundle.ts):
 * it must get the worker's module loaders and nothing else of its Node
 * options, and a failed build must say why.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { buildWorkflowBundle, loaderOptions } from '../../worker/workflow-bundle';

describe('the workflow bundle', () => {
  test("the child gets the worker's module loaders, not its --eval, --test or --inspect", () => {
    assert.deepEqual(
      loaderOptions(['--import', 'tsx', '--eval', 'run()', '--inspect-brk=9229', '--require=./a.js', '--test', '-r', 'b', '--loader']),
      ['--import', 'tsx', '--require=./a.js', '-r', 'b'],
    );
  });

  test("carries the workflow interceptors of the worker's plugins (tracing's)", async () => {
    const plugin = new OpenTelemetryPlugin({ resource: new Resource({}), spanProcessor: new SimpleSpanProcessor(new InMemorySpanExporter()) });
    const traced = await buildWorkflowBundle(require.resolve('../../workflows'), { plugins: [plugin] });
    const plain = await buildWorkflowBundle(require.resolve('../../workflows'));
    const interceptors = /@temporalio\/interceptors-opentelemetry\/lib\/workflow-interceptors\.js/;
    assert.match(traced.code, interceptors);
    assert.doesNotMatch(plain.code, interceptors);
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

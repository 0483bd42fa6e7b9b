/**
 * The pieces that keep an agent step cheap, without a server: the Temporal
 * server settings (the embedded dev server's and the ones shipped for a real
 * server agree).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../dev/dev-server';

/** `key:\n  - value: v` entries of a Temporal dynamic config file, values as JSON. */
function dynamicConfigFile(file: string): Record<string, unknown> {
  const entries: Record<string, unknown> = {};
  let key: string | undefined;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const name = /^([\w.]+):\s*$/.exec(line)?.[1];
    if (name) key = name;
    const value = /^\s+- value:\s*(.+)$/.exec(line)?.[1];
    if (key && value !== undefined) entries[key] = JSON.parse(value);
  }
  return entries;
}

describe('Temporal server settings', () => {
  test('deploy/temporal/dynamicconfig.yaml carries every setting of the embedded dev server, with the same value', () => {
    const file = dynamicConfigFile(path.resolve(__dirname, '../../deploy/temporal/dynamicconfig.yaml'));
    for (const [key, value] of Object.entries(DEV_SERVER_DYNAMIC_CONFIG)) assert.deepEqual(file[key], value, key);
    assert.deepEqual(DEV_SERVER_DYNAMIC_CONFIG, {
      'system.enableActivityEagerExecution': true,
      'matching.numTaskqueueReadPartitions': 1,
      'matching.numTaskqueueWritePartitions': 1,
      'system.forceSearchAttributesCacheRefreshOnRead': false,
    });
  });
});

/**
 * API keys and their ids: keys too short to be safe are refused at start
 * (naming the variable, never the key), and a key's id is a keyed hash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { keyIdOf } from '../../api/key-ids';
import { apiConfig } from '../../common/config';
import { ConfigError } from '../../common/errors';

const KEY = 'a-key-long-enough-to-be-accepted';
const refusal = (env: Record<string, string>) => {
  try {
    apiConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  return assert.fail('accepted');
};

describe('API key settings', () => {
  test('keys of 24 characters or more are accepted; admin keys are separate', () => {
    const config = apiConfig({
      AGENTS_API_KEYS: `${KEY}, ${'x'.repeat(24)}`,
      AGENTS_ADMIN_KEYS: 'y'.repeat(30),
      AGENTS_KEY_ID_SECRET: 's'.repeat(32),
    });
    assert.deepEqual(config.apiKeys, [KEY, 'x'.repeat(24)]);
    assert.deepEqual(config.adminKeys, ['y'.repeat(30)]);
    assert.equal(config.keyIdSecret, 's'.repeat(32));
  });

  test('a short key is refused, naming the variable and the entry but not the key', () => {
    const message = refusal({ AGENTS_API_KEYS: `${KEY},hunter2` });
    assert.equal(message, 'AGENTS_API_KEYS: key 2 of 2 is 7 characters long; keys must be at least 24 characters (e.g. openssl rand -base64 32)');
    assert.match(refusal({ AGENTS_ADMIN_KEYS: 'root' }), /^AGENTS_ADMIN_KEYS: key 1 of 1 is 4 characters long/);
    assert.match(refusal({ AGENTS_KEY_ID_SECRET: 'tiny' }), /^AGENTS_KEY_ID_SECRET must be at least 32 characters long, got 4/);
  });

  test('quota settings and their refusals', () => {
    assert.deepEqual(apiConfig({ KEY_MAX_CONCURRENT_RUNS: '3', KEY_REQUESTS_PER_MINUTE: '90' }).quotas, { concurrentRuns: 3, requestsPerMinute: 90 });
    assert.equal(refusal({ KEY_MAX_CONCURRENT_RUNS: '0' }), "KEY_MAX_CONCURRENT_RUNS must be a positive integer, got '0'");
    assert.equal(refusal({ KEY_REQUESTS_PER_MINUTE: 'lots' }), "KEY_REQUESTS_PER_MINUTE must be a positive integer, got 'lots'");
    assert.equal(refusal({ MAX_TOOL_CALLS: '-1' }), "MAX_TOOL_CALLS must be a positive integer, got '-1'");
  });
});

describe('key ids', () => {
  test('an HMAC under the deployment secret: stable, distinct per key and per secret, not a plain hash', () => {
    const secret = 'a-deployment-secret-of-32-characters!';
    const id = keyIdOf(secret, KEY);
    assert.match(id, /^key_[0-9a-f]{32}$/);
    assert.equal(keyIdOf(secret, KEY), id);
    assert.notEqual(keyIdOf(secret, `${KEY}!`), id);
    assert.notEqual(keyIdOf(`${secret}!`, KEY), id);
    assert.equal(id.includes(createHash('sha256').update(KEY).digest('hex').slice(0, 12)), false);
  });
});

/**
 * Settings are read once, through the shared validators: defaults, and a
 * refusal that names the variable and what it must be.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { apiConfig, serviceConfig, workerConfig } from '../../common/config';
import { ConfigError } from '../../common/errors';

/** One test per case: `parse(env)` throws a ConfigError with exactly this message. */
function refusesEach(parse: (env: Record<string, string>) => unknown, cases: [Record<string, string>, string][]): void {
  for (const [env, message] of cases) {
    test(`refuses ${JSON.stringify(env)}`, () => {
      assert.throws(
        () => parse(env),
        (err: unknown) => err instanceof ConfigError && err.message === message,
      );
    });
  }
}

describe('apiConfig', () => {
  test('defaults', () => {
    assert.deepEqual(apiConfig({}), {
      port: 3000,
      apiKeys: [],
      maxModelCalls: 25,
      allowedModels: [],
      defaultModel: undefined,
      maxBodyBytes: 1024 * 1024,
      keepAliveMs: 15_000,
      mcpServersFile: undefined,
      mcpMaxTtlSeconds: 120,
      payloadStoreDir: path.resolve('.data/payloads'),
      parallelToolCalls: 4,
    });
  });

  test('lists are split on commas and trimmed; the payload store follows DATA_DIR', () => {
    const config = apiConfig({ AGENTS_API_KEYS: ' a, b ,,c', ALLOWED_MODELS: 'm1,m2', DATA_DIR: '/srv/data' });
    assert.deepEqual(config.apiKeys, ['a', 'b', 'c']);
    assert.deepEqual(config.allowedModels, ['m1', 'm2']);
    assert.equal(config.payloadStoreDir, '/srv/data/payloads');
    assert.equal(apiConfig({ PAYLOAD_STORE_DIR: '/shared/p', DATA_DIR: '/srv/data' }).payloadStoreDir, '/shared/p');
  });

  const refusals: [Record<string, string>, string][] = [
    [{ PORT: '80.5' }, "PORT must be a port number from 1 to 65535, got '80.5'"],
    [{ PORT: '70000' }, "PORT must be a port number from 1 to 65535, got '70000'"],
    [{ PORT: 'http' }, "PORT must be a port number from 1 to 65535, got 'http'"],
    [{ MAX_MODEL_CALLS_PER_RUN: '0' }, "MAX_MODEL_CALLS_PER_RUN must be a positive integer, got '0'"],
    [{ MAX_REQUEST_BYTES: '1mb' }, "MAX_REQUEST_BYTES must be a positive integer, got '1mb'"],
    [{ SSE_KEEPALIVE_MS: '-5' }, "SSE_KEEPALIVE_MS must be a positive integer, got '-5'"],
    [{ MAX_PARALLEL_TOOL_CALLS: '0' }, "MAX_PARALLEL_TOOL_CALLS must be a positive integer, got '0'"],
  ];
  refusesEach(apiConfig, refusals);
});

describe('workerConfig', () => {
  test('defaults: local inference, no Heroku, the bubblewrap sandbox with the worker PATH', () => {
    const config = workerConfig({ PATH: '/usr/bin:/bin' });
    assert.deepEqual(config.inference, { url: 'http://127.0.0.1:11434', key: '' });
    assert.equal(config.heroku, undefined);
    assert.deepEqual(config.sandbox, { mode: 'bubblewrap', workerPath: '/usr/bin:/bin' });
    assert.deepEqual(config.fetchAllowHosts, []);
  });

  test('model calls and tool calls are sized apart; the conversation cache in MB', () => {
    const defaults = workerConfig({});
    assert.deepEqual([defaults.modelCallSlots, defaults.toolCallSlots, defaults.conversationCacheBytes], [200, 50, 64 * 2 ** 20]);
    const set = workerConfig({ MAX_CONCURRENT_MODEL_CALLS: '500', MAX_CONCURRENT_TOOL_CALLS: '8', CONVERSATION_CACHE_MB: '1' });
    assert.deepEqual([set.modelCallSlots, set.toolCallSlots, set.conversationCacheBytes], [500, 8, 2 ** 20]);
  });

  test('the Heroku token turns on one-off dynos; URLs lose a trailing slash', () => {
    const config = workerConfig({ HEROKU_API_KEY: 'tok', INFERENCE_URL: 'https://inference.example/', INFERENCE_KEY: 'k' });
    assert.deepEqual(config.heroku, { token: 'tok', apiUrl: 'https://api.heroku.com' });
    assert.deepEqual(config.inference, { url: 'https://inference.example', key: 'k' });
  });

  test('tools get a database URL look-up, not the environment', () => {
    const config = workerConfig({ DATABASE_URL: 'postgres://db', INFERENCE_KEY: 'secret' });
    assert.equal(config.databaseUrl('DATABASE'), 'postgres://db');
    assert.equal(config.databaseUrl('FOLLOWER'), undefined);
    assert.ok(!JSON.stringify(config).includes('postgres://db'), 'the URL is not a field of the config');
    assert.ok(!('env' in config));
  });

  const refusals: [Record<string, string>, string][] = [
    [{ TOOL_SANDBOX: 'docker' }, "TOOL_SANDBOX must be 'bubblewrap' or 'none', got 'docker'"],
    [{ INFERENCE_URL: 'localhost:11434' }, "INFERENCE_URL must be an http(s) URL, got 'localhost:11434'"],
    [{ HEROKU_API_KEY: 't', HEROKU_API_URL: 'not a url' }, "HEROKU_API_URL must be an http(s) URL, got 'not a url'"],
    [{ FETCH_ALLOW_HOSTS: 'example.com,http://x/y' }, "FETCH_ALLOW_HOSTS entry 'http://x/y' is not a host or host:port"],
    [{ MAX_CONCURRENT_MODEL_CALLS: 'many' }, "MAX_CONCURRENT_MODEL_CALLS must be a positive integer, got 'many'"],
    [{ MAX_CONCURRENT_TOOL_CALLS: '1.5' }, "MAX_CONCURRENT_TOOL_CALLS must be a positive integer, got '1.5'"],
    [{ CONVERSATION_CACHE_MB: '0' }, "CONVERSATION_CACHE_MB must be a positive integer, got '0'"],
  ];
  refusesEach(workerConfig, refusals);
});

describe('serviceConfig', () => {
  test('without TEMPORAL_ADDRESS npm start embeds a dev server on 7233, its UI on 8233', () => {
    assert.deepEqual(serviceConfig({}), { dataDir: path.resolve('.data'), embeddedTemporal: { port: 7233, uiPort: 8233, cliPath: undefined } });
    assert.deepEqual(serviceConfig({ TEMPORAL_DEV_PORT: '7300' }).embeddedTemporal, { port: 7300, uiPort: 8300, cliPath: undefined });
  });

  test('with TEMPORAL_ADDRESS it embeds nothing', () => {
    assert.equal(serviceConfig({ TEMPORAL_ADDRESS: 'temporal:7233' }).embeddedTemporal, undefined);
  });

  test('refuses a bad port', () => {
    assert.throws(() => serviceConfig({ TEMPORAL_UI_PORT: '0' }), /^ConfigError: TEMPORAL_UI_PORT must be a port number/);
  });
});

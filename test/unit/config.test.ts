/**
 * Settings are read once, through the shared validators: defaults, and a
 * refusal that names the variable and what it must be.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
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
      adminKeys: [],
      keyIdSecret: undefined,
      quotas: { concurrentRuns: 50, requestsPerMinute: 600 },
      toolLimits: { herokuApps: [], dynoSizes: [], maxToolCalls: 100, maxApprovalTimeoutSeconds: 30 * 86_400 },
      payloadSweepIntervalSeconds: 3600,
      maxModelCalls: 25,
      allowedModels: [],
      defaultModel: undefined,
      maxBodyBytes: 1024 * 1024,
      keepAliveMs: 15_000,
      mcpServersFile: undefined,
      mcpMaxTtlSeconds: 120,
      payloadStoreDir: path.resolve('.data/payloads'),
      toolSchemas: { maxBytes: 32 * 1024, maxDepth: 32, cacheSize: 200 },
      parallelToolCalls: 4,
      metricsToken: undefined,
      tracing: undefined,
      webhooks: { allowHosts: [] },
      webhookMaxAttempts: 10,
      keyDailyTokenBudget: undefined,
      usageMaxDays: 366,
    });
  });

  test('WEBHOOK_SECRET is whsec_ and the base64 of a key of 24+ bytes; WEBHOOK_ALLOW_HOSTS entries are hosts', () => {
    const key = Buffer.alloc(32, 7);
    assert.deepEqual(apiConfig({ WEBHOOK_SECRET: `whsec_${key.toString('base64')}`, WEBHOOK_ALLOW_HOSTS: 'hooks.internal:8443' }).webhooks, {
      key,
      allowHosts: [{ hostname: 'hooks.internal', port: 8443 }],
    });
    const refusal = 'WEBHOOK_SECRET must be whsec_ followed by the base64 of a key of at least 24 bytes';
    for (const bad of [key.toString('base64'), 'whsec_', 'whsec_not base64!', `whsec_${Buffer.alloc(8).toString('base64')}`]) {
      assert.throws(() => apiConfig({ WEBHOOK_SECRET: bad }), { name: 'ConfigError', message: refusal }, bad);
    }
    assert.throws(() => workerConfig({ WEBHOOK_ALLOW_HOSTS: 'http://x/' }), {
      name: 'ConfigError',
      message: "WEBHOOK_ALLOW_HOSTS entry 'http://x/' is not a host or host:port",
    });
  });

  test('metrics and traces: METRICS_TOKEN guards /metrics; OTEL_EXPORTER_OTLP_ENDPOINT turns traces on', () => {
    const config = apiConfig({ METRICS_TOKEN: 'scrape-me', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
    assert.equal(config.metricsToken, 'scrape-me');
    assert.deepEqual(config.tracing, { endpoint: 'http://collector:4318', serviceName: 'durable-agents' });
    assert.equal(apiConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SERVICE_NAME: 'agents-api' }).tracing?.serviceName, 'agents-api');
  });

  test('lists are split on commas and trimmed; the payload store follows DATA_DIR', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(24));
    const config = apiConfig({ AGENTS_API_KEYS: ` ${a}, ${b} ,,${c}`, ALLOWED_MODELS: 'm1,m2', DATA_DIR: '/srv/data' });
    assert.deepEqual(config.apiKeys, [a, b, c]);
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
    [{ TOOL_SCHEMA_MAX_BYTES: '32k' }, "TOOL_SCHEMA_MAX_BYTES must be a positive integer, got '32k'"],
    [{ MAX_PARALLEL_TOOL_CALLS: '0' }, "MAX_PARALLEL_TOOL_CALLS must be a positive integer, got '0'"],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got 'collector:4318'"],
  ];
  refusesEach(apiConfig, refusals);
});

describe('workerConfig', () => {
  test('defaults: local inference, no Heroku, the bubblewrap sandbox with per-call limits', () => {
    const config = workerConfig({ PATH: '/usr/bin:/bin' });
    assert.deepEqual(config.inference, { url: 'http://127.0.0.1:11434', key: '', checkTimeoutMs: 3_000 });
    assert.equal(config.heroku, undefined);
    assert.deepEqual(config.sandbox, {
      mode: 'bubblewrap',
      workerPath: '/usr/bin:/bin',
      limits: {
        enforced: true,
        memoryBytes: 1024 * 1024 * 1024,
        pids: 128,
        cpus: 1,
        tmpBytes: 256 * 1024 * 1024,
        maxConcurrent: availableParallelism(),
      },
    });
    assert.deepEqual(config.fetchAllowHosts, []);
  });

  test('the metrics listener only with METRICS_PORT', () => {
    assert.equal(workerConfig({}).metricsPort, undefined);
    assert.equal(workerConfig({ METRICS_PORT: '9464' }).metricsPort, 9464);
  });

  refusesEach(workerConfig, [[{ METRICS_PORT: 'x' }, "METRICS_PORT must be a port number from 1 to 65535, got 'x'"]]);

  test('the sandbox limits follow SANDBOX_*', () => {
    const env = {
      SANDBOX_LIMITS: 'off',
      SANDBOX_MEMORY_MB: '512',
      SANDBOX_PIDS: '64',
      SANDBOX_CPUS: '0.5',
      SANDBOX_TMP_MB: '100',
      SANDBOX_MAX_CONCURRENT: '8',
    };
    assert.deepEqual(workerConfig(env).sandbox.limits, {
      enforced: false,
      memoryBytes: 512 * 1024 * 1024,
      pids: 64,
      cpus: 0.5,
      tmpBytes: 100 * 1024 * 1024,
      maxConcurrent: 8,
    });
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
    assert.deepEqual(config.inference, { url: 'https://inference.example', key: 'k', checkTimeoutMs: 3_000 });
  });

  test('tools get a database URL look-up, not the environment', () => {
    const config = workerConfig({ DATABASE_URL: 'postgres://db', INFERENCE_KEY: 'secret' });
    assert.equal(config.postgres.databaseUrl('DATABASE'), 'postgres://db');
    assert.equal(config.postgres.databaseUrl('FOLLOWER'), undefined);
    assert.ok(!JSON.stringify(config).includes('postgres://db'), 'the URL is not a field of the config');
    assert.ok(!('env' in config));
  });

  test('database tools: no attachment list by default, a pool of 5, a lock timeout of 5 s', () => {
    const { attachments, poolSize, lockTimeoutMs } = workerConfig({}).postgres;
    assert.deepEqual({ attachments, poolSize, lockTimeoutMs }, { attachments: undefined, poolSize: 5, lockTimeoutMs: 5000 });
    assert.deepEqual(workerConfig({ POSTGRES_ATTACHMENTS: 'DATABASE, HEROKU_POSTGRESQL_RED' }).postgres.attachments, [
      'DATABASE',
      'HEROKU_POSTGRESQL_RED',
    ]);
  });

  test('document conversion: limits, and a converter environment without the worker’s secrets', () => {
    const config = workerConfig({
      PATH: '/usr/bin',
      TMPDIR: '/scratch',
      HEROKU_API_KEY: 'tok',
      DATABASE_URL: 'postgres://db',
      WEB_MAX_PDF_PAGES: '20',
    });
    assert.deepEqual(config.web, { maxHtmlBytes: 5 * 1024 * 1024, maxPdfBytes: 10 * 1024 * 1024, maxHtmlDepth: 512, maxPdfPages: 20 });
    assert.deepEqual(config.converter, { processes: 2, maxMemoryMb: 1024, env: { PATH: '/usr/bin', TMPDIR: '/scratch' } });
  });

  const refusals: [Record<string, string>, string][] = [
    [{ TOOL_SANDBOX: 'docker' }, "TOOL_SANDBOX must be 'bubblewrap' or 'none', got 'docker'"],
    [{ SANDBOX_LIMITS: 'no' }, "SANDBOX_LIMITS must be 'on' or 'off', got 'no'"],
    [{ SANDBOX_MEMORY_MB: '1g' }, "SANDBOX_MEMORY_MB must be a positive integer, got '1g'"],
    [{ SANDBOX_PIDS: '0' }, "SANDBOX_PIDS must be a positive integer, got '0'"],
    [{ SANDBOX_CPUS: '0.001' }, "SANDBOX_CPUS must be a number of at least 0.01, got '0.001'"],
    [{ SANDBOX_CPUS: 'all' }, "SANDBOX_CPUS must be a number of at least 0.01, got 'all'"],
    [{ SANDBOX_MAX_CONCURRENT: '-1' }, "SANDBOX_MAX_CONCURRENT must be a positive integer, got '-1'"],
    [
      { SANDBOX_TMP_MB: '512', SANDBOX_MEMORY_MB: '512' },
      'SANDBOX_TMP_MB (512) must be less than SANDBOX_MEMORY_MB (512): what a call keeps in /tmp counts against its memory',
    ],
    [{ INFERENCE_URL: 'localhost:11434' }, "INFERENCE_URL must be an http(s) URL, got 'localhost:11434'"],
    [{ HEROKU_API_KEY: 't', HEROKU_API_URL: 'not a url' }, "HEROKU_API_URL must be an http(s) URL, got 'not a url'"],
    [{ FETCH_ALLOW_HOSTS: 'example.com,http://x/y' }, "FETCH_ALLOW_HOSTS entry 'http://x/y' is not a host or host:port"],
    [
      { POSTGRES_ATTACHMENTS: 'DATABASE,database_url' },
      "POSTGRES_ATTACHMENTS entry 'database_url' is not an attachment name such as DATABASE (upper-case letters, digits and '_')",
    ],
    [{ POSTGRES_POOL_SIZE: '0' }, "POSTGRES_POOL_SIZE must be a positive integer, got '0'"],
    [{ WEB_MAX_HTML_DEPTH: '0' }, "WEB_MAX_HTML_DEPTH must be a positive integer, got '0'"],
    [{ CONVERTER_MAX_MEMORY_MB: '1g' }, "CONVERTER_MAX_MEMORY_MB must be a positive integer, got '1g'"],
    [{ INFERENCE_CHECK_TIMEOUT_MS: '3s' }, "INFERENCE_CHECK_TIMEOUT_MS must be a positive integer, got '3s'"],
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

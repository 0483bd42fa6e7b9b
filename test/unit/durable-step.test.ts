/**
 * The pieces that keep an agent step cheap, without a server: the Temporal
 * server settings (the embedded dev server's and the ones shipped for a real
 * server agree), the model calls' conversation cache, and the rules that
 * keep stream polls within Temporal's limit of Updates in flight.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { ConversationCache } from '../../activities/conversation-cache';
import { MAX_WAITING_POLLS } from '../../contract/run-contract';
import type { ChatMessage } from '../../contract/wire';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../dev/dev-server';
import { WaitingPolls } from '../../workflows/stream-polls';
import YAML from 'yaml';

/** The values of a Temporal dynamic config file (`key:\n  - value: v`), by key. */
function dynamicConfigFile(file: string): Record<string, unknown> {
  const config = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, { value: unknown }[]>;
  return Object.fromEntries(Object.entries(config).map(([key, [entry]]) => [key, entry?.value]));
}

describe('Temporal server settings', () => {
  test('deploy/temporal/dynamicconfig.yaml carries every setting of the embedded dev server, with the same value', () => {
    const file = dynamicConfigFile(path.resolve(__dirname, '../../deploy/temporal/dynamicconfig.yaml'));
    for (const [key, value] of Object.entries(DEV_SERVER_DYNAMIC_CONFIG)) assert.deepEqual(file[key], value, key);
    assert.deepEqual(DEV_SERVER_DYNAMIC_CONFIG, {
      'system.enableActivityEagerExecution': true,
      'matching.numTaskqueueReadPartitions': 1,
      'matching.numTaskqueueWritePartitions': 1,
      'history.transferProcessorMaxPollRPS': 1000,
      'system.forceSearchAttributesCacheRefreshOnRead': false,
      'rpc.slowRequestLoggingThreshold': '1m',
    });
  });
});

describe('the conversation cache of model calls', () => {
  const messages = (n: number, size = 10): ChatMessage[] =>
    Array.from({ length: n }, (_, i) => ({ role: 'user' as const, content: `${i}`.padEnd(size, '.') }));

  test('gives the first n messages of an execution it has seen with at least n', () => {
    const cache = new ConversationCache(1024 * 1024);
    cache.remember('wf/run1', messages(5));
    assert.deepEqual(cache.prefix('wf/run1', 3), messages(5).slice(0, 3));
    assert.equal(cache.prefix('wf/run1', 6), undefined, 'more than it has');
    assert.equal(cache.prefix('wf/run2', 1), undefined, 'another execution (after continue-as-new or a reset)');
    cache.remember('wf/run1', messages(7));
    assert.equal(cache.prefix('wf/run1', 7)?.length, 7, 'a later call replaces the entry');
  });

  test('forgets the least recently used conversations beyond its size, and never keeps one larger than all of it', () => {
    const one = JSON.stringify(messages(1, 100)[0]).length;
    const cache = new ConversationCache(3 * one);
    cache.remember('a', messages(1, 100));
    cache.remember('b', messages(1, 100));
    cache.remember('c', messages(1, 100));
    assert.ok(cache.prefix('a', 1), 'a used last now');
    cache.remember('d', messages(1, 100));
    assert.equal(cache.prefix('b', 1), undefined, 'b was the least recently used');
    assert.ok(cache.prefix('a', 1) && cache.prefix('c', 1) && cache.prefix('d', 1));
    cache.remember('huge', messages(4, 100));
    assert.equal(cache.prefix('huge', 1), undefined);
    assert.ok(cache.prefix('a', 1), 'a conversation too large to keep evicts nothing');
  });
});

describe('waiting stream polls', () => {
  test('a newer poll of the same feed releases the older; other feeds are left alone', () => {
    const polls = new WaitingPolls();
    const first = polls.open('api-1');
    const other = polls.open('api-2');
    const second = polls.open('api-1');
    assert.deepEqual([first.released, other.released, second.released], [true, false, false]);
  });

  test(`at most MAX_WAITING_POLLS (${MAX_WAITING_POLLS}) wait: the oldest is released, so a run stays under Temporal's 10 Updates in flight`, () => {
    assert.ok(MAX_WAITING_POLLS < 10);
    const polls = new WaitingPolls();
    const opened = Array.from({ length: MAX_WAITING_POLLS + 2 }, (_, i) => polls.open(`api-${i}`));
    assert.deepEqual(
      opened.map((p) => p.released),
      opened.map((_, i) => i < 2),
    );
    polls.close(opened[5]!);
    const next = polls.open('api-next');
    assert.equal(next.released, false);
    assert.equal(opened[2]!.released, false, 'a poll that closed made room');
  });
});

/**
 * An API key's id: what runs carry (memo, the AgentApiKeyId search attribute)
 * to say which key started them, and what ownership is checked against. A
 * keyed hash (HMAC-SHA256 with AGENTS_KEY_ID_SECRET), so that someone who can
 * read ids (the Temporal UI, logs) cannot test guesses of a key against them.
 * Every API process must have the same secret, or runs lose their owner.
 */
import { createHmac } from 'node:crypto';

export function keyIdOf(secret: string, key: string): string {
  // 128 bits: two keys never share an id, and so never share runs.
  return `key_${createHmac('sha256', secret).update(key).digest('hex').slice(0, 32)}`;
}

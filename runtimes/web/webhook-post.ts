/**
 * POSTs a signed webhook body to a checked target, connected only to the
 * addresses that passed the SSRF guard (a DNS answer that changes after the
 * check cannot redirect it). Redirects are not followed: Standard Webhooks
 * counts only a 2xx as delivered.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { resolveWebhookTarget } from '../../common/webhook-target';
import type { AllowEntry } from '../../common/host-list';
import { pinnedLookup } from './safe-fetch';

/** Resolves with the receiver's HTTP status. */
export async function postWebhook(
  rawUrl: string,
  body: string,
  headers: Record<string, string>,
  opts: { allowHosts: AllowEntry[]; signal: AbortSignal },
): Promise<number> {
  const { url, addresses } = await resolveWebhookTarget(rawUrl, opts.allowHosts);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'POST',
      agent: false,
      lookup: pinnedLookup(addresses),
      signal: opts.signal,
      headers: { 'content-type': 'application/json', 'user-agent': 'durable-agents-webhook/1', ...headers },
    });
    req.once('response', (res) => {
      res.resume(); // the receiver's answer body is not read
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The deliverWebhook activity (docs/api.md#b4-background-runs-and-webhooks):
 * signs the run's outcome as Standard Webhooks prescribes and POSTs it. Each
 * attempt gets a fresh `webhook-timestamp` (and so a fresh signature), while
 * `webhook-id` and the body stay the same; Temporal retries an attempt the
 * receiver did not answer with a 2xx.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { WebhookSettings } from '../common/config';
import { webhookSignature } from '../common/webhook-signature';
import { WebhookTargetError } from '../common/webhook-target';
import { WEBHOOK_UNDELIVERABLE, type WebhookDelivery } from '../contract/run-contract';

/** POSTs `body` with `headers` to `url`, if the SSRF guard lets it; resolves with the receiver's HTTP status. */
export type WebhookPoster = (url: string, body: string, headers: Record<string, string>, signal: AbortSignal) => Promise<number>;

export function createWebhookDeliverer(settings: WebhookSettings, post: WebhookPoster) {
  return async function deliverWebhook({ url, webhookId, payload }: WebhookDelivery): Promise<void> {
    const { key } = settings;
    if (!key) throw ApplicationFailure.nonRetryable('WEBHOOK_SECRET is not set on this worker: the webhook cannot be signed', WEBHOOK_UNDELIVERABLE);
    const body = JSON.stringify(payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': webhookId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': webhookSignature(key, webhookId, timestamp, body),
    };
    let status: number;
    try {
      status = await post(url, body, headers, Context.current().cancellationSignal);
    } catch (err) {
      if (err instanceof WebhookTargetError) throw ApplicationFailure.nonRetryable(err.message, WEBHOOK_UNDELIVERABLE);
      throw new Error(`the webhook could not be delivered: ${(err as Error).message}`, { cause: err });
    }
    if (status < 200 || status >= 300) throw new Error(`the webhook receiver answered HTTP ${status}`);
  };
}

/**
 * Standard Webhooks signatures (docs/api.md#b4-background-runs-and-webhooks):
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`,
 * keyed with the base64-decoded part of WEBHOOK_SECRET.
 */
import { createHmac } from 'node:crypto';

export function webhookSignature(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * Where a webhook may go: an http(s) URL without credentials whose host
 * resolves only to public addresses (the web tools' SSRF guard,
 * common/address-policy.ts), unless the host is on WEBHOOK_ALLOW_HOSTS. The
 * API checks a request's webhook before the run starts; the worker checks it
 * again at delivery and connects only to the addresses it checked.
 */
import { promises as dns, type LookupAddress } from 'node:dns';
import { nonPublicReason } from './address-policy';
import { AppError } from './errors';
import { isAllowedHost, type AllowEntry } from './host-list';

/** A webhook URL that may not be used; the message says why. */
export class WebhookTargetError extends AppError {}

export async function resolveWebhookTarget(raw: string, allowHosts: AllowEntry[]): Promise<{ url: URL; addresses: LookupAddress[] }> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetError(`webhook '${raw}' is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WebhookTargetError('webhook must be an http or https URL');
  if (url.username || url.password) throw new WebhookTargetError('webhook must not carry credentials');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: LookupAddress[];
  try {
    addresses = await dns.lookup(host, { all: true, verbatim: true });
  } catch (err) {
    throw new WebhookTargetError(
      `webhook host ${url.hostname} could not be resolved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  if (isAllowedHost(allowHosts, url)) return { url, addresses };
  for (const { address } of addresses) {
    const reason = nonPublicReason(address);
    if (reason) {
      const resolved = address === host ? '' : ` resolves to ${address}, which`;
      throw new WebhookTargetError(
        `webhook host ${url.hostname}${resolved} is ${reason}; only public addresses may receive webhooks (WEBHOOK_ALLOW_HOSTS lists exceptions)`,
      );
    }
  }
  return { url, addresses };
}

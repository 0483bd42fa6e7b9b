/**
 * GET a URL the model chose, safely: http/https only, every hop's host
 * resolved here and checked against the address policy, the connection
 * pinned to the checked addresses (a DNS answer that changes between check
 * and connect cannot slip through), a deadline, a size cap and a content-type
 * check. Every refusal or failure is a FetchError with a readable message.
 */
import { promises as dns, type LookupAddress } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction } from 'node:net';
import { pipeline, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { isAllowedHost, type AllowEntry } from '../../common/host-list';
import { ToolError } from '../../tool-call/tool-error';
import { nonPublicReason } from '../../common/address-policy';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** A refusal or failure of a fetch, written for the model. */
export class FetchError extends ToolError {}

export interface SafeFetchOptions {
  allowHosts: AllowEntry[];
  /** Covers every hop, from the first DNS look-up to the last body byte; on abort its reason is thrown. */
  signal: AbortSignal;
  maxBytes: number;
  /** The setting behind maxBytes, named when it refuses a response. */
  maxBytesSetting: string;
  accept: string;
  /** Why a response of this media type (lower-case, no parameters; '' when absent) is not wanted, or undefined. */
  contentTypeProblem(mediaType: string): string | undefined;
}

export interface FetchedResource {
  /** After redirects. */
  url: URL;
  mediaType: string;
  /** The `charset` parameter of the Content-Type, if any. */
  charset?: string;
  body: Buffer;
}

export async function safeFetch(rawUrl: string, opts: SafeFetchOptions): Promise<FetchedResource> {
  const { signal } = opts;
  try {
    let url = parseHttpUrl(rawUrl);
    let from: URL | undefined;
    for (let hop = 0; ; hop++) {
      const addresses = await abortable(checkedAddresses(url, opts.allowHosts, from), signal);
      const res = await get(url, addresses, opts.accept, signal);
      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(res.statusCode ?? 0) && location) {
        res.destroy();
        if (hop === MAX_REDIRECTS) throw new FetchError(`${rawUrl} redirected more than ${MAX_REDIRECTS} times; stopped at ${url}`);
        from = url;
        url = parseHttpUrl(location, url);
        continue;
      }
      return await readResponse(url, res, opts);
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof FetchError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new FetchError(`could not fetch ${rawUrl}: ${(err as Error).message}${code && !(err as Error).message.includes(code) ? ` (${code})` : ''}`);
  }
}

function parseHttpUrl(raw: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new FetchError(base ? `${base} redirected to '${raw}', which is not a valid URL` : `'${raw}' is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FetchError(`refused to fetch ${url}${base ? ` (redirected from ${base})` : ''}: only http and https URLs may be fetched`);
  }
  return url;
}

/** The host's addresses, all of them public unless the host is allowed; the connection may use only these. */
async function checkedAddresses(url: URL, allowHosts: AllowEntry[], from: URL | undefined): Promise<LookupAddress[]> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: LookupAddress[];
  try {
    addresses = await dns.lookup(host, { all: true, verbatim: true });
  } catch (err) {
    throw new FetchError(`could not resolve host ${url.hostname} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (isAllowedHost(allowHosts, url)) return addresses;
  for (const { address } of addresses) {
    const reason = nonPublicReason(address);
    if (reason) {
      const resolved = address === host ? '' : ` resolves to ${address}, which`;
      const via = from ? ` (redirected from ${from})` : '';
      throw new FetchError(
        `refused to fetch ${url}${via}: host ${url.hostname}${resolved} is ${reason}; only public addresses may be fetched (FETCH_ALLOW_HOSTS lists exceptions)`,
      );
    }
  }
  return addresses;
}

/** A lookup that answers with the checked addresses only, whatever DNS says now. */
export function pinnedLookup(addresses: LookupAddress[]): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0]?.address, addresses[0]?.family);
  }) as LookupFunction;
}

function get(url: URL, addresses: LookupAddress[], accept: string, signal: AbortSignal): Promise<http.IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, {
      agent: false, // no pooled socket: each connection goes through the pinned lookup
      lookup: pinnedLookup(addresses),
      signal,
      headers: { accept, 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'durable-agents-fetch/1' },
    });
    req.once('response', resolve);
    req.on('error', reject); // also after the response: a late socket error must not go unhandled
  });
}

async function readResponse(url: URL, res: http.IncomingMessage, opts: SafeFetchOptions): Promise<FetchedResource> {
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    res.destroy();
    throw new FetchError(`${url} answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`);
  }
  const [mediaType = '', ...params] = (res.headers['content-type'] ?? '').split(';').map((s) => s.trim());
  const problem = opts.contentTypeProblem(mediaType.toLowerCase());
  if (problem) {
    res.destroy();
    throw new FetchError(`${url} ${problem}`);
  }
  const tooLarge = `${url} is larger than ${formatBytes(opts.maxBytes)}, this tool's limit (${opts.maxBytesSetting}); stopped reading`;
  if (Number(res.headers['content-length']) > opts.maxBytes) {
    res.destroy();
    throw new FetchError(tooLarge);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of decoded(url, res) as AsyncIterable<Buffer>) {
    total += chunk.length;
    // Counted after decompression, so a small compressed bomb is stopped too.
    if (total > opts.maxBytes) {
      res.destroy();
      throw new FetchError(tooLarge);
    }
    chunks.push(chunk);
  }
  const charset = params
    .find((p) => /^charset=/i.test(p))
    ?.slice('charset='.length)
    .replace(/^"(.*)"$/, '$1');
  return { url, mediaType: mediaType.toLowerCase(), ...(charset ? { charset } : {}), body: Buffer.concat(chunks) };
}

function decoded(url: URL, res: http.IncomingMessage): Readable {
  const encoding = (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? zlib.createGunzip()
      : encoding === 'deflate'
        ? zlib.createInflate()
        : encoding === 'br'
          ? zlib.createBrotliDecompress()
          : undefined;
  if (encoding !== 'identity' && !decoder) throw new FetchError(`${url} uses an unsupported Content-Encoding '${encoding}'`);
  return decoder ? pipeline(res, decoder, () => {}) : res;
}

/** `work`, or the signal's reason as soon as it aborts (the work itself is left to finish or fail). */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

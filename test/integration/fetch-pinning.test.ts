/**
 * DNS rebinding: the guarded fetch of html_to_markdown and pdf_to_markdown
 * connects to the address it checked, whatever DNS answers by the time it
 * connects. Two real HTTP servers listen on the same port of 127.0.0.1 and
 * 127.0.0.2; the name `rebind.test` resolves to the first on its first look-up
 * and to the second on every later one, as an attacker's DNS server with a
 * zero TTL would. The resolver is the one thing stubbed here (Node's
 * `dns.lookup`, which the fetch and every socket connect use), because no DNS
 * server can be pointed at from a test without changing the machine's.
 * Everything stays on loopback, so the name is put on the allow list: the
 * address policy is not what this file tests (test/unit/address-policy.test.ts
 * and test/e2e/web-tools.test.ts do that), the pinning is.
 */
import assert from 'node:assert/strict';
import dns, { type LookupAddress } from 'node:dns';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { safeFetch } from '../../runtimes/web/safe-fetch';

const HOST = 'rebind.test';
const CHECKED = '127.0.0.1';
const REBOUND = '127.0.0.2';

const servers: http.Server[] = [];
const hits: Record<string, number> = { [CHECKED]: 0, [REBOUND]: 0 };
let port = 0;
let lookups = 0;

const original = { lookup: dns.lookup, promisesLookup: dns.promises.lookup };

/** The answer for `rebind.test`: the checked address once, the rebound one ever after. */
function answer(): LookupAddress {
  return { address: lookups++ === 0 ? CHECKED : REBOUND, family: 4 };
}

function listen(address: string, onPort: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    hits[address]!++;
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<p>served by ${address}</p>`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject).listen(onPort, address, () => resolve(server));
  });
}

before(async () => {
  // The same port on both addresses, so only the address decides which server answers.
  for (;;) {
    const rebound = await listen(REBOUND, 0);
    port = (rebound.address() as AddressInfo).port;
    try {
      servers.push(await listen(CHECKED, port), rebound);
      break;
    } catch {
      rebound.close(); // that port is taken on 127.0.0.1: try another
    }
  }
  const isHost = (hostname: string) => hostname === HOST;
  dns.lookup = ((hostname: string, options: unknown, callback?: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
    const opts = (typeof options === 'object' && options) || {};
    if (!isHost(hostname)) return (original.lookup as (...args: unknown[]) => void)(hostname, options, callback);
    const a = answer();
    if ((opts as { all?: boolean }).all) cb(null, [a]);
    else cb(null, a.address, a.family);
  }) as typeof dns.lookup;
  dns.promises.lookup = ((hostname: string, options?: { all?: boolean }) => {
    if (!isHost(hostname)) return original.promisesLookup(hostname, options as never);
    const a = answer();
    return Promise.resolve(options?.all ? [a] : a);
  }) as typeof dns.promises.lookup;
});

after(async () => {
  dns.lookup = original.lookup;
  dns.promises.lookup = original.promisesLookup;
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

test('the connection goes to the address that was checked, not to what DNS answers later', async () => {
  const fetched = await safeFetch(`http://${HOST}:${port}/`, {
    allowHosts: [{ hostname: HOST }],
    signal: AbortSignal.timeout(30_000),
    maxBytes: 1024,
    maxBytesSetting: 'WEB_MAX_HTML_BYTES',
    accept: 'text/html',
    contentTypeProblem: () => undefined,
  });
  assert.equal(fetched.body.toString(), `<p>served by ${CHECKED}</p>`);
  assert.deepEqual(hits, { [CHECKED]: 1, [REBOUND]: 0 });
  assert.equal(lookups, 1, 'DNS was asked once: the connection did not look the name up again');

  // Positive control: a plain request looks the name up again and lands on the rebound address.
  const plain = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: HOST, port, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  assert.equal(plain, `<p>served by ${REBOUND}</p>`);
});

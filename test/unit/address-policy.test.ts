/**
 * The web tools' address policy, without any network: which addresses are
 * public, how URL tricks normalise, and how FETCH_ALLOW_HOSTS entries match.
 */
import { workerConfig } from '../../common/config';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAllowedHost, parseAllowEntry } from '../../common/host-list';
import { nonPublicReason } from '../../common/address-policy';

describe('nonPublicReason', () => {
  const refused: [string, string][] = [
    ['127.0.0.1', 'a loopback address'],
    ['127.255.1.2', 'a loopback address'],
    ['10.0.0.1', 'a private address'],
    ['172.16.5.4', 'a private address'],
    ['172.31.255.255', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['169.254.169.254', 'a link-local address'],
    ['100.64.0.1', 'a carrier-grade NAT (shared) address'],
    ['0.0.0.0', 'an unspecified address'],
    ['0.1.2.3', 'an unspecified address'],
    ['224.0.0.1', 'a multicast address'],
    ['255.255.255.255', 'the broadcast address'],
    ['192.0.2.10', 'a reserved address'],
    ['198.18.0.1', 'a reserved address'],
    ['240.0.0.1', 'a reserved address'],
    ['::1', 'a loopback address'],
    ['[::1]', 'a loopback address'],
    ['::', 'an unspecified address'],
    ['fe80::1', 'a link-local address'],
    ['fc00::1', 'a unique-local address'],
    ['fd12:3456::1', 'a unique-local address'],
    ['fec0::1', 'a site-local address'],
    ['ff02::1', 'a multicast address'],
    // IPv4-mapped IPv6 is judged as the IPv4 address it carries.
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:7f00:1', 'a loopback address'],
    ['[::ffff:10.0.0.1]', 'a private address'],
    ['::ffff:169.254.169.254', 'a link-local address'],
    // Other IPv6 forms that embed or tunnel to IPv4.
    ['::127.0.0.1', 'outside the global unicast range (2000::/3)'],
    ['::8.8.8.8', 'outside the global unicast range (2000::/3)'],
    ['::7f00:1', 'outside the global unicast range (2000::/3)'],
    ['64:ff9b::a00:1', 'a NAT64 address'],
    ['2002:7f00:1::', 'a 6to4 address'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'a Teredo address'],
    ['2001:db8::1', 'a reserved address'],
    ['localhost', 'not an IP address'],
    // Only canonical literals (what DNS and the URL parser give) are read.
    ['0x7f.1', 'not an IP address'],
    ['2130706433', 'not an IP address'],
    ['', 'not an IP address'],
  ];
  for (const [address, reason] of refused) {
    test(`${address || "''"} is ${reason}`, () => assert.equal(nonPublicReason(address), reason));
  }

  for (const address of [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8',
  ]) {
    test(`${address} is public`, () => assert.equal(nonPublicReason(address), undefined));
  }
});

describe('URL host tricks normalise to the address they mean', () => {
  const cases: [string, string, string][] = [
    ['http://2130706433/', '127.0.0.1', 'a loopback address'],
    ['http://0x7f000001/', '127.0.0.1', 'a loopback address'],
    ['http://0x7f.1/', '127.0.0.1', 'a loopback address'],
    ['http://0177.0.0.1/', '127.0.0.1', 'a loopback address'],
    ['http://127.1/', '127.0.0.1', 'a loopback address'],
    ['http://017700000001/', '127.0.0.1', 'a loopback address'],
    ['http://0xa9fea9fe/', '169.254.169.254', 'a link-local address'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]', 'a loopback address'],
    ['http://[0:0:0:0:0:ffff:7f00:1]/', '[::ffff:7f00:1]', 'a loopback address'],
    ['http://[0::1]/', '[::1]', 'a loopback address'],
  ];
  for (const [url, hostname, reason] of cases) {
    test(url, () => {
      const parsed = new URL(url);
      assert.equal(parsed.hostname, hostname);
      assert.equal(nonPublicReason(parsed.hostname), reason);
    });
  }
});

describe('FETCH_ALLOW_HOSTS entries', () => {
  test('parse hosts, ports and IPv6 forms, normalised as URLs write them', () => {
    assert.deepEqual(parseAllowEntry('127.0.0.1'), { hostname: '127.0.0.1' });
    assert.deepEqual(parseAllowEntry('LocalHost:8080'), { hostname: 'localhost', port: 8080 });
    assert.deepEqual(parseAllowEntry('[::1]'), { hostname: '[::1]' });
    assert.deepEqual(parseAllowEntry('[::1]:9000'), { hostname: '[::1]', port: 9000 });
    assert.deepEqual(parseAllowEntry('::1'), { hostname: '[::1]' });
    assert.deepEqual(parseAllowEntry('Intranet.Example.COM'), { hostname: 'intranet.example.com' });
  });

  test('refuse entries that are not a host or host:port', () => {
    for (const entry of ['http://x.example', 'x.example/path', 'a b', 'user@x.example', 'x.example:99999', 'x.example:0']) {
      assert.throws(
        () => parseAllowEntry(entry),
        (err: Error) => err.message.startsWith(`FETCH_ALLOW_HOSTS entry '${entry}'`),
        entry,
      );
    }
  });

  test('match hostnames exactly (case-insensitively), and the port only when given', () => {
    const allow = ['127.0.0.1', 'localhost:8080', 'docs.example.com:443', '[::1]'].map((e) => parseAllowEntry(e));
    const allowed = (url: string) => isAllowedHost(allow, new URL(url));
    assert.equal(allowed('http://127.0.0.1:1234/x'), true);
    assert.equal(allowed('http://2130706433:1234/x'), true, 'the same address, however written');
    assert.equal(allowed('http://LOCALHOST:8080/'), true);
    assert.equal(allowed('http://localhost:8081/'), false);
    assert.equal(allowed('http://localhost/'), false);
    assert.equal(allowed('https://docs.example.com/'), true, 'https defaults to 443');
    assert.equal(allowed('http://docs.example.com/'), false, 'http defaults to 80');
    assert.equal(allowed('https://sub.docs.example.com/'), false);
    assert.equal(allowed('https://example.com/'), false);
    assert.equal(allowed('http://[::1]:5000/'), true);
    assert.equal(allowed('http://[::ffff:127.0.0.1]/'), false, 'a different literal is a different host');
    assert.equal(allowed('http://127.0.0.2/'), false);
  });
});

test('a bad FETCH_ALLOW_HOSTS entry stops the worker configuration, naming the entry', () => {
  assert.throws(() => workerConfig({ FETCH_ALLOW_HOSTS: 'example.com, http://x/y' }), {
    message: "FETCH_ALLOW_HOSTS entry 'http://x/y' is not a host or host:port",
  });
  assert.deepEqual(workerConfig({ FETCH_ALLOW_HOSTS: 'Example.com,127.0.0.1:8080' }).fetchAllowHosts, [
    { hostname: 'example.com' },
    { hostname: '127.0.0.1', port: 8080 },
  ]);
});

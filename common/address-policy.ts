/**
 * Which addresses the web tools and webhooks may connect to (SSRF guard). Only
 * public unicast addresses pass, unless the URL's host is on FETCH_ALLOW_HOSTS
 * (WEBHOOK_ALLOW_HOSTS for webhooks)
 * (common/host-list.ts). Pure functions: no DNS, no sockets.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** ipaddr.js range names, as the refusal says them. */
const RANGE_WORDS: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT (shared) address',
  private: 'a private address',
  reserved: 'a reserved address',
  uniqueLocal: 'a unique-local address',
  deprecatedSiteLocal: 'a site-local address',
  rfc6145: 'an IPv4-translated address',
  rfc6052: 'a NAT64 address',
  '6to4': 'a 6to4 address',
  teredo: 'a Teredo address',
};

// Only global unicast space is routable; this also refuses IPv4-compatible
// addresses (::a.b.c.d), which ipaddr.js calls plain "unicast".
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * Why `address` (an IP literal, IPv6 with or without brackets) is not a
 * public address, e.g. "a loopback address"; undefined when it is public.
 * IPv4-mapped IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it maps.
 */
export function nonPublicReason(address: string): string | undefined {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(bare);
  if (!family) return 'not an IP address';
  // Canonical IPv6 first: ipaddr.js reads IPv4-compatible ::a.b.c.d as IPv4-mapped.
  const ip = ipaddr.process(family === 6 ? new URL(`http://[${bare}]/`).hostname.slice(1, -1) : bare);
  const range = ip.range();
  if (range === 'unicast') {
    if (ip.kind() === 'ipv4' || (ip as ipaddr.IPv6).match(GLOBAL_UNICAST_V6)) return undefined;
    return 'outside the global unicast range (2000::/3)';
  }
  return RANGE_WORDS[range] ?? `a special-purpose address (${range})`;
}

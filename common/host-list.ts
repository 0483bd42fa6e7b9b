/**
 * FETCH_ALLOW_HOSTS: hosts the web tools may fetch although they do not
 * resolve to public addresses. Parsed with the worker's config, so a bad entry
 * stops the worker at start instead of failing each fetch.
 */
import { ConfigError } from './errors';

export interface AllowEntry {
  /** As the WHATWG URL parser writes a hostname: lower-case, IPv6 in brackets, numeric IPv4 forms normalised. */
  hostname: string;
  /** Only this port when set; any port otherwise. */
  port?: number;
}

/**
 * One FETCH_ALLOW_HOSTS entry: `host` or `host:port`; IPv6 as `[::1]`,
 * `[::1]:8080` or bare `::1` (then without a port). Throws on a bad entry.
 */
export function parseAllowEntry(entry: string, setting = 'FETCH_ALLOW_HOSTS'): AllowEntry {
  const bareIpv6 = !entry.startsWith('[') && entry.split(':').length > 2;
  const match = bareIpv6 ? null : /^(.+):(\d+)$/.exec(entry);
  const host = bareIpv6 ? `[${entry}]` : (match?.[1] ?? entry);
  let hostname: string;
  try {
    const url = new URL(`http://${host}/`);
    if (url.port || url.username || url.pathname !== '/') throw new Error();
    hostname = url.hostname;
  } catch {
    throw new ConfigError(`${setting} entry '${entry}' is not a host or host:port`);
  }
  const port = match ? Number(match[2]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) throw new ConfigError(`${setting} entry '${entry}' has an invalid port`);
  return { hostname, ...(port !== undefined ? { port } : {}) };
}

/** Whether `url` names a host (and port) on the allow list; hostnames match exactly, case-insensitively. */
export function isAllowedHost(allow: AllowEntry[], url: URL): boolean {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return allow.some((e) => e.hostname === url.hostname && (e.port === undefined || e.port === port));
}

/**
 * Heroku's rendezvous protocol, client side, for a non-interactive one-off dyno:
 * TLS to the attach_url's host and port (normal certificate verification), send
 * the URL's path without its leading `/` (plus any query) and CRLF, drop the
 * first line that comes back (the acknowledgement, `rendezvous`), send EOT
 * (`\u0004`: end of input, as the CLI does when its stdin ends), then everything
 * until the socket closes is the process's output.
 */
import { isIP } from 'node:net';
import * as tls from 'node:tls';

export interface RendezvousTarget {
  host: string;
  port: number;
  /** Path without the leading `/`, plus the query if any. */
  secret: string;
}

const DEFAULT_RENDEZVOUS_PORT = 5000;
/** An acknowledgement line longer than this is not the protocol we know. */
const MAX_ACK_BYTES = 1024;
const EOT = Buffer.from([0x04]);

export function parseAttachUrl(attachUrl: string): RendezvousTarget {
  let u: URL;
  try {
    u = new URL(attachUrl);
  } catch {
    throw new Error('the attach_url is not a URL');
  }
  if (u.protocol !== 'rendezvous:') throw new Error(`unsupported attach_url scheme ${JSON.stringify(u.protocol)}`);
  if (!u.hostname) throw new Error('the attach_url has no host');
  const port = u.port ? Number.parseInt(u.port, 10) : DEFAULT_RENDEZVOUS_PORT;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literal
  return { host, port, secret: (u.pathname + u.search).replace(/^\//, '') };
}

export interface RendezvousHandlers {
  /** The acknowledgement arrived: the process is attached and its output follows. */
  onAttached(): void;
  onOutput(chunk: Buffer): void;
}

export interface RendezvousConnection {
  readonly attached: boolean;
  /** Settles (never rejects) when the socket has closed, with the socket error if there was one. */
  readonly closed: Promise<{ error?: Error }>;
  destroy(): void;
}

export function connectRendezvous(target: RendezvousTarget, handlers: RendezvousHandlers): RendezvousConnection {
  let attached = false;
  let lastError: Error | undefined;
  let ack: Buffer | null = Buffer.alloc(0);

  const socket = tls.connect({
    host: target.host,
    port: target.port,
    servername: isIP(target.host) ? undefined : target.host,
  });
  socket.setNoDelay(true);

  const closed = new Promise<{ error?: Error }>((resolve) => {
    socket.once('close', () => resolve(lastError ? { error: lastError } : {}));
  });
  socket.on('error', (err) => {
    lastError ??= err;
  });
  socket.once('secureConnect', () => {
    socket.write(`${target.secret}\r\n`);
  });
  socket.on('data', (chunk: Buffer) => {
    if (ack === null) {
      handlers.onOutput(chunk);
      return;
    }
    const buf = ack.length ? Buffer.concat([ack, chunk]) : chunk;
    const nl = buf.indexOf(0x0a);
    if (nl < 0) {
      if (buf.length > MAX_ACK_BYTES) {
        lastError ??= new Error('the rendezvous server sent no acknowledgement line');
        socket.destroy();
        return;
      }
      ack = Buffer.from(buf);
      return;
    }
    ack = null;
    attached = true;
    socket.write(EOT);
    handlers.onAttached();
    if (nl + 1 < buf.length) handlers.onOutput(buf.subarray(nl + 1));
  });

  return {
    get attached() {
      return attached;
    },
    closed,
    destroy: () => socket.destroy(),
  };
}

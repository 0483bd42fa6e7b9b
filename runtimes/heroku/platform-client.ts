/**
 * The few Heroku Platform API calls a one-off dyno needs, on `heroku-client`,
 * with every failure turned into a `PlatformError` whose message names the app
 * and carries Heroku's own message, and never the API token.
 */
import Heroku from 'heroku-client';
import { AppError } from '../../common/errors';

export interface PlatformConfig {
  /** Platform API token (HEROKU_API_KEY). Never logged, never put in an error. */
  token: string;
  /** Platform API base URL (HEROKU_API_URL), e.g. https://api.heroku.com */
  apiUrl: string;
}

/** What the Platform API answers for a dyno (the fields we use). */
export interface PlatformDyno {
  id?: string;
  name: string;
  state?: string;
  size?: string;
  attach_url?: string | null;
}

export interface CreateDynoBody {
  command: string;
  attach: boolean;
  force_no_tty: boolean;
  env: Record<string, string>;
  size: string;
  type: string;
  time_to_live: number;
}

/**
 * A Platform API call that failed: an HTTP error (`status`, Heroku's error `id`
 * such as `not_found`, `unauthorized`, `rate_limit`), a network failure
 * (`status` undefined) or an unusable answer. `message` is written for a
 * person (and a model): it names the app and quotes Heroku's message.
 */
export class PlatformError extends AppError {
  readonly status?: number;
  readonly id?: string;
  readonly app: string;

  constructor(message: string, opts: { app: string; status?: number; id?: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.app = opts.app;
    this.status = opts.status;
    this.id = opts.id;
  }
}

/** The CLI retries a create answered with 409 (release not ready yet) twice. */
const CREATE_CONFLICT_RETRIES = 2;
const CREATE_CONFLICT_PAUSE_MS = 250;
/** Socket idle limit for calls that are safe to repeat (stop). Not used for create: see createDyno. */
const IDEMPOTENT_REQUEST_TIMEOUT_MS = 10_000;
const MAX_QUOTED_MESSAGE = 500;

export class PlatformClient {
  private readonly heroku: Heroku;
  private readonly pathPrefix: string;
  private readonly token: string;

  constructor(config: PlatformConfig) {
    let base: URL;
    try {
      base = new URL(config.apiUrl);
    } catch {
      throw new PlatformError('Heroku Platform API: HEROKU_API_URL is not a valid URL', { app: '' });
    }
    this.token = config.token ?? '';
    // heroku-client only takes scheme, host and port from `host`; keep any path prefix ourselves.
    this.pathPrefix = base.pathname.replace(/\/+$/, '');
    this.heroku = new Heroku({
      token: this.token,
      host: `${base.protocol}//${base.host}`,
      userAgent: 'durable-agents (node-heroku-client)',
    });
  }

  /**
   * POST /apps/{app}/dynos. Retries a 409 like the Heroku CLI. No request
   * timeout is set on purpose: heroku-client re-sends a request after its own
   * timeout fires, which for a create could start a second dyno; the caller
   * bounds the wait instead (and stops a dyno that arrives too late).
   */
  async createDyno(app: string, body: CreateDynoBody): Promise<PlatformDyno> {
    if (!this.token) {
      throw new PlatformError(
        `Heroku Platform API: cannot start a one-off dyno on app "${app}": no Platform API token is configured (HEROKU_API_KEY)`,
        { app },
      );
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const dyno = (await this.heroku.post(this.path(`/apps/${encodeURIComponent(app)}/dynos`), { body })) as unknown;
        if (!isDyno(dyno)) {
          throw new PlatformError(`Heroku Platform API: starting a one-off dyno on app "${app}" returned an answer without a dyno name`, { app });
        }
        return dyno;
      } catch (err) {
        if (err instanceof PlatformError) throw err;
        if (statusOf(err) === 409 && attempt < CREATE_CONFLICT_RETRIES) {
          await sleep(CREATE_CONFLICT_PAUSE_MS);
          continue;
        }
        throw this.toPlatformError(err, app, `could not start a one-off dyno on app "${app}"`);
      }
    }
  }

  /** POST /apps/{app}/dynos/{name}/actions/stop */
  async stopDyno(app: string, dyno: string): Promise<void> {
    try {
      await this.heroku.post(this.path(`/apps/${encodeURIComponent(app)}/dynos/${encodeURIComponent(dyno)}/actions/stop`), {
        timeout: IDEMPOTENT_REQUEST_TIMEOUT_MS,
      });
    } catch (err) {
      throw this.toPlatformError(err, app, `could not stop dyno ${dyno} on app "${app}"`);
    }
  }

  private path(p: string): string {
    return this.pathPrefix + p;
  }

  /** Turns whatever heroku-client rejected with into a PlatformError without the token. */
  toPlatformError(err: unknown, app: string, what: string): PlatformError {
    const status = statusOf(err);
    if (status !== undefined) {
      const body = (err as { body?: unknown }).body;
      let id: string | undefined;
      let herokuMessage: string | undefined;
      if (body && typeof body === 'object') {
        const b = body as { id?: unknown; message?: unknown };
        if (typeof b.id === 'string') id = b.id;
        if (typeof b.message === 'string') herokuMessage = b.message;
      } else if (typeof body === 'string' && body.trim()) {
        herokuMessage = body.trim();
      }
      const detail = herokuMessage ? `: ${quote(this.redact(herokuMessage))}` : '';
      const code = id ? `${status} ${this.redact(id)}` : `HTTP ${status}`;
      return new PlatformError(`Heroku Platform API: ${what} (${code})${detail}`, { app, status, id: id && this.redact(id) });
    }
    const e = err as { code?: unknown; message?: unknown } | undefined;
    const code = typeof e?.code === 'string' ? e.code : undefined;
    const msg = typeof e?.message === 'string' ? e.message : String(err);
    return new PlatformError(
      `Heroku Platform API: ${what}: the API could not be reached (${quote(this.redact(msg))}${code && !msg.includes(code) ? `, ${code}` : ''})`,
      { app },
    );
  }

  /** Removes the token from any text that might end up in an error or a log. */
  redact(text: string): string {
    if (!this.token) return text;
    return text.split(this.token).join('[REDACTED]');
  }
}

function isDyno(x: unknown): x is PlatformDyno {
  return !!x && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string';
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

function quote(s: string): string {
  const oneLine = s.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_QUOTED_MESSAGE ? `${oneLine.slice(0, MAX_QUOTED_MESSAGE)}…` : oneLine;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import { AppError } from '../common/errors';
import type { ErrorBody } from '../contract/wire';

/** An error the API answers with before any stream starts (docs/api.md#a2-errors-before-the-stream). */
export class ApiError extends AppError {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.headers = options?.headers ?? {};
  }

  /** Headers the answer carries, e.g. Retry-After on a 429. */
  readonly headers: Record<string, string>;

  body(): ErrorBody {
    return { error: { code: this.status, message: this.message, type: this.type } };
  }
}

export const invalidRequest = (message: string, options?: { cause?: unknown }) => new ApiError(400, 'invalid_request_error', message, options);

/** A 429 of a per-key quota; `headers` say when to try again (Retry-After, X-RateLimit-*). */
export const rateLimited = (message: string, headers: Record<string, string> = {}) => new ApiError(429, 'rate_limit_error', message, { headers });

/** A 503 for what needs search attributes this namespace does not have registered. */
export function searchAttributesMissing(what: string, attributes: readonly { name: string }[]): ApiError {
  const names = attributes.map((a) => a.name);
  const listed = names.length === 1 ? `the search attribute ${names[0]}, which is` : `the search attributes ${names.join(' and ')}, which are`;
  return new ApiError(503, 'server_error', `${what} needs ${listed} not registered on this namespace`);
}

/** gRPC codes by which Temporal's client says the service could not be reached (14, UNAVAILABLE) or did not answer in time (4, DEADLINE_EXCEEDED). */
const UNAVAILABLE = new Set<number>([14, 4]);

/** A 503 for an error that says Temporal could not be reached (directly, or as the cause of the client's ServiceError); else undefined. */
export function temporalUnavailable(err: unknown): ApiError | undefined {
  const grpc = err instanceof ServiceError ? err.cause : err;
  if (!isGrpcServiceError(grpc) || !UNAVAILABLE.has(grpc.code)) return undefined;
  return new ApiError(503, 'server_error', `Temporal is unavailable (${grpc.details || grpc.message}); try again shortly`, { cause: err });
}

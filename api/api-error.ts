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

import type { ErrorBody } from './wire';

/** An error the API answers with before any stream starts (spec A2). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { code: this.status, message: this.message, type: this.type } };
  }
}

export const invalidRequest = (message: string) => new ApiError(400, 'invalid_request_error', message);

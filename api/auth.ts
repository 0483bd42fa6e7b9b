import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ApiError } from './api-error';
import { apiKeyId } from '../common/run-ids';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Bearer auth against AGENTS_API_KEYS; sets `res.locals.apiKeyId` (never the key itself). */
export function authenticate(keys: string[]) {
  const digests = keys.map((key) => ({ id: apiKeyId(key), digest: digest(key) }));
  return (req: Request, res: Response, next: NextFunction) => {
    const [, key] = /^Bearer\s+(.+)$/i.exec(req.get('Authorization') ?? '') ?? [];
    if (key === undefined) return next(new ApiError(401, 'authentication_error', 'missing bearer key: send Authorization: Bearer <key>'));
    const given = digest(key.trim());
    // Compare digests in constant time so response timing says nothing about the keys.
    const known = digests.find((k) => timingSafeEqual(k.digest, given));
    if (!known) return next(new ApiError(401, 'authentication_error', 'invalid bearer key'));
    res.locals.apiKeyId = known.id;
    next();
  };
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ApiError } from './api-error';
import { keyIdOf } from './key-ids';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Who sent a request: the id of its key (never the key itself), and whether it is an admin key (AGENTS_ADMIN_KEYS). */
export interface Caller {
  keyId: string;
  admin: boolean;
}

export interface KeyRing {
  apiKeys: string[];
  adminKeys: string[];
  keyIdSecret: string;
}

/** Bearer auth against AGENTS_API_KEYS and AGENTS_ADMIN_KEYS. */
export function keyRing({ apiKeys, adminKeys, keyIdSecret }: KeyRing) {
  const known = [...new Set([...apiKeys, ...adminKeys])].map((key) => ({
    digest: digest(key),
    caller: { keyId: keyIdOf(keyIdSecret, key), admin: adminKeys.includes(key) },
  }));

  /** The caller of a request with a valid bearer key; undefined without one, or an ApiError for a wrong one. */
  const identify = (req: Request): Caller | undefined | ApiError => {
    const [, key] = /^Bearer\s+(.+)$/i.exec(req.get('Authorization') ?? '') ?? [];
    if (key === undefined) return undefined;
    const given = digest(key.trim());
    // Compare digests in constant time (all of them) so response timing says nothing about the keys.
    let match: Caller | undefined;
    for (const k of known) if (timingSafeEqual(k.digest, given)) match ??= k.caller;
    return match ?? new ApiError(401, 'authentication_error', 'invalid bearer key');
  };

  /** Sets `res.locals.apiKeyId` and `res.locals.caller`, or answers 401. */
  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    const caller = identify(req);
    if (caller === undefined) return next(new ApiError(401, 'authentication_error', 'missing bearer key: send Authorization: Bearer <key>'));
    if (caller instanceof ApiError) return next(caller);
    res.locals.apiKeyId = caller.keyId;
    res.locals.caller = caller;
    next();
  };

  /** Whether a request carries a valid key (for answers that say more to those who have one). */
  const isAuthenticated = (req: Request) => {
    const caller = identify(req);
    return caller !== undefined && !(caller instanceof ApiError);
  };

  return { authenticate, isAuthenticated };
}

export const callerOf = (res: Response): Caller => res.locals.caller as Caller;

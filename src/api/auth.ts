// Bearer-token middleware with e2epool's order of checks and detail strings (protocol spec §4.1).
// They run before any body parsing, so a bad token with a bad body answers 403, not 422.
import { constantTimeEqual } from '../integrations/gitlab/constant-time.js';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Runner } from '../inventory/registry.js';
import { TOO_MANY_FAILED_AUTHENTICATIONS, type AuthFailureLimiter } from '../util/auth-failures.js';
import { AdminTokens } from './admin-tokens.js';

/** The app's limiter of failed authentications (app.locals), when it has one. */
function limiterOf(req: Request): AuthFailureLimiter | undefined {
  return req.app?.locals?.authFailures as AuthFailureLimiter | undefined;
}

/** Answers 429 when the caller's address is over its failed-authentication limit. */
function refusedForFailures(req: Request, res: Response): boolean {
  if (!limiterOf(req)?.isRequestBlocked(req)) return false;
  res.status(429).json({ detail: TOO_MANY_FAILED_AUTHENTICATIONS });
  return true;
}

function failed(req: Request, surface: string): void {
  limiterOf(req)?.recordRequestFailure(req, surface);
}

const BEARER = 'Bearer ';

/**
 * The token after the case-sensitive `Bearer ` prefix, or null when the prefix is missing. HTTP
 * strips trailing whitespace from header values, so `Bearer ` arrives as `Bearer`: that is an
 * empty token (403), as e2epool answered it, not a malformed header (401).
 */
function bearerToken(header: string): string | null {
  if (header === 'Bearer') return '';
  return header.startsWith(BEARER) ? header.slice(BEARER.length) : null;
}

/** FastAPI's answer to a missing required header. */
export const MISSING_AUTHORIZATION_DETAIL = [{ type: 'missing', loc: ['header', 'authorization'], msg: 'Field required', input: null }];

export interface RunnerTokenAuthenticator {
  authenticateRunnerToken(token: string): Promise<Runner | null>;
}

export interface AdminIdentity {
  /** `admin` for E2EPOOL_ADMIN_TOKEN, else the name from the admin tokens file. */
  actor: string;
}

/** Sets `res.locals.runner` to the active runner owning the bearer token. */
export function requireRunnerToken(registry: RunnerTokenAuthenticator): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (refusedForFailures(req, res)) return;
    const header = req.headers.authorization;
    if (header === undefined) {
      res.status(422).json({ detail: MISSING_AUTHORIZATION_DETAIL });
      return;
    }
    const token = bearerToken(header);
    if (token === null) {
      failed(req, 'runner');
      res.status(401).json({ detail: 'Invalid authorization header' });
      return;
    }
    try {
      const runner = await registry.authenticateRunnerToken(token);
      if (!runner) {
        failed(req, 'runner');
        res.status(403).json({ detail: 'Invalid token' });
        return;
      }
      res.locals.runner = runner;
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** Constant-time equality of two secrets (the shared helper; neither length nor prefix leaks). */
export function sameSecret(given: string, expected: string): boolean {
  return constantTimeEqual(given, expected);
}

/**
 * Sets `res.locals.admin`. The app's AdminTokens (app.locals.adminTokens) decide when present, else
 * the given token. No admin token at all disables the admin API (503). Every answer is no-store.
 */
export function requireAdminToken(adminToken: string | undefined): RequestHandler {
  const fallback = new AdminTokens({ token: adminToken });
  return (req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    if (refusedForFailures(req, res)) return;
    const tokens = (req.app?.locals?.adminTokens as AdminTokens | undefined) ?? fallback;
    const header = req.headers.authorization;
    if (header === undefined) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'Missing admin token: send Authorization: Bearer <token>' });
      return;
    }
    if (!tokens.configured()) {
      res.status(503).json({ detail: 'Admin API not configured' });
      return;
    }
    const token = bearerToken(header);
    if (token === null) {
      failed(req, 'admin');
      res.status(401).json({ detail: 'Invalid authorization header' });
      return;
    }
    const actor = tokens.actorFor(token);
    if (actor === null) {
      failed(req, 'admin');
      res.status(403).json({ detail: 'Invalid admin token' });
      return;
    }
    const admin: AdminIdentity = { actor };
    res.locals.admin = admin;
    next();
  };
}

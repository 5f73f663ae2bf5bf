// The one error mapping of the HTTP API: domain errors keep their status (httpStatusOf) and detail;
// schema problems are FastAPI-style 422 lists; bodies that are not JSON are 422 too; anything else
// is logged and answered without internals.
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { z } from 'zod';
import { E2epoolError, httpStatusOf } from '../domain/errors.js';
import { toValidationDetail, type ValidationDetailItem } from '../inventory/issues.js';
import type { Logger } from '../logger.js';

export const DEFAULT_BODY_LIMIT = '64kb';

/** A 422 whose detail is FastAPI's list of items. */
export function validationFailed(items: ValidationDetailItem[]): E2epoolError {
  return new E2epoolError('validation', items.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '), { items });
}

/**
 * Parses a JSON body whatever its content type (FastAPI read JSON bodies regardless), up to
 * `limit`. Mount it after the auth middleware, never before.
 */
export function jsonBody(limit: string = DEFAULT_BODY_LIMIT): RequestHandler {
  const parse = express.json({ limit, strict: false, type: () => true });
  return (req, res, next) => {
    // An empty body is no body (pydantic's `missing` at ['body']), not an empty object.
    if (req.headers['content-length'] === '0') {
      next();
      return;
    }
    parse(req, res, next);
  };
}

/** Validates `req.body` against `schema` the way FastAPI did: a missing body is one `missing` item. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === undefined) throw validationFailed([{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]);
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const items = toValidationDetail(parsed.error, body, 'body').map((item) =>
    // An absent enum field is "missing" in pydantic, not an enum mismatch.
    item.type === 'enum' && item.input === undefined ? { type: 'missing', loc: item.loc, msg: 'Field required', input: null } : item,
  );
  throw validationFailed(items);
}

export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).json({ detail: 'Not Found' });
};

export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: any, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof E2epoolError) {
      const items = err.extra.items;
      res.status(httpStatusOf(err.code)).json({ detail: Array.isArray(items) ? items : err.detail });
      return;
    }
    if (err?.type === 'entity.parse.failed') {
      res.status(422).json({ detail: [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {}, ctx: { error: 'Invalid JSON' } }] });
      return;
    }
    if (err?.type === 'entity.too.large') {
      res.status(413).json({ detail: 'Request body too large' });
      return;
    }
    // Text PostgreSQL cannot store (a NUL byte, broken UTF-8) is the client's input, not our failure.
    const pgCode = (err?.cause ?? err)?.code;
    if (pgCode === '22021' || pgCode === '22P05') {
      res.status(400).json({ detail: 'The request contains characters that cannot be stored (NUL or invalid UTF-8)' });
      return;
    }
    // A path parameter with broken percent-encoding (`/api/checkpoints/%ZZ`): the router cannot decode it.
    if (err instanceof URIError) {
      res.status(400).json({ detail: 'Malformed percent-encoding in the URL' });
      return;
    }
    if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500 && err.expose) {
      res.status(err.status).json({ detail: String(err.message ?? 'Bad request') });
      return;
    }
    logger.error({ err, method: req.method, path: req.path }, 'API request failed');
    res.status(500).json({ detail: 'Internal server error' });
  };
}

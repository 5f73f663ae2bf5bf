// Figures only this process sees, as opposed to the database-wide ones of metrics.ts: its HTTP
// requests and the creates it refused. Each instance counts its own, so these sum over instances.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Counter, Histogram, Registry } from 'prom-client';
import { errorCodes, isErrorCode, type ErrorCode } from '../domain/errors.js';

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 330];

/** A route label from the matched route pattern, never from the raw path (a closed set). */
function routeLabel(req: Request): string {
  const pattern = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof pattern !== 'string') return 'unmatched';
  return `${req.baseUrl}${pattern}`;
}

export interface InstanceMetrics {
  registry: Registry;
  /** Express middleware timing every request by route pattern, method and status. */
  httpTimer: RequestHandler;
  /** Counts a create this instance refused, by the error's stable code. */
  countCreateRejection(err: unknown): void;
}

export function createInstanceMetrics(): InstanceMetrics {
  const registry = new Registry();
  const httpDuration = new Histogram({
    name: 'e2epool_http_request_duration_seconds',
    help: 'HTTP requests answered by this instance, by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'],
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });
  const createRejections = new Counter({
    name: 'e2epool_create_rejections_total',
    help: 'Creates this instance refused, by reason (the stable error code); sum over instances.',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of ['maintenance', 'draining', 'conflict', 'cooldown', 'rate_limited'] satisfies ErrorCode[]) createRejections.inc({ reason }, 0);

  const httpTimer: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const method = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].includes(req.method) ? req.method : 'other';
      httpDuration.observe({ route: routeLabel(req), method, status: String(res.statusCode) }, seconds);
    });
    next();
  };

  return {
    registry,
    httpTimer,
    countCreateRejection(err: unknown) {
      const code = (err as { code?: unknown } | null)?.code;
      const reason = isErrorCode(code) && code in errorCodes ? code : 'internal';
      createRejections.inc({ reason });
    },
  };
}

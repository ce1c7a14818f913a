/**
 * Middy middlewares shared by the HTTP functions, in middy's own shape: each a factory
 * returning named before/onError functions. Every error carries its own HTTP status
 * (shared/errors.ts); `httpErrors` is the one place that turns errors into responses.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import middy, { type MiddlewareObj, type Request } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { type HostIdentityPolicy, hostInstanceId, operatorArn } from '../caller-identity.js';
import {
  DEFAULT_RETRY_AFTER_SECONDS,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
  VpcLeaseError,
} from '../errors.js';
import { type ErrorJson, MAX_BODY_BYTES } from './contract.js';

export type HttpEvent = APIGatewayProxyEventV2 & {
  requestContext: APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { iam?: { userArn?: string | null } | null } | null;
  };
};
export type HttpResult = APIGatewayProxyStructuredResultV2;

export const json = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});

export const noContent = (): HttpResult => ({ statusCode: 204, headers: { 'cache-control': 'no-store' } });

/**
 * Turns errors into `{"error": {"code", "message"}}` responses. VpcLeaseErrors are the
 * caller's business and keep their message; anything else is a bug: logged with its
 * stack, answered as a generic 500 that leaks nothing.
 */
export function httpErrors(options: { logger: Logger }): MiddlewareObj<HttpEvent, HttpResult> {
  const httpErrorsOnError = async (request: Request<HttpEvent, HttpResult>) => {
    const error = request.error;
    if (error instanceof VpcLeaseError && error.expose) {
      const level = error.status >= 500 ? 'warn' : 'info';
      options.logger[level]('request refused', {
        code: error.code,
        status: error.status,
        reason: error.message,
      });
      const headers: Record<string, string> = {};
      const retryAfter = (error as { retryAfterSeconds?: number }).retryAfterSeconds;
      if (error.status === 503 || retryAfter !== undefined)
        headers['retry-after'] = String(retryAfter ?? DEFAULT_RETRY_AFTER_SECONDS);
      const body: ErrorJson = {
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: error.details } : {}),
        },
      };
      request.response = json(error.status, body, headers);
      return;
    }
    if ((error as Error | undefined)?.name === 'TimeoutError') {
      // middy's timeoutEarly: AWS calls outlasted the function's time. Nothing half-done is
      // lost (a lease stays with pending routes), so the caller should simply come back.
      options.logger.warn('request timed out', { error: error as Error });
      request.response = json(
        503,
        {
          error: {
            code: 'ServiceUnavailable',
            message:
              'AWS answered too slowly to finish this request in time; nothing was lost. Retry shortly.',
          },
        } satisfies ErrorJson,
        { 'retry-after': String(DEFAULT_RETRY_AFTER_SECONDS) },
      );
      return;
    }
    options.logger.error('unhandled error', { error: error as Error });
    request.response = json(500, {
      error: {
        code: 'InternalError',
        message: 'Internal error; it has been logged. Retry later or contact the operator.',
      },
    } satisfies ErrorJson);
  };
  return { onError: httpErrorsOnError };
}

/**
 * The chain every HTTP function uses: Lambda context on the logger, error mapping, and
 * (when given) EMF metrics flushed after each request.
 */
export function httpHandler(
  deps: { logger: Logger; metrics?: Metrics | undefined },
  route: (event: HttpEvent) => Promise<HttpResult>,
) {
  // Give up a second before Lambda's timeout, so the caller gets a 503 it can retry rather
  // than API Gateway's bare 503/504 (see the TimeoutError branch of httpErrors).
  const chain = middy<HttpEvent, HttpResult, Error, Context>({ timeoutEarlyInMillis: 1000 })
    .use(injectLambdaContext(deps.logger, { resetKeys: true }))
    .use(httpErrors({ logger: deps.logger }));
  const { metrics } = deps;
  if (metrics) {
    // Flush what the request recorded; a request that recorded nothing publishes nothing
    // (Powertools' logMetrics would warn about the empty set on every such request).
    const flush = async () => {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    };
    chain.use({ after: flush, onError: flush });
  }
  return chain.handler(route);
}

/**
 * The instance a host route's caller speaks for: only a session of one of this account's
 * host roles named after an instance (see caller-identity.ts); anything else is 403.
 */
export function callerInstanceId(event: HttpEvent, hosts: HostIdentityPolicy): string {
  return hostInstanceId(identityOf(event), hosts);
}

/** An operator's ARN: any authenticated IAM principal except a host role's session (403). */
export function callerArn(event: HttpEvent, hosts: HostIdentityPolicy): string {
  return operatorArn(identityOf(event), hosts);
}

function identityOf(event: HttpEvent): string | undefined {
  const arn = event.requestContext?.authorizer?.iam?.userArn;
  return typeof arn === 'string' ? arn : undefined;
}

/**
 * Parses a JSON object body: 413 over MAX_BODY_BYTES or `maxBytes` (before parsing), 415 for a
 * non-JSON content type, 400 for malformed JSON or a non-object. Nothing is written
 * before this passes.
 */
export function jsonObjectBody(
  event: HttpEvent,
  options: { required: boolean; maxBytes?: number },
): Record<string, unknown> | undefined {
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  const raw = event.body;
  if (raw === undefined || raw === null || raw === '') {
    if (options.required) throw new ValidationError('Request body required: a JSON object.');
    return undefined;
  }
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw new PayloadTooLargeError(maxBytes);
  const contentType = headerValue(event, 'content-type');
  if (contentType !== undefined && !/^application\/(.+\+)?json\s*(;|$)/i.test(contentType)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be application/json, not ${clip(contentType)}.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`Request body is not valid JSON: ${(error as Error).message}.`, {
      cause: error,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError('Request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

/** Refuses fields outside `allowed` and values that are not strings, naming the field. */
export function stringFields<K extends string>(
  body: Record<string, unknown>,
  spec: { required: readonly K[]; optional: readonly K[] },
): Record<K, string | undefined> {
  const allowed = new Set<string>([...spec.required, ...spec.optional]);
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) {
      throw new ValidationError(`Unknown field "${clip(key)}"; allowed: ${[...allowed].join(', ')}.`);
    }
  }
  const out = {} as Record<K, string | undefined>;
  for (const key of [...spec.required, ...spec.optional]) {
    const value = body[key];
    if (value === undefined || value === null) {
      if (spec.required.includes(key)) throw new ValidationError(`${key}: required.`);
      out[key] = undefined;
    } else if (typeof value !== 'string') {
      throw new ValidationError(
        `${key}: must be a string (got ${Array.isArray(value) ? 'array' : typeof value}).`,
      );
    } else out[key] = value;
  }
  return out;
}

export function headerValue(event: HttpEvent, name: string): string | undefined {
  const headers = event.headers ?? {};
  for (const [key, value] of Object.entries(headers))
    if (key.toLowerCase() === name) return value ?? undefined;
  return undefined;
}

/**
 * `PUT /v1/lease`: API Gateway's routeKey, or method + path where a local emulator leaves it
 * out. An `ANY /v1/lease` route (serverless.yml sends every other method of a known path to
 * its function, which answers 405) is keyed with the request's own method.
 */
export function routeOf(event: HttpEvent): { method: string; path: string; routeKey: string } {
  const method = event.requestContext?.http?.method ?? '';
  const path = event.rawPath ?? event.requestContext?.http?.path ?? '';
  const keyed = event.routeKey && event.routeKey !== '$default' ? event.routeKey : `${method} ${path}`;
  const routeKey = keyed.startsWith('ANY ') ? `${method} ${keyed.slice('ANY '.length)}` : keyed;
  return { method, path, routeKey };
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

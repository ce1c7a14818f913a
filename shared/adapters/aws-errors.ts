/**
 * Turns AWS SDK v3 errors into the domain's errors, for every adapter (EC2, DynamoDB).
 *
 * The SDK has already retried throttling and transient failures with backoff
 * (aws-clients.ts: standard retry mode) by the time an error reaches us, so:
 *   - throttling that outlived the retries  -> ThrottledError (503 + Retry-After);
 *   - 5xx, timeouts, dropped connections     -> ServiceUnavailableError (503 + Retry-After);
 *   - anything else (a 4xx) is returned unchanged: it means something specific
 *     (ConditionalCheckFailedException, RouteAlreadyExists, ...) that the adapter
 *     calling us must handle itself, or a bug that must surface as a 500.
 * Both domain errors are TransientErrors (shared/errors.ts): what the core tests for.
 */
import {
  DEFAULT_RETRY_AFTER_SECONDS,
  ServiceUnavailableError,
  ThrottledError,
  TransientError,
  VpcLeaseError,
} from '../errors.js';

/**
 * Error codes AWS services use for "slow down". The same list as the SDK's retry
 * classification (@smithy/core retry: THROTTLING_ERROR_CODES), minus the codes that
 * mean something else to a caller (TransactionInProgressException, LimitExceededException).
 */
const THROTTLING_CODES: ReadonlySet<string> = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
]);

/** Codes of server-side and transport failures that a later attempt may not see. */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'Unavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/** Node's codes for a connection that failed or was cut (the SDK's NODEJS_*_ERROR_CODES). */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $response?: { statusCode?: unknown; headers?: Record<string, unknown> };
  $retryable?: { throttling?: unknown };
}

const shape = (error: unknown): SdkErrorShape =>
  typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {};

/**
 * The AWS error code: SDK v3 service exceptions carry it as `name`
 * (`RouteAlreadyExists`, `ConditionalCheckFailedException`); older shapes as `Code`/`code`.
 */
export function errorName(error: unknown): string {
  const e = shape(error);
  for (const candidate of [e.name, e.Code, e.code]) {
    if (typeof candidate === 'string' && candidate !== '' && candidate !== 'Error') return candidate;
  }
  return 'UnknownError';
}

/** The error's message, or its code when it has none. */
export function errorMessage(error: unknown): string {
  const message = shape(error).message;
  return typeof message === 'string' && message !== '' ? message : errorName(error);
}

/** The HTTP status AWS answered with, when there was an answer. */
export function httpStatusOf(error: unknown): number | undefined {
  const e = shape(error);
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

export function isThrottle(error: unknown): boolean {
  if (error instanceof ThrottledError) return true;
  const e = shape(error);
  return (
    THROTTLING_CODES.has(errorName(error)) || httpStatusOf(error) === 429 || e.$retryable?.throttling === true
  );
}

/** A 5xx, a timeout or a network failure: not the caller's fault, and maybe gone on the next attempt. */
export function isServiceUnavailable(error: unknown): boolean {
  if (error instanceof ServiceUnavailableError) return true;
  if (isThrottle(error)) return false;
  const e = shape(error);
  const status = httpStatusOf(error);
  if (status !== undefined && status >= 500) return true;
  if (e.$fault === 'server') return true;
  const name = errorName(error);
  return UNAVAILABLE_CODES.has(name) || NETWORK_CODES.has(name) || NETWORK_CODES.has(String(e.code));
}

/** Throttled or unavailable: worth trying again later, never a reason to give up on the work. */
export const isTransient = (error: unknown): boolean =>
  error instanceof TransientError || isThrottle(error) || isServiceUnavailable(error);

/**
 * The domain error for an SDK error:
 *   - a VpcLeaseError passes through unchanged;
 *   - throttling -> ThrottledError, 5xx/timeout/network -> ServiceUnavailableError, both with
 *     the service's Retry-After when it sent one (else DEFAULT_RETRY_AFTER_SECONDS) and the
 *     original error as `cause`;
 *   - anything else (a 4xx the caller must handle, or a bug) is returned unchanged, wrapped
 *     in an Error only if it was not one.
 * Use as `throw toDomainError('EC2', error)`.
 */
export function toDomainError(service: string, error: unknown): Error {
  if (error instanceof VpcLeaseError) return error;
  if (isThrottle(error)) {
    return new ThrottledError(service, retryAfterSeconds(error), {
      cause: error,
      details: { service, awsError: errorName(error) },
    });
  }
  if (isServiceUnavailable(error)) {
    const seconds = retryAfterSeconds(error);
    return new ServiceUnavailableError(
      `${service} is not answering (${errorName(error)}) after several attempts; nothing was changed by this request. Retry after ${seconds} s.`,
      seconds,
      { cause: error, details: { service, awsError: errorName(error) } },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Seconds from the response's Retry-After header (seconds form), else the default. */
function retryAfterSeconds(error: unknown): number {
  const headers = shape(error).$response?.headers ?? {};
  const value = headers['retry-after'] ?? headers['Retry-After'];
  const seconds = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isInteger(seconds) && seconds > 0 && seconds <= 300 ? seconds : DEFAULT_RETRY_AFTER_SECONDS;
}

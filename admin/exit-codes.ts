/**
 * Exit codes of `vpc-lease`, a contract with the scripts that call it: keep them stable.
 * The HTTP status decides, not the error code, so a new server-side code still lands in
 * the right bucket.
 */
import { ApiError, isMissingCredentials } from '../shared/http/api-client.js';
import { EtcdRequestError, EtcdUnavailableError } from './etcd.js';

export const ExitCode = {
  Ok: 0,
  /** the API refused the request (4xx other than 404/409), or an unexpected failure */
  Refused: 1,
  /** bad flags or arguments, unreadable input, missing API URL/region/credentials: nothing was sent */
  Usage: 2,
  NotFound: 3,
  /** 409: RouteLimitExceeded, SubnetsExhausted, Conflict */
  Conflict: 4,
  /** the API, AWS behind it, or (import) etcd is unavailable: 5xx, 429, timeout, connection refused; worth retrying */
  Unavailable: 5,
  /** import: the registry was read and the import ran (or was planned), but some flannel leases were skipped */
  Skipped: 6,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  the API refused the request (400, 403, 413, ...)
  2  usage error: bad flags or arguments, unreadable file, no API URL, region or credentials
  3  not found (404)
  4  conflict (409): RouteLimitExceeded, SubnetsExhausted, Conflict
  5  API or AWS unavailable (5xx, 429, timeout, connection refused), or etcd unreachable: retry later
  6  import: some flannel leases were (or, without --apply, would be) skipped; the rest went through`;

/** A mistake in the invocation, found before any request is sent. */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  // status 0 is the client's "no answer" (refused, reset, timed out)
  if (status === 0 || status === 429 || status >= 500) return ExitCode.Unavailable;
  if (status === 404) return ExitCode.NotFound;
  if (status === 409) return ExitCode.Conflict;
  return ExitCode.Refused;
}

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof UsageError) return ExitCode.Usage;
  if (error instanceof ApiError) return exitCodeForStatus(error.status);
  if (error instanceof EtcdUnavailableError) return ExitCode.Unavailable;
  if (error instanceof EtcdRequestError) return ExitCode.Refused;
  if (isMissingCredentials(error)) return ExitCode.Usage;
  return ExitCode.Refused;
}

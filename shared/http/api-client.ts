/**
 * The one HTTP client for the vpc-lease API, used by the host agent and the admin CLI.
 *
 * In AWS every request is signed with SigV4 for `execute-api` by the SDK's own signer,
 * with credentials from the standard provider chain (instance profile on EC2).
 * Against the local stack (serverless-offline --noAuth) it sends the authorizer
 * override header instead, unsigned, and refuses any API URL that is not loopback.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { OFFLINE_AUTHORIZER_HEADER } from './contract.js';

export interface ApiClientOptions {
  apiUrl: string;
  /** AWS region of the API (for SigV4); required unless `localIdentityArn` is set */
  region?: string;
  /** defaults to the SDK's node provider chain */
  credentials?: AwsCredentialIdentityProvider;
  /** local stack: send this ARN in the serverless-offline authorizer override header, unsigned */
  localIdentityArn?: string;
  /** per request; default DEFAULT_TIMEOUT_MS */
  timeoutMs?: number;
  userAgent?: string;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** A non-2xx answer (or no answer) from the API, with the server's code and message. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { retryAfterSeconds?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }

  /** network failure, timeout, 429 or 5xx: worth retrying with backoff */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/**
 * API Gateway's HTTP API waits 30 s for a function. Waiting as long lets the caller see the
 * function's own answer (a 503 with Retry-After when AWS was too slow) rather than giving
 * up first and retrying while the first request is still being served.
 */
/** A setting's value, undefined when it is unset or empty (an empty AWS_REGION means none). */
export const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value;

/**
 * The SDK's credential chain found nothing to sign with (a *ProviderError, thrown before any
 * request is sent): a local setup problem, not an answer of the API.
 */
export const isMissingCredentials = (error: unknown): boolean =>
  error instanceof Error && /ProviderError$/.test(error.name);

export const DEFAULT_TIMEOUT_MS = 30_000;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopbackUrl(url: string): boolean {
  try {
    const { hostname } = new URL(url);
    return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
  } catch {
    return false;
  }
}

/** RFC 3986 percent-encoding, as SigV4 wants it: encodeURIComponent plus !'()* (AWS SigV4 docs, "UriEncode"). */
export const rfc3986 = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export class ApiClient {
  private readonly base: URL;
  private readonly signer: SignatureV4 | undefined;
  private readonly options: ApiClientOptions;

  constructor(options: ApiClientOptions) {
    this.options = options;
    try {
      this.base = new URL(options.apiUrl);
    } catch {
      throw new Error(
        `API URL "${options.apiUrl}" is not a URL (expected like https://abc123.execute-api.eu-west-1.amazonaws.com).`,
      );
    }
    if (options.localIdentityArn !== undefined) {
      if (!isLoopbackUrl(options.apiUrl)) {
        throw new Error(
          `Local mode sends an unsigned identity header and is only allowed against a loopback API URL, not ${this.base.host}.`,
        );
      }
      this.signer = undefined;
    } else {
      if (!options.region) throw new Error('A region is needed to sign requests (--region or AWS_REGION).');
      this.signer = new SignatureV4({
        service: 'execute-api',
        region: options.region,
        credentials: options.credentials ?? lazyDefaultCredentials(),
        sha256: Sha256,
      });
    }
  }

  async request<T>(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    options: { body?: unknown; query?: Record<string, string | undefined>; timeoutMs?: number } = {},
  ): Promise<ApiResponse<T>> {
    const url = new URL(
      path.replace(/^\//, ''),
      this.base.href.endsWith('/') ? this.base.href : `${this.base.href}/`,
    );
    // The query is sent exactly as SigV4 canonicalises it (RFC 3986: a space is %20, never
    // URLSearchParams' `+`), so the signature AWS computes over what arrives is the one signed.
    const pairs = Object.entries(options.query ?? {}).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    );
    url.search = pairs.map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join('&');
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = {
      host: url.host,
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'vpc-lease',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';

    if (this.signer) {
      const query: Record<string, string> = Object.fromEntries(pairs);
      const signed = await this.signer.sign(
        new HttpRequest({
          method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          path: url.pathname,
          query,
          headers,
          ...(body !== undefined ? { body } : {}),
        }),
      );
      Object.assign(headers, signed.headers);
    } else {
      headers[OFFLINE_AUTHORIZER_HEADER] = JSON.stringify({
        iam: { userArn: this.options.localIdentityArn },
      });
    }
    delete headers.host; // fetch sets it; sending it twice confuses some proxies

    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
    } catch (error) {
      const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'failed';
      throw new ApiError(0, 'Unreachable', `Request to ${url.origin} ${reason}: ${errorText(error)}`, {
        cause: error,
      });
    }

    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.ok) return { status: response.status, body: parsed as T, headers: response.headers };

    const retryAfter = Number(response.headers.get('retry-after'));
    const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)
      ?.error;
    const apiGatewayMessage = (parsed as { message?: unknown } | undefined)?.message;
    throw new ApiError(
      response.status,
      typeof error?.code === 'string' ? error.code : `Http${response.status}`,
      typeof error?.message === 'string'
        ? error.message
        : typeof apiGatewayMessage === 'string'
          ? apiGatewayMessage // API Gateway's own 403 "Forbidden"/"Missing Authentication Token"
          : `HTTP ${response.status} ${response.statusText}`.trim(),
      {
        ...(Number.isFinite(retryAfter) && retryAfter >= 0 && response.headers.has('retry-after')
          ? { retryAfterSeconds: retryAfter }
          : {}),
        ...(error?.details && typeof error.details === 'object'
          ? { details: error.details as Record<string, unknown> }
          : {}),
      },
    );
  }
}

/** The SDK's default chain (env, SSO, shared files, ECS, IMDS), loaded only when first needed. */
function lazyDefaultCredentials(): AwsCredentialIdentityProvider {
  let provider: AwsCredentialIdentityProvider | undefined;
  return async (props) => {
    if (!provider) {
      const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
      provider = fromNodeProviderChain();
    }
    return provider(props);
  };
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

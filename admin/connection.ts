/**
 * Where the CLI sends its requests and how it proves who it is: resolved once from the
 * global flags and the environment, before any command runs.
 */
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { type ApiClientOptions, nonEmpty } from '../shared/http/api-client.js';
import { LOCAL_OPERATOR_ARN } from '../shared/http/contract.js';
import { UsageError } from './exit-codes.js';

export const DEFAULT_LOCAL_API_PORT = '3000';

export interface ConnectionFlags {
  apiUrl?: string | undefined;
  region?: string | undefined;
  local?: boolean | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Precedence: flag, then environment; `--local` falls back to the local stack's address.
 * The region may also be read off an execute-api host name, which carries it.
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: Env,
  credentials?: AwsCredentialIdentityProvider,
): ApiClientOptions {
  const userAgent = 'vpc-lease-admin';
  if (flags.local) {
    const apiUrl =
      flags.apiUrl ??
      nonEmpty(env.VPCLEASE_API_URL) ??
      `http://127.0.0.1:${nonEmpty(env.VPCLEASE_API_PORT) ?? DEFAULT_LOCAL_API_PORT}`;
    return { apiUrl, localIdentityArn: LOCAL_OPERATOR_ARN, userAgent };
  }

  const apiUrl = flags.apiUrl ?? nonEmpty(env.VPCLEASE_API_URL);
  if (apiUrl === undefined) {
    throw new UsageError(
      "No API URL: pass --api-url or set VPCLEASE_API_URL (the deployed stack's HTTP API URL), " +
        'or use --local for the local stack.',
    );
  }
  const region =
    flags.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? regionOfApiUrl(apiUrl);
  if (region === undefined) {
    throw new UsageError('No AWS region to sign requests for: pass --region or set AWS_REGION.');
  }
  return { apiUrl, region, userAgent, ...(credentials ? { credentials } : {}) };
}

/** `https://abc123.execute-api.eu-west-1.amazonaws.com` -> `eu-west-1`. */
export function regionOfApiUrl(apiUrl: string): string | undefined {
  try {
    return /^[^.]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(new URL(apiUrl).hostname)?.[1];
  } catch {
    return undefined;
  }
}

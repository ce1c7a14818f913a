import { ACCOUNT_ID, type HostIdentityPolicy, parseHostRoleNames } from '../caller-identity.js';
import { DEFAULT_GRANT_INTERVAL_SECONDS } from '../lease-service.js';

/**
 * The Lambda functions' settings, read from the environment once per process and
 * validated; a missing or malformed variable fails loudly with its name.
 */
export interface Environment {
  /** the DynamoDB table */
  tableName: string;
  /** the VPC whose route tables vpc-lease manages */
  vpcId: string;
  leaseTtlSeconds: number;
  /** at most one new grant per instance per this many seconds (docs/api.md); default 30 */
  grantIntervalSeconds?: number;
}

export class EnvironmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvironmentError';
  }
}

export const DEFAULT_LEASE_TTL_SECONDS = 24 * 3600;

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const required = (name: string, pattern?: RegExp): string => {
    const value = env[name];
    if (value === undefined || value === '')
      throw new EnvironmentError(`Environment variable ${name} is not set.`);
    if (pattern && !pattern.test(value))
      throw new EnvironmentError(`Environment variable ${name}="${value}" is malformed.`);
    return value;
  };
  const ttlText = env.LEASE_TTL_SECONDS;
  const leaseTtlSeconds =
    ttlText === undefined || ttlText === '' ? DEFAULT_LEASE_TTL_SECONDS : Number(ttlText);
  // At least two minutes: agents renew ahead of expiry and need room to retry.
  if (!Number.isInteger(leaseTtlSeconds) || leaseTtlSeconds < 120 || leaseTtlSeconds > 30 * 24 * 3600) {
    throw new EnvironmentError(
      `Environment variable LEASE_TTL_SECONDS="${ttlText}" must be an integer from 120 to 2592000.`,
    );
  }
  const intervalText = env.GRANT_INTERVAL_SECONDS;
  const grantIntervalSeconds =
    intervalText === undefined || intervalText === '' ? DEFAULT_GRANT_INTERVAL_SECONDS : Number(intervalText);
  if (!Number.isInteger(grantIntervalSeconds) || grantIntervalSeconds < 0 || grantIntervalSeconds > 3600) {
    throw new EnvironmentError(
      `Environment variable GRANT_INTERVAL_SECONDS="${intervalText}" must be an integer from 0 to 3600.`,
    );
  }
  return {
    grantIntervalSeconds,
    tableName: required('TABLE_NAME', /^[a-zA-Z0-9_.-]{3,255}$/),
    vpcId: required('VPC_ID', /^vpc-[0-9a-f]{8,17}$/),
    leaseTtlSeconds,
  };
}

/**
 * Who may speak for an instance: ACCOUNT_ID (the stack's account) and HOST_ROLE_NAMES (the
 * stack's host role plus the `hostRoleNames` parameter, comma-separated). Both required: an
 * HTTP function that cannot tell a host from an impersonator must not start.
 */
export function readHostIdentity(env: NodeJS.ProcessEnv = process.env): HostIdentityPolicy {
  const accountId = env.ACCOUNT_ID;
  if (accountId === undefined || accountId === '')
    throw new EnvironmentError('Environment variable ACCOUNT_ID is not set.');
  if (!ACCOUNT_ID.test(accountId))
    throw new EnvironmentError(
      `Environment variable ACCOUNT_ID="${accountId}" is not a 12-digit account id.`,
    );
  const text = env.HOST_ROLE_NAMES;
  if (text === undefined || text.trim() === '')
    throw new EnvironmentError('Environment variable HOST_ROLE_NAMES is not set.');
  let hostRoleNames: string[];
  try {
    hostRoleNames = parseHostRoleNames(text);
  } catch (error) {
    throw new EnvironmentError(`Environment variable HOST_ROLE_NAMES: ${(error as Error).message}.`);
  }
  return { accountId, hostRoleNames };
}

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
  return {
    tableName: required('TABLE_NAME', /^[a-zA-Z0-9_.-]{3,255}$/),
    vpcId: required('VPC_ID', /^vpc-[0-9a-f]{8,17}$/),
    leaseTtlSeconds,
  };
}

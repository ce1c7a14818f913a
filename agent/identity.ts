/**
 * Who this host is: in local mode, what the flags say; on EC2, what IMDSv2 says
 * (with a few retries, because at boot the agent can start before the metadata
 * service answers).
 */
import { OFFLINE_AUTHORIZER_HEADER, offlineIdentityHeader } from '../shared/http/contract.js';
import { Backoff } from './backoff.js';
import { type Clock, systemClock } from './clock.js';
import type { AgentConfig } from './config.js';
import { ImdsClient, type ImdsOptions } from './imds.js';
import type { Logger } from './log.js';

export interface HostIdentity {
  instanceId: string;
  privateIp: string;
  /** from --region / AWS_REGION, else the identity document; absent in local mode */
  region?: string;
  /** local mode: the ARN the local stack is told the caller has */
  localIdentityArn?: string;
}

const IMDS_ATTEMPTS = 5;

export async function resolveIdentity(
  config: AgentConfig,
  deps: { log: Logger; signal?: AbortSignal; clock?: Clock; imds?: ImdsOptions },
): Promise<HostIdentity> {
  if (config.localInstanceId !== undefined && config.privateIp !== undefined) {
    return {
      instanceId: config.localInstanceId,
      privateIp: config.privateIp,
      ...(config.region !== undefined ? { region: config.region } : {}),
      localIdentityArn: localIdentityArn(config.localInstanceId),
    };
  }

  const imds = new ImdsClient({
    ...(config.imdsEndpoint !== undefined ? { endpoint: config.imdsEndpoint } : {}),
    ...deps.imds,
  });
  const clock = deps.clock ?? systemClock;
  const backoff = new Backoff({ baseMs: 1_000, capMs: 8_000 });
  for (let attempt = 1; ; attempt++) {
    try {
      const found = await imds.identity();
      deps.log.info('identity from IMDSv2', {
        instanceId: found.instanceId,
        privateIp: found.privateIp,
        region: found.region,
      });
      return {
        instanceId: found.instanceId,
        privateIp: config.privateIp ?? found.privateIp,
        region: config.region ?? found.region,
      };
    } catch (error) {
      if (attempt >= IMDS_ATTEMPTS || deps.signal?.aborted) throw error;
      const retryInMs = backoff.next();
      deps.log.warn('instance metadata not available yet', { error, attempt, retryInMs });
      await clock.sleep(retryInMs, deps.signal);
    }
  }
}

/** The same ARN the local stack's tests use (shared/http/contract.ts), taken from the one place that spells it. */
export function localIdentityArn(instanceId: string): string {
  const header = offlineIdentityHeader(instanceId)[OFFLINE_AUTHORIZER_HEADER]!;
  return (JSON.parse(header) as { iam: { userArn: string } }).iam.userArn;
}

/**
 * What the agent does about a failed PUT /v1/lease. Transient trouble is retried
 * forever (the host needs its lease, and nobody has to act); a refusal that only a
 * person can fix stops the agent with the server's message and what to do about it.
 */
import { ApiError, isMissingCredentials } from '../shared/http/api-client.js';

export type FailureDecision =
  /** outage, throttling, 5xx: keep the file, back off, try again */
  | { action: 'retry'; message: string; retryAfterSeconds?: number }
  /** the API no longer knows this host's lease: ask again (for the same subnet) */
  | { action: 'reacquire'; message: string }
  /** the API rejected previousSubnet itself: ask again without it */
  | { action: 'drop-hint'; message: string }
  /** a person must act: log, exit non-zero */
  | { action: 'exit'; message: string };

export interface FailureContext {
  /** a lease was granted earlier in this run */
  hadLease: boolean;
  /** the request carried previousSubnet */
  sentHint: boolean;
}

export function decideOnFailure(error: unknown, context: FailureContext): FailureDecision {
  if (!(error instanceof ApiError)) {
    if (isMissingCredentials(error)) {
      return {
        action: 'retry',
        message: `no AWS credentials to sign with: ${(error as Error).message}. On EC2, attach an instance profile whose role has the vpc-lease host policy (docs/agent.md).`,
      };
    }
    throw error; // anything else is a bug in the agent: let it surface with its stack
  }

  if (error.retryable) {
    return {
      action: 'retry',
      message: error.message,
      ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    };
  }
  // the server's message is a sentence; the advice below starts another after its period
  const server = `the API answered ${error.status} ${error.code}: ${error.message.replace(/\.$/, '')}`;
  switch (error.status) {
    case 400:
      if (context.sentHint) {
        return { action: 'drop-hint', message: `${server}; asking again without the previous subnet` };
      }
      return {
        action: 'exit',
        message: `${server}. The agent and the API disagree on the request format: update the agent to the API's version.`,
      };
    case 403:
      return {
        action: 'exit',
        message: `${server}. Check that the instance role has the vpc-lease host policy (docs/agent.md) and that the private IP belongs to this instance; then restart the agent.`,
      };
    case 404:
      // Our API says NotFound for a lease it no longer has; API Gateway's own 404 (no code) means no such route.
      if (error.code === 'NotFound' || context.hadLease) {
        return {
          action: 'reacquire',
          message: `${server}; the lease was revoked or reclaimed, acquiring again`,
        };
      }
      return {
        action: 'exit',
        message: `${server}. No lease route at this URL: check --api-url (include the stage path if the API has one).`,
      };
    case 409:
      return {
        action: 'exit',
        message:
          error.code === 'SubnetsExhausted'
            ? `${server}. Every subnet of the network is leased: revoke leases of hosts that are gone (vpc-lease leases) or widen the network config.`
            : `${server}. An operator must act (see the message); then restart the agent.`,
      };
    default:
      return {
        action: 'exit',
        message: `${server}. This is not retried; fix the cause and restart the agent.`,
      };
  }
}

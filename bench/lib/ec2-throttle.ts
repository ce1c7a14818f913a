/**
 * EC2's request throttling, injected in front of an SDK client: a token bucket per API
 * action, as "Request throttling for the Amazon EC2 API" describes it (each API is
 * evaluated on its own; a request takes one token; an empty bucket answers
 * RequestLimitExceeded; tokens come back at a fixed rate up to the bucket size).
 * Describe* actions get the non-mutating numbers, every other action the mutating ones.
 *
 * It sits at the finalizeRequest step below the SDK's retry middleware, so each attempt
 * meets the bucket and a throttled attempt is retried by the SDK exactly as a real one
 * would be (same error name, HTTP 503, no Retry-After: EC2 sends none). It decides only
 * whether a request is let through; what EC2 does with it is moto's business.
 *
 * `timeScale` runs the buckets' clock faster than the wall clock (refill x timeScale),
 * so that minutes of AWS time fit in seconds; the bench reports times in AWS seconds.
 */
import { EC2ServiceException } from '@aws-sdk/client-ec2';

export interface BucketSpec {
  readonly burst: number;
  readonly refillPerSecond: number;
}

/** DESIGN.md "Routes", after AWS's documented request token buckets. */
export const EC2_MUTATING: BucketSpec = { burst: 50, refillPerSecond: 5 };
export const EC2_DESCRIBE: BucketSpec = { burst: 100, refillPerSecond: 20 };

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly spec: BucketSpec,
    private readonly nowSeconds: () => number,
  ) {
    this.tokens = spec.burst;
    this.last = nowSeconds();
  }

  /** Takes a token if there is one. */
  take(): boolean {
    const now = this.nowSeconds();
    this.tokens = Math.min(this.spec.burst, this.tokens + (now - this.last) * this.spec.refillPerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** A clock in AWS seconds that runs `timeScale` times faster than the wall clock. */
export interface ScaledClock {
  readonly timeScale: number;
  /** AWS seconds since the clock started */
  seconds(): number;
}

export function scaledClock(timeScale: number, startMs = performance.now()): ScaledClock {
  return { timeScale, seconds: () => ((performance.now() - startMs) * timeScale) / 1000 };
}

export interface Ec2Throttle {
  /** requests let through and refused, per action */
  readonly allowed: Map<string, number>;
  readonly refused: Map<string, number>;
  /** Puts the throttle in front of `client` (all clients given share the account's buckets). */
  attach(client: { middlewareStack: { add(middleware: unknown, options: unknown): void } }): void;
}

export function ec2Throttle(
  clock: ScaledClock,
  specs: { mutating: BucketSpec; describe: BucketSpec } = { mutating: EC2_MUTATING, describe: EC2_DESCRIBE },
): Ec2Throttle {
  const buckets = new Map<string, TokenBucket>();
  const allowed = new Map<string, number>();
  const refused = new Map<string, number>();
  const bucketOf = (action: string) => {
    let bucket = buckets.get(action);
    if (!bucket) {
      bucket = new TokenBucket(
        action.startsWith('Describe') ? specs.describe : specs.mutating,
        clock.seconds,
      );
      buckets.set(action, bucket);
    }
    return bucket;
  };
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

  const middleware =
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's generic middleware signature
    (next: any, context: any) => async (args: unknown) => {
      const action = String(context.commandName ?? 'Unknown').replace(/Command$/, '');
      if (bucketOf(action).take()) {
        bump(allowed, action);
        return next(args);
      }
      bump(refused, action);
      throw new EC2ServiceException({
        name: 'RequestLimitExceeded',
        $fault: 'client',
        message: 'Request limit exceeded.',
        $metadata: { httpStatusCode: 503 },
      });
    };

  return {
    allowed,
    refused,
    attach(client) {
      client.middlewareStack.add(middleware, {
        step: 'finalizeRequest',
        priority: 'low',
        name: 'benchEc2Throttle',
        override: true,
      });
    },
  };
}

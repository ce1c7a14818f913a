/**
 * SDK client construction in one place: region, retry policy, and an optional
 * per-command counter (tests and benchmarks assert EC2/DynamoDB call budgets with it).
 * The endpoint comes from the SDK's own AWS_ENDPOINT_URL handling (moto locally).
 *
 * Within an invocation (invocation-deadline.ts) every client keeps to the invocation's
 * deadline: a retry whose delay would end after it is refused (the caller gets the last
 * error, a throttle becomes 503 + Retry-After), and a request under way at the deadline
 * is aborted. Outside an invocation the SDK's standard retry applies unbounded.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { StandardRetryStrategy } from '@smithy/core/retry';
import type { StandardRetryBackoffStrategy } from '@smithy/types';
import { currentDeadline, millisLeft } from './invocation-deadline.js';

export interface CallCounter {
  /** every request sent, retries included, keyed `Service.Command` */
  readonly calls: Map<string, number>;
  record(key: string): void;
  total(prefix?: string): number;
  reset(): void;
}

export function createCallCounter(): CallCounter {
  const calls = new Map<string, number>();
  return {
    calls,
    record(key) {
      calls.set(key, (calls.get(key) ?? 0) + 1);
    },
    total(prefix) {
      let sum = 0;
      for (const [key, n] of calls) if (!prefix || key.startsWith(prefix)) sum += n;
      return sum;
    },
    reset() {
      calls.clear();
    },
  };
}

export interface ClientOptions {
  region?: string;
  /** overrides AWS_ENDPOINT_URL */
  endpoint?: string;
  /** SDK attempts per call, first included (standard retry mode: exponential backoff with jitter) */
  maxAttempts?: number;
  counter?: CallCounter;
  /**
   * The delay before each retry, before the deadline bound (default: the SDK's exponential
   * backoff with full jitter). The benchmarks pass one that runs on their scaled clock.
   */
  retryBackoff?: StandardRetryBackoffStrategy;
}

/** Anything the SDK clients accept `middlewareStack.add` on. */
interface HasMiddleware {
  middlewareStack: {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's middleware types differ per client
    add(middleware: any, options: any): void;
  };
}

/**
 * Counts at the `finalizeRequest` step after retries are expanded, so a throttled call
 * retried three times counts three: that is what AWS bills and throttles.
 */
export function attachCounter(client: HasMiddleware, service: string, counter: CallCounter): void {
  client.middlewareStack.add(
    // biome-ignore lint/suspicious/noExplicitAny: generic middleware signature
    (next: any, context: any) => async (args: any) => {
      counter.record(`${service}.${String(context.commandName ?? 'Unknown').replace(/Command$/, '')}`);
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'vpcLeaseCallCounter', override: true },
  );
}

/** The SDK's retry cap (@smithy/core/retry MAXIMUM_RETRY_DELAY). */
const MAXIMUM_RETRY_DELAY_MS = 20_000;

/**
 * The SDK's standard backoff: a uniformly random delay up to base x 2^retry, capped at
 * 20 s ("full jitter"); the strategy sets the base per error (longer for throttling).
 */
export function exponentialBackoffWithJitter(
  random: () => number = Math.random,
): StandardRetryBackoffStrategy {
  let base = 50;
  return {
    setDelayBase(delayBase) {
      base = delayBase;
    },
    computeNextBackoffDelay(retry) {
      return Math.floor(random() * Math.min(base * 2 ** retry, MAXIMUM_RETRY_DELAY_MS));
    },
  };
}

/** Thrown by the backoff, inside the retry strategy, to refuse a retry the deadline leaves no time for. */
export class RetryPastDeadline extends Error {
  constructor(delayMs: number, leftMs: number) {
    super(
      `A retry in ${delayMs} ms would end after the invocation's deadline (${Math.round(leftMs)} ms left).`,
    );
    this.name = 'RetryPastDeadline';
  }
}

/**
 * `backoff`, bounded by the current invocation's deadline: a delay that would end at or after
 * the deadline is refused. The standard strategy computes the delay before it takes retry
 * quota or sleeps, so the refusal costs neither; the SDK then throws the attempt's own error.
 */
export function deadlineBoundedBackoff(backoff: StandardRetryBackoffStrategy): StandardRetryBackoffStrategy {
  return {
    setDelayBase: (delayBase) => backoff.setDelayBase(delayBase),
    computeNextBackoffDelay(retry) {
      const delay = backoff.computeNextBackoffDelay(retry);
      const deadline = currentDeadline();
      if (deadline && delay >= millisLeft(deadline)) throw new RetryPastDeadline(delay, millisLeft(deadline));
      return delay;
    },
  };
}

/** The SDK's standard retry (attempts, retry quota, which errors), its delays bounded by the deadline. */
export function deadlineBoundedRetryStrategy(
  maxAttempts: number,
  backoff: StandardRetryBackoffStrategy = exponentialBackoffWithJitter(),
): StandardRetryStrategy {
  return new StandardRetryStrategy({ maxAttempts, backoff: deadlineBoundedBackoff(backoff) });
}

// biome-ignore lint/suspicious/noExplicitAny: send's overloads differ per client
type Sends = { send(command: any, options?: any): Promise<any> };

/**
 * Hands every request made within an invocation the invocation's abort signal (unless the
 * caller gave one), so that a request or a retry delay still under way at the deadline stops.
 */
export function abortAtDeadline<C extends Sends>(client: C): C {
  const send = client.send.bind(client);
  // biome-ignore lint/suspicious/noExplicitAny: as above
  client.send = ((command: any, options?: any) => {
    const deadline = currentDeadline();
    if (!deadline || typeof options === 'function' || options?.abortSignal) return send(command, options);
    return send(command, { ...options, abortSignal: deadline.signal });
  }) as C['send'];
  return client;
}

const common = (options: ClientOptions) => ({
  ...(options.region ? { region: options.region } : {}),
  ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  maxAttempts: options.maxAttempts ?? 4,
  retryStrategy: deadlineBoundedRetryStrategy(options.maxAttempts ?? 4, options.retryBackoff),
});

export function createEc2Client(options: ClientOptions = {}): EC2Client {
  const client = new EC2Client(common(options));
  if (options.counter) attachCounter(client, 'EC2', options.counter);
  return abortAtDeadline(client);
}

export function createDynamoDbClient(options: ClientOptions = {}): DynamoDBDocumentClient {
  const client = new DynamoDBClient(common(options));
  if (options.counter) attachCounter(client, 'DynamoDB', options.counter);
  return abortAtDeadline(
    DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
  );
}

/**
 * SDK-side helpers for runs on a scaled clock: the SDK's own retry delays shortened by
 * the same factor as everything else, and per-invocation accounting of time spent in
 * SDK calls (retries and their delays included) via AsyncLocalStorage.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { StandardRetryBackoffStrategy } from '@smithy/types';
import { exponentialBackoffWithJitter } from '../../shared/adapters/aws-clients.js';

interface ClientWithRetry {
  middlewareStack: { add(middleware: unknown, options: unknown): void };
}

/**
 * The SDK's backoff (exponential, full jitter; aws-clients.ts) on a clock `timeScale` times
 * faster: every delay divided by `timeScale`. The clients' retry strategy keeps its decisions
 * (which errors, how many attempts, its retry quota) and bounds these delays by the
 * invocation's deadline, which the bench also sets on the scaled clock (lambda-fleet.ts).
 */
export function scaledBackoff(timeScale: number): StandardRetryBackoffStrategy {
  const backoff = exponentialBackoffWithJitter();
  return {
    setDelayBase: (delayBase) => backoff.setDelayBase(delayBase),
    computeNextBackoffDelay: (retry) => backoff.computeNextBackoffDelay(retry) / timeScale,
  };
}

/** Where one invocation's time went. */
export interface InvocationTally {
  /** wall ms inside SDK calls, by service (attempts, retry delays and queueing in moto included) */
  sdkMs: Record<string, number>;
  /** of which the SDK's own retry delays (real ms) */
  retryDelayMs: number;
}

export const invocationTally = new AsyncLocalStorage<InvocationTally>();

/** Adds each SDK call's time to the current invocation's tally (outermost step: retries included). */
export function tallySdkTime(client: ClientWithRetry, service: string): void {
  client.middlewareStack.add(
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's generic middleware signature
    (next: any) => async (args: unknown) => {
      const tally = invocationTally.getStore();
      if (!tally) return next(args);
      const started = performance.now();
      let metadata: { totalRetryDelay?: number } | undefined;
      try {
        const result = await next(args);
        metadata = result?.output?.$metadata;
        return result;
      } catch (error) {
        metadata = (error as { $metadata?: { totalRetryDelay?: number } }).$metadata;
        throw error;
      } finally {
        tally.sdkMs[service] = (tally.sdkMs[service] ?? 0) + (performance.now() - started);
        tally.retryDelayMs += metadata?.totalRetryDelay ?? 0;
      }
    },
    { step: 'initialize', priority: 'high', name: `benchSdkTime${service}`, override: true },
  );
}

/**
 * SDK-side helpers for runs on a scaled clock: the SDK's own retry delays shortened by
 * the same factor as everything else, and per-invocation accounting of time spent in
 * SDK calls (retries and their delays included) via AsyncLocalStorage.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface RetryToken {
  getRetryDelay(): number;
}
interface RetryStrategyV2 {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(token: RetryToken, errorInfo: unknown): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}
interface ClientWithRetry {
  config: object;
  middlewareStack: { add(middleware: unknown, options: unknown): void };
}

/**
 * Divides every delay the client's retry strategy asks for by `timeScale`, leaving its
 * decisions (which errors to retry, how many attempts, its retry quota) untouched.
 */
export function scaleSdkRetryDelays(client: ClientWithRetry, timeScale: number): void {
  if (timeScale === 1) return;
  const config = client.config as { retryStrategy: () => Promise<RetryStrategyV2> };
  const original = config.retryStrategy;
  const originals = new WeakMap<object, RetryToken>();
  const scaled = (token: RetryToken): RetryToken => {
    const proxy = new Proxy(token, {
      get(target, property) {
        if (property === 'getRetryDelay') return () => target.getRetryDelay() / timeScale;
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    originals.set(proxy, token);
    return proxy;
  };
  const unwrap = (token: RetryToken) => originals.get(token) ?? token;
  let wrapped: Promise<RetryStrategyV2> | undefined;
  config.retryStrategy = () =>
    (wrapped ??= original().then((strategy) => ({
      acquireInitialRetryToken: async (scope: string) =>
        scaled(await strategy.acquireInitialRetryToken(scope)),
      refreshRetryTokenForRetry: async (token: RetryToken, errorInfo: unknown) =>
        scaled(await strategy.refreshRetryTokenForRetry(unwrap(token), errorInfo)),
      recordSuccess: (token: RetryToken) => strategy.recordSuccess(unwrap(token)),
    })));
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

/**
 * Retry delays: exponential with full jitter (delay drawn uniformly from 0 to
 * min(cap, base * 2^attempt)), so that a fleet of agents that lost the API at the
 * same moment does not come back in lockstep. See "Exponential Backoff And Jitter",
 * AWS Architecture Blog. A server's Retry-After is a floor, not a suggestion.
 */
export interface BackoffOptions {
  /** first ceiling; default 1 s */
  baseMs?: number;
  /** the ceiling never grows past this; default 30 s */
  capMs?: number;
  /**
   * Retry-After above this is cut down to it (default 5 min): a buggy or hostile
   * header must not park a host longer than the agent can afford before its lease expires.
   */
  maxRetryAfterMs?: number;
  /** [0, 1); injectable for tests */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 1_000;
    this.capMs = options.capMs ?? 30_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 5 * 60_000;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0 && this.capMs >= this.baseMs)) {
      throw new RangeError(
        `backoff needs 0 < base <= cap (got base ${this.baseMs} ms, cap ${this.capMs} ms)`,
      );
    }
  }

  /** The delay before the next attempt, in ms. */
  next(retryAfterSeconds?: number): number {
    // 2^attempt stops growing once it passes the cap; clamping the exponent avoids Infinity after many failures.
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    const jittered = Math.floor(this.random() * ceiling);
    if (retryAfterSeconds === undefined || !Number.isFinite(retryAfterSeconds) || retryAfterSeconds < 0) {
      return jittered;
    }
    return Math.max(jittered, Math.min(retryAfterSeconds * 1_000, this.maxRetryAfterMs));
  }

  /** After a success: the next failure starts again from the base. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

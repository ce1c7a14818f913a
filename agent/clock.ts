/**
 * Time as the agent sees it. Everything that waits goes through a Clock so tests
 * can drive hours of renewals without sleeping.
 */
export interface Clock {
  now(): number;
  /** resolves after `ms`, or at once when `signal` aborts (never rejects) */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** setTimeout fires at once for delays above 2^31-1 ms (~24.8 days), so longer waits are cut into chunks. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(Math.max(0, ms), MAX_TIMER_MS));
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** Sleeps until the clock reads `deadline` (ms since the epoch), however far away; returns early on abort. */
export async function sleepUntil(clock: Clock, deadline: number, signal?: AbortSignal): Promise<void> {
  for (let left = deadline - clock.now(); left > 0 && !signal?.aborted; left = deadline - clock.now()) {
    await clock.sleep(Math.min(left, MAX_TIMER_MS), signal);
  }
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../agent/backoff.js';

describe('backoff', () => {
  it('doubles the ceiling per attempt up to the cap', () => {
    const top = new Backoff({ baseMs: 1_000, capMs: 30_000, random: () => 0.999_999_9 });
    const delays = Array.from({ length: 8 }, () => top.next());
    expect(delays).toEqual([999, 1_999, 3_999, 7_999, 15_999, 29_999, 29_999, 29_999]);
  });

  it('stays within [0, min(cap, base * 2^attempt)) for any random source (full jitter)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 60,
        }),
        (baseMs, extra, randoms) => {
          const capMs = baseMs + extra;
          let i = 0;
          const backoff = new Backoff({ baseMs, capMs, random: () => randoms[i++ % randoms.length]! });
          randoms.forEach((_, attempt) => {
            const delay = backoff.next();
            expect(delay).toBeGreaterThanOrEqual(0);
            expect(delay).toBeLessThan(Math.min(capMs, baseMs * 2 ** attempt));
          });
        },
      ),
    );
  });

  it('does not overflow after very many failures', () => {
    const backoff = new Backoff({ random: () => 0.5 });
    for (let i = 0; i < 10_000; i++) backoff.next();
    expect(backoff.next()).toBe(15_000);
  });

  it('waits at least Retry-After, even when the jitter draws less', () => {
    const backoff = new Backoff({ random: () => 0 });
    expect(backoff.next(7)).toBe(7_000);
    expect(backoff.next(0)).toBe(0);
  });

  it('keeps the larger jittered delay when Retry-After is shorter', () => {
    const backoff = new Backoff({ baseMs: 10_000, capMs: 10_000, random: () => 0.5 });
    expect(backoff.next(1)).toBe(5_000);
  });

  it('caps an absurd Retry-After so the lease is not put at risk', () => {
    const backoff = new Backoff({ random: () => 0, maxRetryAfterMs: 300_000 });
    expect(backoff.next(86_400)).toBe(300_000);
  });

  it('starts over after reset', () => {
    const backoff = new Backoff({ baseMs: 1_000, capMs: 30_000, random: () => 0.999_999_9 });
    backoff.next();
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(999);
  });

  it('refuses a cap below the base', () => {
    expect(() => new Backoff({ baseMs: 5_000, capMs: 1_000 })).toThrow(/base <= cap/);
  });
});

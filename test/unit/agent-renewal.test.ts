import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, sleepUntil, systemClock } from '../../agent/clock.js';
import { planRenewal } from '../../agent/renewal.js';
import { FakeClock } from './agent-support.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('renewal schedule', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('renews renew-margin before expiry, like flanneld', () => {
    expect(planRenewal(now + 24 * HOUR, now, 60 * MINUTE)).toEqual({
      renewAt: now + 23 * HOUR,
      marginTooLong: false,
    });
  });

  it('renews half-way when the margin is as long as the lease, instead of in a tight loop', () => {
    const plan = planRenewal(now + 30 * MINUTE, now, 60 * MINUTE);
    expect(plan).toEqual({ renewAt: now + 15 * MINUTE, marginTooLong: true });
  });

  it('renews an expired lease at once and an almost expired one within its remaining time', () => {
    expect(planRenewal(now - 1, now, HOUR).renewAt).toBe(now);
    const almost = planRenewal(now + 500, now, HOUR);
    expect(almost.renewAt).toBe(now + 250);
  });

  it('waits at least half the remaining time, so a short lease is not renewed in a loop', () => {
    const plan = planRenewal(now + HOUR + 2_000, now, HOUR);
    expect(plan).toEqual({ renewAt: now + (HOUR + 2_000) / 2, marginTooLong: true });
  });

  it('never schedules a renewal after expiry or in the past', () => {
    for (const remaining of [1, 999, 1_000, 1_001, 59 * MINUTE, HOUR, HOUR + 1, 24 * HOUR]) {
      for (const margin of [0, MINUTE, HOUR, 2 * HOUR]) {
        const { renewAt } = planRenewal(now + remaining, now, margin);
        expect(renewAt).toBeGreaterThanOrEqual(now);
        expect(renewAt).toBeLessThanOrEqual(now + remaining);
        if (margin > 0) expect(renewAt).toBeLessThan(now + remaining);
      }
    }
  });
});

describe('waiting for the renewal', () => {
  it('wakes exactly at the deadline on a fake clock', async () => {
    const clock = new FakeClock();
    const deadline = clock.now() + 23 * HOUR;
    let woke = false;
    const waiting = sleepUntil(clock, deadline).then(() => {
      woke = true;
    });

    clock.advance(23 * HOUR - 1);
    await Promise.resolve();
    expect(woke).toBe(false);
    clock.advance(1);
    await waiting;
    expect(clock.now()).toBe(deadline);
  });

  it('cuts waits longer than the timer limit into chunks instead of firing at once', async () => {
    const clock = new FakeClock();
    const deadline = clock.now() + 40 * 24 * HOUR; // past setTimeout's 24.8-day limit
    const waiting = sleepUntil(clock, deadline);
    while (clock.now() < deadline) {
      const next = clock.nextSleep();
      clock.wakeNext();
      if (clock.now() < deadline) await next;
    }
    await waiting;
    expect(Math.max(...clock.requested)).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(clock.requested.length).toBe(2);
  });

  it('returns at once when stopped', async () => {
    const clock = new FakeClock();
    const stop = new AbortController();
    const waiting = sleepUntil(clock, clock.now() + HOUR, stop.signal);
    stop.abort();
    await waiting;
    expect(clock.now()).toBe(Date.parse('2026-01-01T00:00:00Z'));
  });

  it('the system clock also stops sleeping on abort', async () => {
    const stop = new AbortController();
    const waiting = systemClock.sleep(HOUR, stop.signal);
    let woke = false;
    void waiting.then(() => {
      woke = true;
    });
    await Promise.resolve();
    expect(woke).toBe(false); // an hour's sleep, really sleeping

    stop.abort();

    await waiting; // resolves on the abort, an hour early (else the test's own timeout fails it)
    expect(woke).toBe(true);
  });
});

/**
 * When to renew. Like flanneld: `--renew-margin` before the lease expires, but never
 * earlier than half-way through the remaining time. Without that floor, a margin as
 * long as the lease (a short TTL configured on the API) would mean renewing in a
 * tight loop; with it, a host always waits a sensible fraction of its lease.
 */
export interface RenewalPlan {
  /** ms since the epoch */
  renewAt: number;
  /** true when the margin did not fit and half the remaining time was used instead */
  marginTooLong: boolean;
}

export function planRenewal(expiresAtMs: number, nowMs: number, marginMs: number): RenewalPlan {
  const remaining = expiresAtMs - nowMs;
  if (remaining <= 0) return { renewAt: nowMs, marginTooLong: false }; // already expired: at once
  const half = Math.floor(remaining / 2);
  const beforeMargin = remaining - marginMs;
  return beforeMargin >= half
    ? { renewAt: nowMs + beforeMargin, marginTooLong: false }
    : { renewAt: nowMs + half, marginTooLong: true };
}

/**
 * Claiming a subnet for a new lease (PUT /v1/lease): the allocation strategy chooses, the
 * store's atomic grant decides (invariants 1-3 rest on it). A lost race excludes what it lost
 * and reads the occupancy of a block of fresh candidates; a full ledger or a full network
 * frees a place an expired lease holds, or is refused.
 */
import type { AllocationStrategy, Random } from './allocator.js';
import { type Cidr, formatCidr } from './cidr.js';
import { RouteLimitExceededError, ServiceUnavailableError, SubnetsExhaustedError } from './errors.js';
import { isLive, type Lease } from './lease.js';
import { isLeasable, leasableCount, type NetworkConfig, pairedIpv6Subnet } from './network-config.js';
import type { CapacityUsage, LeaseStore, Occupancy, RouteTableSnapshot } from './ports.js';
import { fullestTable } from './route-capacity.js';
import { routesOf } from './route-family.js';
import { isClaimedByForeign, parseDestination } from './route-ownership.js';

export interface SubnetClaimDeps {
  readonly store: Pick<LeaseStore, 'grant' | 'getByInstance' | 'occupancy' | 'occupancyOf'>;
  readonly strategy: AllocationStrategy;
  readonly random: Random;
  /** Frees the place of one expired lease among `occupancy`'s (routes first); false when none could be. */
  reclaimOne(occupancy: Occupancy, config: NetworkConfig, now: Date): Promise<boolean>;
}

export interface ClaimRequest {
  readonly instanceId: string;
  readonly privateIp: string;
  readonly networkInterfaceId: string;
  /** tried first: the subnet the host held before, when it is free */
  readonly preferred: Cidr | undefined;
  readonly expiresAt: Date;
  readonly now: Date;
}

/** Grant attempts per request; each lost race excludes what it lost, so this is generous. */
const MAX_GRANT_ATTEMPTS = 12;
/**
 * Subnets whose occupancy one re-read after a lost race asks for (one BatchGetItem): enough
 * that some are free unless the network is nearly full (then the whole table is scanned).
 */
const CANDIDATE_BLOCK = 20;

/**
 * Grants the instance a lease on a free leasable subnet, in the store's one atomic write.
 * `adopted`: a concurrent request of the same instance won, and its lease is the answer
 * (acquire is idempotent). Subnets foreign routes claim are never chosen (invariant 5).
 */
export async function claimSubnet(
  deps: SubnetClaimDeps,
  config: NetworkConfig,
  snapshot: RouteTableSnapshot,
  request: ClaimRequest,
): Promise<{ lease: Lease; adopted: boolean }> {
  const { store } = deps;
  const { now } = request;
  // Subnets that foreign routes cover or overlap are never leased (invariant 5).
  // In either family: a subnet whose IPv6 partner a foreign IPv6 route claims is skipped too.
  const claims = (snapshot.foreignClaims ?? []).flatMap((c) => {
    const claim = parseDestination(c);
    return claim ? [claim] : [];
  });
  const blocked =
    claims.length > 0
      ? (subnet: Cidr) => {
          if (isClaimedByForeign(subnet, claims)) return true;
          const ipv6 = isLeasable(config, subnet) ? pairedIpv6Subnet(config, subnet) : undefined;
          return ipv6 !== undefined && isClaimedByForeign(ipv6, claims);
        }
      : undefined;
  const lost = new Set<string>();
  // What reads have shown so far: subnets with a lease item (the hint the strategy avoids).
  const known: { subnets: Set<string>; expiredSubnets: Set<string> } = {
    subnets: new Set(),
    expiredSubnets: new Set(),
  };
  let scanned: Occupancy | undefined;
  // Free subnets of the last block read, in the strategy's order: tried before choosing again.
  let candidates: Cidr[] = [];
  let preferred = request.preferred;
  const learn = (seen: Occupancy) => {
    for (const s of seen.subnets) known.subnets.add(s);
    for (const s of seen.expiredSubnets) known.expiredSubnets.add(s);
  };
  const choose = (exclude: ReadonlySet<string>) =>
    deps.strategy({
      config,
      occupied: withoutExpired(known.subnets, known.expiredSubnets, preferred),
      exclude,
      preferred,
      blocked,
      random: deps.random,
    });

  // First try blind (no read): with few leases out, a random pick almost always wins.
  for (let attempt = 0; attempt < MAX_GRANT_ATTEMPTS; attempt++) {
    const subnet = candidates.shift() ?? choose(lost);
    if (!subnet) {
      // Nothing free in what we know: read everything once, then free what expired leases hold.
      if (scanned && !(await deps.reclaimOne(scanned, config, now))) {
        throw new SubnetsExhaustedError({
          network: formatCidr(config.network),
          total: leasableCount(config),
        });
      }
      scanned = await store.occupancy(now);
      learn(scanned);
      lost.clear();
      continue;
    }

    // Dual stack: the IPv6 subnet of the same index. Unique because the IPv4 subnet is, so
    // invariant 1 holds for IPv6 on the same item. A route per table and family, all pending.
    const ipv6Subnet = pairedIpv6Subnet(config, subnet);
    const result = await store.grant(
      {
        subnet,
        ...(ipv6Subnet ? { ipv6Subnet } : {}),
        instanceId: request.instanceId,
        privateIp: request.privateIp,
        networkInterfaceId: request.networkInterfaceId,
        expiresAt: request.expiresAt,
        routes: routesOf(
          config,
          snapshot.tables.map((t) => t.routeTableId),
          'pending',
        ),
      },
      now,
    );
    if (result.granted) return { lease: result.lease, adopted: false };

    if (result.conflicts.includes('instance-has-lease')) {
      // A concurrent request of the same instance won: answer with its lease (acquire is idempotent).
      const mine = await store.getByInstance(request.instanceId);
      if (mine && isLive(mine, now)) return { lease: mine, adopted: true };
    }
    if (result.conflicts.includes('no-capacity') && isFull(result.capacity)) {
      // Every place is held: free one an expired lease holds (routes first), or refuse.
      scanned ??= await store.occupancy(now);
      if (!(await deps.reclaimOne(scanned, config, now)))
        throw routeLimitExceeded(config, snapshot, result.capacity);
      scanned = undefined;
      continue; // the same subnet again: it was not lost
    }
    if (result.conflicts.includes('subnet-taken')) {
      lost.add(formatCidr(subnet));
      known.subnets.add(formatCidr(subnet));
      preferred = undefined;
      // A bounded re-read: the occupancy of a block of fresh candidates, not the whole table.
      if (candidates.length === 0) candidates = await freeAmong(store, choose, lost, now, learn);
    }
    // A place lost to a concurrent write (not a full ledger): try again as it is.
  }
  throw new ServiceUnavailableError(
    'Too many hosts are joining at once; no subnet could be claimed in this request. Retry shortly.',
    1,
  );
}

/** Up to CANDIDATE_BLOCK candidates the strategy would choose next, read in one request; the free ones. */
async function freeAmong(
  store: SubnetClaimDeps['store'],
  choose: (exclude: ReadonlySet<string>) => Cidr | undefined,
  lost: ReadonlySet<string>,
  now: Date,
  learn: (seen: Occupancy) => void,
): Promise<Cidr[]> {
  const block: Cidr[] = [];
  const picked = new Set(lost);
  for (let i = 0; i < CANDIDATE_BLOCK; i++) {
    const candidate = choose(picked);
    if (!candidate) break;
    block.push(candidate);
    picked.add(formatCidr(candidate));
  }
  if (block.length === 0) return [];
  const seen = await store.occupancyOf(block, now);
  learn(seen);
  return block.filter((c) => !seen.subnets.has(formatCidr(c)));
}

/** The preferred subnet stays choosable when it is only held by an expired lease (a takeover is allowed). */
function withoutExpired(
  subnets: ReadonlySet<string>,
  expired: ReadonlySet<string>,
  preferred: Cidr | undefined,
): ReadonlySet<string> {
  const key = preferred && formatCidr(preferred);
  if (!key || !expired.has(key)) return subnets;
  const copy = new Set(subnets);
  copy.delete(key);
  return copy;
}

const isFull = (usage: CapacityUsage | undefined): usage is CapacityUsage =>
  usage !== undefined && usage.used >= usage.capacity;

/** 409 with the fullest table's figures: its foreign routes plus the places leases hold. */
function routeLimitExceeded(
  config: NetworkConfig,
  snapshot: RouteTableSnapshot,
  usage: CapacityUsage,
): RouteLimitExceededError {
  const fullest = fullestTable(snapshot);
  const limit = config.backend.routeLimit;
  // The fuller family of the fullest table: its foreign routes plus one route per lease.
  const foreign = fullest ? Math.max(fullest.foreignRoutes, fullest.foreignIpv6Routes ?? 0) : 0;
  return new RouteLimitExceededError({
    used: Math.min(limit, foreign + usage.used),
    limit,
    ...(fullest ? { routeTableId: fullest.routeTableId, family: fullest.family } : {}),
  });
}

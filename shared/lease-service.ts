/**
 * The lease use-cases: acquire (idempotent, renewing), release, revoke, reclaim.
 * All logic lives here; the Lambda handlers only translate HTTP to these calls.
 */
import { type AllocationStrategy, type Random, STRATEGIES } from './allocator.js';
import { type Cidr, type CidrError, formatCidr, isIp, parseCidr } from './cidr.js';
import {
  ConfigMissingError,
  ForbiddenError,
  ForeignRouteError,
  RouteLimitExceededError,
  ServiceUnavailableError,
  SubnetsExhaustedError,
  TooManyRequestsError,
  ValidationError,
  VpcLeaseError,
} from './errors.js';
import { allRoutesActive, isLive, type Lease, type LeaseRoute } from './lease.js';
import { isLeasable, leasableCount, type NetworkConfig, pairedIpv6Subnet } from './network-config.js';
import type {
  CapacityUsage,
  Clock,
  InstanceInfo,
  InstancePort,
  LeaseStore,
  NetworkInterface,
  Occupancy,
  RouteTableSnapshot,
  StoredConfig,
} from './ports.js';
import { fullestTable } from './route-capacity.js';
import { coversFamilies, routesOf } from './route-family.js';
import { isClaimedByForeign, parseDestination } from './route-ownership.js';

/** What the lease service needs from the route side (implemented by RouteService). */
export interface LeaseRouteWriter {
  /** Describes the tables in scope and stores how many foreign routes each holds. */
  refreshSnapshot(config: NetworkConfig): Promise<{ snapshot: RouteTableSnapshot }>;
  /**
   * Writes the lease's route in each table. Throws RouteLimitExceededError when EC2 refuses
   * for lack of room; throttling and outages leave the route `pending` and come back as `error`.
   */
  ensureLeaseRoutes(
    lease: Lease,
    config: NetworkConfig,
    options: { sourceDestCheck: boolean; routeTableIds: readonly string[] },
  ): Promise<{ lease: Lease | undefined; routes: readonly LeaseRoute[]; error: unknown }>;
  /** Deletes the lease's routes that still point to its ENI; never another holder's. */
  removeLeaseRoutes(lease: Lease, config: NetworkConfig): Promise<unknown>;
}

export interface LeaseServiceOptions {
  store: LeaseStore;
  instances: InstancePort;
  routes: LeaseRouteWriter;
  clock: Clock;
  /** the VPC this control plane manages: hosts elsewhere are refused */
  vpcId: string;
  leaseTtlSeconds: number;
  /** at most one new grant per instance per this many seconds (DESIGN.md "Leases"); default 30, 0 = no limit */
  grantIntervalSeconds?: number;
  /** how old the route-table snapshot may be before a grant re-reads the tables (default 10 min) */
  snapshotMaxAgeSeconds?: number;
  strategy?: AllocationStrategy;
  random?: Random;
  logger?: { info(message: string, extra?: object): void; warn(message: string, extra?: object): void };
}

export interface AcquireRequest {
  privateIp: string;
  previousSubnet?: string | undefined;
}

export interface AcquireResult {
  lease: Lease;
  config: NetworkConfig;
  /** granted: a new lease; renewed: the caller's existing lease, extended */
  outcome: 'granted' | 'renewed';
}

export const DEFAULT_GRANT_INTERVAL_SECONDS = 30;

/** Grant attempts per request; each lost race excludes what it lost, so this is generous. */
const MAX_GRANT_ATTEMPTS = 12;
/**
 * Subnets whose occupancy one re-read after a lost race asks for (one BatchGetItem): enough
 * that some are free unless the network is nearly full (then the whole table is scanned).
 */
const CANDIDATE_BLOCK = 20;

export class LeaseService {
  private readonly strategy: AllocationStrategy;
  private readonly random: Random;

  constructor(private readonly deps: LeaseServiceOptions) {
    this.strategy = deps.strategy ?? STRATEGIES.random;
    this.random = deps.random ?? Math.random;
  }

  async getConfig(): Promise<StoredConfig> {
    const stored = await this.deps.store.getConfig();
    if (!stored) throw new ConfigMissingError();
    return stored;
  }

  /**
   * Acquire or renew the caller's lease (PUT /v1/lease).
   * Renewal of a lease whose routes are all active costs no EC2 call.
   */
  async acquire(instanceId: string, request: AcquireRequest): Promise<AcquireResult> {
    if (!isIp(request.privateIp))
      throw new ValidationError(`privateIp: "${String(request.privateIp)}" is not an IPv4 address.`);
    const previous = parsePrevious(request.previousSubnet);
    const now = this.deps.clock.now();
    const context = await this.context(instanceId);
    const config = context.config.config;
    const existing = context.existing;

    if (
      existing &&
      isLive(existing, now) &&
      existing.privateIp === request.privateIp &&
      isLeasable(config, existing.subnet)
    ) {
      const renewed = await this.deps.store.renew(existing, this.expiry(now));
      if (renewed) {
        if (allRoutesActive(renewed) && coversTables(renewed, config, context.snapshot))
          return { lease: renewed, config, outcome: 'renewed' };
        // A grant whose routes stayed pending (EC2 throttled): finish it now.
        const nic = await this.verifyInstance(instanceId, request.privateIp);
        const snapshot = await this.currentSnapshot(config, context.snapshot, now);
        return { lease: await this.writeRoutes(renewed, config, nic, snapshot), config, outcome: 'renewed' };
      }
    }

    // A new grant (first lease, re-lease, another address) from here on: rate-limited per
    // instance, refused before any EC2 call when too soon (DESIGN.md "Leases").
    this.checkGrantInterval(instanceId, context.lastGrantAt, now);
    const nic = await this.verifyInstance(instanceId, request.privateIp);
    await this.takeGrantTurn(instanceId, now);
    let preferred = previous;
    if (existing) {
      if (isLive(existing, now)) {
        // The host's IP or ENI changed under a live lease (or the config moved): move it cleanly.
        this.deps.logger?.info('moving lease to a new address', {
          instanceId,
          subnet: formatCidr(existing.subnet),
        });
        await this.deps.routes.removeLeaseRoutes(existing, config);
        await this.deps.store.delete(existing);
      }
      preferred = existing.subnet;
    }
    let snapshot = await this.currentSnapshot(config, context.snapshot, now);
    // A foreign route the snapshot did not know yet may hold the chosen subnet's destination:
    // the grant is undone, the snapshot re-read (it now claims that subnet) and one more tried.
    for (let attempt = 1; ; attempt++) {
      const granted = await this.grant(config, snapshot, {
        instanceId,
        privateIp: request.privateIp,
        networkInterfaceId: nic.networkInterfaceId,
        preferred,
        now,
      });
      if (granted.adopted) return { lease: granted.lease, config, outcome: 'renewed' };
      this.deps.logger?.info('lease granted', { subnet: formatCidr(granted.lease.subnet), instanceId });
      try {
        return {
          lease: await this.writeRoutes(granted.lease, config, nic, snapshot),
          config,
          outcome: 'granted',
        };
      } catch (error) {
        if (!(error instanceof ForeignRouteError) || attempt >= 2) throw error;
        snapshot = (await this.deps.routes.refreshSnapshot(config)).snapshot;
        preferred = undefined;
      }
    }
  }

  /** DELETE /v1/lease: routes first, then the lease. Idempotent: no lease, nothing to do. */
  async release(instanceId: string): Promise<Lease | undefined> {
    const lease = await this.deps.store.getByInstance(instanceId);
    if (!lease) return undefined;
    const { config } = await this.getConfig();
    await this.deps.routes.removeLeaseRoutes(lease, config);
    await this.deps.store.delete(lease);
    this.deps.logger?.info('lease released', { subnet: formatCidr(lease.subnet), instanceId });
    return lease;
  }

  /** Admin revoke: routes first, then the lease. Returns the lease and the config it was cut from. */
  async revoke(subnet: Cidr): Promise<{ lease: Lease; config: NetworkConfig } | undefined> {
    const lease = await this.deps.store.getBySubnet(subnet);
    if (!lease) return undefined;
    const { config } = await this.getConfig();
    await this.deps.routes.removeLeaseRoutes(lease, config);
    await this.deps.store.delete(lease);
    this.deps.logger?.info('lease revoked', {
      subnet: formatCidr(lease.subnet),
      instanceId: lease.instanceId,
    });
    return { lease, config };
  }

  /** An expired lease: routes first, then the lease, and only if it is still expired. */
  async reclaim(lease: Lease, config: NetworkConfig, now: Date): Promise<boolean> {
    if (isLive(lease, now)) return false;
    await this.deps.routes.removeLeaseRoutes(lease, config);
    const deleted = await this.deps.store.delete(lease, { onlyIfExpiredAt: now });
    if (deleted)
      this.deps.logger?.info('expired lease reclaimed', {
        subnet: formatCidr(lease.subnet),
        instanceId: lease.instanceId,
      });
    return deleted;
  }

  // ------------------------------------------------------------------ internals

  /** Config, route-table snapshot and the caller's lease: one batched read plus one get. */
  private async context(instanceId: string) {
    const { store } = this.deps;
    const { config, snapshot, instanceSubnet, lastGrantAt } = await store.getLeaseContext(instanceId);
    if (!config) throw new ConfigMissingError();
    const lease = instanceSubnet ? await store.getBySubnet(parseCidr(instanceSubnet)) : undefined;
    return { config, snapshot, lastGrantAt, existing: lease?.instanceId === instanceId ? lease : undefined };
  }

  /** 429 when the instance's last new grant is less than the grant interval ago (no EC2 call made yet). */
  private checkGrantInterval(instanceId: string, lastGrantAt: Date | undefined, now: Date): void {
    const intervalMs = this.grantIntervalMs();
    if (intervalMs === 0 || lastGrantAt === undefined) return;
    const waitMs = lastGrantAt.getTime() + intervalMs - now.getTime();
    if (waitMs > 0) throw tooSoon(instanceId, intervalMs, waitMs);
  }

  /** Records this new grant; of two concurrent new grants of one instance only one passes (429 for the other). */
  private async takeGrantTurn(instanceId: string, now: Date): Promise<void> {
    const intervalMs = this.grantIntervalMs();
    if (intervalMs === 0) return;
    if (!(await this.deps.store.recordGrant(instanceId, now, new Date(now.getTime() - intervalMs)))) {
      throw tooSoon(instanceId, intervalMs, intervalMs);
    }
  }

  private grantIntervalMs(): number {
    return (this.deps.grantIntervalSeconds ?? DEFAULT_GRANT_INTERVAL_SECONDS) * 1000;
  }

  private expiry(now: Date): Date {
    return new Date(now.getTime() + this.deps.leaseTtlSeconds * 1000);
  }

  /** The instance must exist in our VPC, be running and own `privateIp`; returns the ENI holding it. */
  private async verifyInstance(instanceId: string, privateIp: string): Promise<NetworkInterface> {
    const [instance]: InstanceInfo[] = await this.deps.instances.describeInstances([instanceId]);
    if (!instance)
      throw new ForbiddenError(`Instance ${instanceId} does not exist in this account and region.`);
    if (instance.vpcId !== this.deps.vpcId) {
      throw new ForbiddenError(
        `Instance ${instanceId} is in ${instance.vpcId ?? 'no VPC'}; this control plane manages ${this.deps.vpcId}.`,
      );
    }
    if (instance.state !== 'running') {
      throw new ForbiddenError(
        `Instance ${instanceId} is ${instance.state}; only running instances get a lease.`,
      );
    }
    const nic = instance.networkInterfaces.find((n) => n.privateIps.includes(privateIp));
    if (!nic) {
      throw new ForbiddenError(
        `privateIp ${privateIp} is not an address of instance ${instanceId}; send the instance's own private IP.`,
      );
    }
    return nic;
  }

  private async currentSnapshot(
    config: NetworkConfig,
    snapshot: RouteTableSnapshot | undefined,
    now: Date,
  ): Promise<RouteTableSnapshot> {
    const maxAgeMs = (this.deps.snapshotMaxAgeSeconds ?? 600) * 1000;
    const wanted = config.backend.routeTableIds;
    const matches =
      snapshot !== undefined &&
      now.getTime() - snapshot.refreshedAt.getTime() <= maxAgeMs &&
      (wanted === undefined ||
        (wanted.length === snapshot.tables.length &&
          wanted.every((id) => snapshot.tables.some((t) => t.routeTableId === id))));
    if (matches) return snapshot;
    return (await this.deps.routes.refreshSnapshot(config)).snapshot;
  }

  private async grant(
    config: NetworkConfig,
    snapshot: RouteTableSnapshot,
    request: {
      instanceId: string;
      privateIp: string;
      networkInterfaceId: string;
      preferred: Cidr | undefined;
      now: Date;
    },
  ): Promise<{ lease: Lease; adopted: boolean }> {
    const { store } = this.deps;
    const { now } = request;
    // Subnets that foreign routes cover or overlap are never leased (invariant 5), in either
    // family: a subnet whose IPv6 partner a foreign IPv6 route claims is skipped too.
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
      this.strategy({
        config,
        occupied: withoutExpired(known.subnets, known.expiredSubnets, preferred),
        exclude,
        preferred,
        blocked,
        random: this.random,
      });

    // First try blind (no read): with few leases out, a random pick almost always wins.
    for (let attempt = 0; attempt < MAX_GRANT_ATTEMPTS; attempt++) {
      const subnet = candidates.shift() ?? choose(lost);
      if (!subnet) {
        // Nothing free in what we know: read everything once, then free what expired leases hold.
        if (scanned && !(await this.reclaimOne(scanned, config, now))) {
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
      // invariant 1 holds for IPv6 on the same item.
      const ipv6Subnet = pairedIpv6Subnet(config, subnet);
      const result = await store.grant(
        {
          subnet,
          ...(ipv6Subnet ? { ipv6Subnet } : {}),
          instanceId: request.instanceId,
          privateIp: request.privateIp,
          networkInterfaceId: request.networkInterfaceId,
          expiresAt: this.expiry(now),
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
        if (!(await this.reclaimOne(scanned, config, now)))
          throw routeLimitExceeded(config, snapshot, result.capacity);
        scanned = undefined;
        continue; // the same subnet again: it was not lost
      }
      if (result.conflicts.includes('subnet-taken')) {
        lost.add(formatCidr(subnet));
        known.subnets.add(formatCidr(subnet));
        preferred = undefined;
        // A bounded re-read: the occupancy of a block of fresh candidates, not the whole table.
        if (candidates.length === 0) candidates = await this.freeAmong(choose, lost, now, learn);
      }
      // A place lost to a concurrent write (not a full ledger): try again as it is.
    }
    throw new ServiceUnavailableError(
      'Too many hosts are joining at once; no subnet could be claimed in this request. Retry shortly.',
      1,
    );
  }

  /** Up to CANDIDATE_BLOCK candidates the strategy would choose next, read in one request; the free ones. */
  private async freeAmong(
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
    const seen = await this.deps.store.occupancyOf(block, now);
    learn(seen);
    return block.filter((c) => !seen.subnets.has(formatCidr(c)));
  }

  /** Frees capacity held by expired leases: reclaims one expired lease (routes first). */
  private async reclaimOne(occupancy: Occupancy, config: NetworkConfig, now: Date): Promise<boolean> {
    for (const subnet of occupancy.expiredSubnets) {
      const lease = await this.deps.store.getBySubnet(parseCidr(subnet));
      if (lease && (await this.reclaim(lease, config, now))) return true;
    }
    return false;
  }

  private async writeRoutes(
    lease: Lease,
    config: NetworkConfig,
    nic: NetworkInterface,
    snapshot: RouteTableSnapshot,
  ): Promise<Lease> {
    let outcome: Awaited<ReturnType<LeaseRouteWriter['ensureLeaseRoutes']>>;
    try {
      // Only the tables still missing the route: a retried PUT after a throttle spends no
      // mutation on routes already written.
      const active = new Set(lease.routes.filter((r) => r.state === 'active').map((r) => r.routeTableId));
      outcome = await this.deps.routes.ensureLeaseRoutes(lease, config, {
        sourceDestCheck: nic.sourceDestCheck,
        routeTableIds: snapshot.tables.map((t) => t.routeTableId).filter((id) => !active.has(id)),
      });
    } catch (error) {
      if (error instanceof RouteLimitExceededError || error instanceof ForeignRouteError) {
        // EC2 counted more routes than our snapshot did, or a foreign route holds the subnet's
        // destination: undo the grant (only this lease's routes go), so the invariants hold.
        this.deps.logger?.warn('route refused; grant undone', { ...describe(lease), reason: error.message });
        await this.deps.routes.removeLeaseRoutes(lease, config);
        await this.deps.store.delete(lease);
      }
      throw error;
    }
    if (outcome.error !== undefined && outcome.error !== null) {
      // The lease stays (routes `pending`); the host's retry of PUT /v1/lease or the reconcile finishes it.
      this.deps.logger?.warn('routes left pending', { ...describe(lease), error: String(outcome.error) });
      // The adapter's own message ("nothing was changed") is not true here: say what was kept.
      const cause = outcome.error;
      const retryAfter = (cause as { retryAfterSeconds?: number }).retryAfterSeconds ?? 5;
      const why =
        cause instanceof VpcLeaseError && cause.code === 'Throttled' ? 'EC2 is throttling' : 'EC2 failed';
      throw new ServiceUnavailableError(
        `The lease on ${formatCidr(lease.subnet)} is kept, but ${why} and its route is not written yet; ` +
          `retry PUT /v1/lease after ${retryAfter} s (the reconcile also finishes it).`,
        retryAfter,
        { cause },
      );
    }
    return outcome.lease ?? { ...lease, routes: [...outcome.routes] };
  }
}

/**
 * Whether the lease records a route of every family in every table of the snapshot. A lease
 * granted before dual stack was published does not: its renewal writes its IPv6 routes.
 */
function coversTables(
  lease: Lease,
  config: NetworkConfig,
  snapshot: RouteTableSnapshot | undefined,
): boolean {
  if (config.ipv6 && !lease.ipv6Subnet) return false;
  if (!snapshot) return true;
  return coversFamilies(
    lease,
    config,
    snapshot.tables.map((t) => t.routeTableId),
  );
}

function parsePrevious(text: string | undefined): Cidr | undefined {
  if (text === undefined) return undefined;
  try {
    return parseCidr(text);
  } catch (error) {
    throw new ValidationError(`previousSubnet: ${(error as CidrError).message}.`, { cause: error });
  }
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
  return new RouteLimitExceededError({
    used: Math.min(limit, (fullest?.foreignRoutes ?? 0) + usage.used),
    limit,
    ...(fullest ? { routeTableId: fullest.routeTableId } : {}),
  });
}

function tooSoon(instanceId: string, intervalMs: number, waitMs: number): TooManyRequestsError {
  const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
  return new TooManyRequestsError(
    `Instance ${instanceId} got a new lease less than ${intervalMs / 1000} s ago; one new grant per ` +
      `${intervalMs / 1000} s per instance (renewals are not limited). Retry after ${retryAfter} s.`,
    retryAfter,
  );
}

const describe = (lease: Lease) => ({ subnet: formatCidr(lease.subnet), instanceId: lease.instanceId });

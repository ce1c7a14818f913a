/**
 * The lease use-cases: acquire (idempotent, renewing), release, revoke, reclaim.
 * All logic lives here; the Lambda handlers only translate HTTP to these calls.
 */
import { type AllocationStrategy, type Random, STRATEGIES } from './allocator.js';
import { type Cidr, type CidrError, formatCidr, isIp, parseCidr } from './cidr.js';
import { publishedConfig, requirePublished } from './config-service.js';
import {
  ForbiddenError,
  ForeignRouteError,
  RouteLimitExceededError,
  ServiceUnavailableError,
  ThrottledError,
  TooManyRequestsError,
  ValidationError,
} from './errors.js';
import { allRoutesActive, describeLease, isLive, type Lease, routeKey } from './lease.js';
import { isLeasable, type NetworkConfig } from './network-config.js';
import type {
  Clock,
  InstanceInfo,
  InstancePort,
  LeaseRouteWriter,
  LeaseStore,
  Logger,
  NetworkInterface,
  Occupancy,
  RouteTableSnapshot,
  StoredConfig,
} from './ports.js';
import { coversFamilies, routesOf } from './route-family.js';
import { claimSubnet, type SubnetClaimDeps } from './subnet-claim.js';

export interface LeaseServiceOptions {
  store: LeaseStore;
  instances: InstancePort;
  routes: LeaseRouteWriter;
  clock: Clock;
  /** the VPC this control plane manages: hosts elsewhere are refused */
  vpcId: string;
  leaseTtlSeconds: number;
  /** at most one new grant per instance per this many seconds (docs/api.md); default 30, 0 = no limit */
  grantIntervalSeconds?: number;
  /** how old the route-table snapshot may be before a grant re-reads the tables (default 10 min) */
  snapshotMaxAgeSeconds?: number;
  strategy?: AllocationStrategy;
  random?: Random;
  logger?: Logger;
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

export class LeaseService {
  private readonly claimDeps: SubnetClaimDeps;

  constructor(private readonly deps: LeaseServiceOptions) {
    this.claimDeps = {
      store: deps.store,
      strategy: deps.strategy ?? STRATEGIES.random,
      random: deps.random ?? Math.random,
      reclaimOne: (occupancy, config, now) => this.reclaimOne(occupancy, config, now),
    };
  }

  getConfig(): Promise<StoredConfig> {
    return publishedConfig(this.deps.store);
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
    // instance, refused before any EC2 call when too soon (docs/api.md).
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
      const granted = await claimSubnet(this.claimDeps, config, snapshot, {
        instanceId,
        privateIp: request.privateIp,
        networkInterfaceId: nic.networkInterfaceId,
        preferred,
        expiresAt: this.expiry(now),
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
    return lease && (await this.remove(lease, 'lease released')).lease;
  }

  /** Admin revoke: routes first, then the lease. Returns the lease and the config it was cut from. */
  async revoke(subnet: Cidr): Promise<{ lease: Lease; config: NetworkConfig } | undefined> {
    const lease = await this.deps.store.getBySubnet(subnet);
    return lease && this.remove(lease, 'lease revoked');
  }

  /** An expired lease: routes first, then the lease, and only if it is still expired. */
  async reclaim(lease: Lease, config: NetworkConfig, now: Date): Promise<boolean> {
    if (isLive(lease, now)) return false;
    return (await this.deps.routes.reclaim(lease, config, { expiredAt: now })).reclaimed;
  }

  // ------------------------------------------------------------------ internals

  /** Config, route-table snapshot and the caller's lease: one batched read plus one get. */
  private async context(instanceId: string) {
    const { store } = this.deps;
    const context = await store.getLeaseContext(instanceId);
    const { snapshot, instanceSubnet, lastGrantAt } = context;
    const config = requirePublished(context.config);
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

  /** Release and revoke: the lease's routes, then the lease. */
  private async remove(lease: Lease, message: string): Promise<{ lease: Lease; config: NetworkConfig }> {
    const { config } = await this.getConfig();
    await this.deps.routes.removeLeaseRoutes(lease, config);
    await this.deps.store.delete(lease);
    this.deps.logger?.info(message, describeLease(lease));
    return { lease, config };
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
      // Only the routes (table and family) not active yet: a retried PUT after a throttle
      // spends no mutation on routes already written; a lease granted before dual stack was
      // published gets just its IPv6 routes.
      const active = new Set(lease.routes.filter((r) => r.state === 'active').map(routeKey));
      outcome = await this.deps.routes.ensureLeaseRoutes(lease, config, {
        sourceDestCheck: nic.sourceDestCheck,
        routes: routesOf(
          config,
          snapshot.tables.map((t) => t.routeTableId),
          'pending',
        ).filter((ref) => !active.has(routeKey(ref))),
      });
    } catch (error) {
      if (error instanceof RouteLimitExceededError || error instanceof ForeignRouteError) {
        // EC2 counted more routes than our snapshot did, or a foreign route holds the subnet's
        // destination: undo the grant (only this lease's routes go), so the invariants hold.
        this.deps.logger?.warn('route refused; grant undone', {
          ...describeLease(lease),
          reason: error.message,
        });
        await this.deps.routes.removeLeaseRoutes(lease, config);
        await this.deps.store.delete(lease);
      }
      throw error;
    }
    if (outcome.error !== undefined) {
      // The lease stays (routes `pending`); the host's retry of PUT /v1/lease or the reconcile finishes it.
      this.deps.logger?.warn('routes left pending', {
        ...describeLease(lease),
        error: String(outcome.error),
      });
      // The adapter's own message ("nothing was changed") is not true here: say what was kept.
      const cause = outcome.error;
      const retryAfter = cause.retryAfterSeconds;
      const why = cause instanceof ThrottledError ? 'EC2 is throttling' : 'EC2 failed';
      throw new ServiceUnavailableError(
        `The lease on ${formatCidr(lease.subnet)} is kept, but ${why} and its routes are not all written yet; ` +
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

function tooSoon(instanceId: string, intervalMs: number, waitMs: number): TooManyRequestsError {
  const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
  return new TooManyRequestsError(
    `Instance ${instanceId} got a new lease less than ${intervalMs / 1000} s ago; one new grant per ` +
      `${intervalMs / 1000} s per instance (renewals are not limited). Retry after ${retryAfter} s.`,
    retryAfter,
  );
}

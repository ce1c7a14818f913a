/**
 * One lease's routes: write them, remove them, and the tables in scope with the capacity
 * snapshot they give (the LeaseRouteWriter port of ports.ts). Speaks to EC2 and the store
 * only through the ports. The instance events (instance-events.ts) and the reconcile
 * (reconciler.ts) build on it.
 *
 * EC2 budgets (docs/design.md): a new lease costs at most #tables + 1 calls here (+ the
 * caller's DescribeInstances); a removal one Describe plus one delete per table.
 */

import { contains, formatCidr } from './cidr.js';
import { ConflictError, ForeignRouteError, TransientError } from './errors.js';
import {
  describeLease,
  familyOf,
  isLive,
  type Lease,
  type LeaseRoute,
  type RouteFamily,
  type RouteState,
  routeKey,
  sameRoutes,
} from './lease.js';
import type { NetworkConfig } from './network-config.js';
import {
  type CapacityLedger,
  type CapacityUsage,
  type Clock,
  type InstancePort,
  type LeaseRouteWriter,
  type LeaseRouteWriterOptions,
  type LeaseStore,
  type Logger,
  type RouteTable,
  type RouteTablePort,
  type RouteTableSnapshot,
  silentLogger,
} from './ports.js';
import { capacity, routeTableSnapshot } from './route-capacity.js';
import {
  familyConfig,
  familyLease,
  familyTable,
  ipv6SubnetOf,
  routeFamilies,
  routesOf,
} from './route-family.js';
import { isOwnedRoute, parseDestination, pointsTo, sameDestination, targetOf } from './route-ownership.js';

export interface RouteWriterDeps {
  readonly routes: RouteTablePort;
  readonly instances: InstancePort;
  readonly store: LeaseStore;
  readonly clock: Clock;
  /** the VPC whose route tables vpc-lease manages */
  readonly vpcId: string;
  readonly logger?: Logger;
  /** the route capacity's ledger, resized whenever the snapshot is refreshed (foreign routes change) */
  readonly ledger?: CapacityLedger;
}

export type EnsureRoutesOptions = LeaseRouteWriterOptions;

export interface EnsureRoutesResult {
  /** the lease as stored now; undefined when the store no longer holds it for this holder */
  readonly lease: Lease | undefined;
  /** the lease's route states, the tables written included */
  readonly routes: readonly LeaseRoute[];
  /** the first throttling/unavailability that left a route 'pending' */
  readonly error: TransientError | undefined;
}

export interface RemoveRoutesResult {
  /** tables where a route of the lease (of either family) was found and is now gone */
  readonly removed: readonly string[];
  /** routes to the lease's subnets that belong to another holder and were left alone */
  readonly kept: readonly {
    readonly routeTableId: string;
    readonly destination: string;
    readonly target: string;
  }[];
}

export class RouteWriter implements LeaseRouteWriter {
  private readonly routes: RouteTablePort;
  private readonly instances: InstancePort;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly vpcId: string;
  private readonly logger: Logger;
  private readonly ledger: RouteWriterDeps['ledger'];

  constructor(deps: RouteWriterDeps) {
    this.ledger = deps.ledger;
    this.routes = deps.routes;
    this.instances = deps.instances;
    this.store = deps.store;
    this.clock = deps.clock;
    this.vpcId = deps.vpcId;
    this.logger = deps.logger ?? silentLogger;
  }

  /** The tables of Backend.RouteTableID, or every table of the VPC; one paginated Describe. */
  tablesInScope(config: NetworkConfig): Promise<RouteTable[]> {
    return this.routes.describeRouteTables({
      vpcId: this.vpcId,
      ...(config.backend.routeTableIds ? { routeTableIds: config.backend.routeTableIds } : {}),
    });
  }

  /**
   * Counts the foreign routes of every table in scope, stores that for the grant path and
   * sets the route capacity it leaves (`usage`: undefined when a newer RouteLimit was published).
   */
  async refreshSnapshot(
    config: NetworkConfig,
    tables?: readonly RouteTable[],
  ): Promise<{ snapshot: RouteTableSnapshot; tables: readonly RouteTable[]; usage?: CapacityUsage }> {
    const described = tables ?? (await this.tablesInScope(config));
    const snapshot = routeTableSnapshot(config, described, this.clock.now());
    await this.store.putRouteTableSnapshot(snapshot);
    const usage = await this.ledger?.resize(capacity(config, snapshot), config.backend.routeLimit);
    return { snapshot, tables: described, ...(usage ? { usage } : {}) };
  }

  /**
   * Writes the lease's routes: in dual stack two per table, DestinationCidrBlock = its subnet
   * and DestinationIpv6CidrBlock = its IPv6 subnet, both to its ENI. CreateRoute, and when a
   * route to the destination is already there, a look at it decides: ours already, nothing to
   * do; owned (a stale holder's, a blackhole, one left by a crash) -> ReplaceRoute to the
   * lease's ENI, which never leaves the subnet without a route as delete-then-create would;
   * foreign -> ForeignRouteError, never a replace (invariant 4, per family).
   *
   * A lease granted before dual stack was published gets its paired IPv6 subnet recorded with
   * its IPv6 routes' states.
   *
   * Throttling and EC2 outages leave the route 'pending' and are returned, not thrown:
   * the caller decides whether to answer 503. RouteLimitExceededError is thrown (the
   * caller rolls the grant back); other errors are bugs or missing resources and thrown.
   * EC2 calls: one per table and family, plus one when the ENI's source/destination check is on.
   */
  async ensureLeaseRoutes(
    lease: Lease,
    config: NetworkConfig,
    options: EnsureRoutesOptions,
  ): Promise<EnsureRoutesResult> {
    this.assertInsideNetwork(lease, config);
    const ipv6Subnet = ipv6SubnetOf(lease, config);
    const holder: Lease = ipv6Subnet && !lease.ipv6Subnet ? { ...lease, ipv6Subnet } : lease;
    const destinationOf = (family: RouteFamily): string | undefined =>
      family === 4 ? formatCidr(lease.subnet) : ipv6Subnet && formatCidr(ipv6Subnet);
    // Every family of the config in the tables named, or exactly the routes named.
    const wanted = (options.routes ?? routesOf(config, options.routeTableIds ?? [], 'pending')).filter(
      (ref) => destinationOf(familyOf(ref)) !== undefined,
    );
    const states = new Map<string, RouteState>(lease.routes.map((r) => [routeKey(r), r.state]));
    let firstError: TransientError | undefined;

    if (options.sourceDestCheck) {
      try {
        await this.instances.disableSourceDestCheck(lease.networkInterfaceId);
      } catch (error) {
        if (!(error instanceof TransientError)) throw error;
        firstError = error;
      }
    }

    const leavePending = (ref: Pick<LeaseRoute, 'routeTableId' | 'family'>) => {
      if (states.get(routeKey(ref)) !== 'active') states.set(routeKey(ref), 'pending');
    };
    if (firstError) {
      // The ENI would drop the subnet's traffic anyway; spare the throttled account the route calls.
      for (const ref of wanted) leavePending(ref);
    } else {
      for (const ref of wanted) {
        if (firstError) {
          // Throttled or unavailable once: each further call would back off as long again and
          // could outlast the function's timeout. Leave the rest pending for the retry/reconcile.
          leavePending(ref);
          continue;
        }
        const destination = destinationOf(familyOf(ref))!;
        try {
          await this.writeRoute(config, ref.routeTableId, destination, lease.networkInterfaceId);
          states.set(routeKey(ref), 'active');
        } catch (error) {
          if (!(error instanceof TransientError)) throw error;
          states.set(routeKey(ref), 'pending');
          firstError ??= error;
          this.logger.warn('route left pending', {
            ...describeLease(lease),
            routeTableId: ref.routeTableId,
            destination,
            error: String(error),
          });
        }
      }
    }

    const routes = mergeRoutes(lease.routes, states);
    const unchanged = holder === lease && sameRoutes(lease.routes, routes);
    const stored = unchanged ? lease : await this.store.updateRoutes(holder, routes);
    return { lease: stored, routes, error: firstError };
  }

  /**
   * Deletes the lease's route from each table, but only where it still points to this
   * lease's ENI (or instance): a newer lease may hold the same subnet by now, and its route
   * is not this lease's to remove; a foreign route there is nobody's to remove (invariant 4). One Describe (unless `tables` is
   * given) and one DeleteRoute per table that has such a route; before the first, the
   * lease's route states are recorded pending (markRoutesPending).
   * Throws the first failure after trying every table; the caller keeps the lease then.
   */
  async removeLeaseRoutes(
    lease: Lease,
    config: NetworkConfig,
    tables?: readonly RouteTable[],
  ): Promise<RemoveRoutesResult> {
    if (!contains(config.network, lease.subnet)) {
      // Outside Network nothing is ours (invariant 4); a config change cannot strand a live lease there.
      return { removed: [], kept: [] };
    }
    const described = tables ?? (await this.tablesInScope(config));
    const removed = new Set<string>();
    const kept: { routeTableId: string; destination: string; target: string }[] = [];
    let firstError: unknown;

    let marked = false;
    // Per family, by that family's ownership rules: the IPv4 route, then in dual stack the IPv6 one.
    for (const family of routeFamilies(config)) {
      const rules = familyConfig(config, family);
      const view = familyLease(lease, config, family);
      if (!rules || !view) continue;
      const destination = formatCidr(view.subnet);
      for (const table of described) {
        const route = familyTable(table, family).routes.find((r) =>
          sameDestination(r.destination, destination),
        );
        if (!route) continue;
        if (!pointsTo(route, lease) || !isOwnedRoute(rules, route)) {
          kept.push({ routeTableId: table.routeTableId, destination, target: targetOf(route) });
          continue;
        }
        if (!marked) {
          // The lease changed hands since it was read: its subnet's routes are the new holder's.
          if (!(await this.markRoutesPending(lease))) return { removed: [], kept };
          marked = true;
        }
        try {
          await this.routes.deleteRoute(table.routeTableId, destination);
          removed.add(table.routeTableId);
        } catch (error) {
          firstError ??= error;
          this.logger.warn('route not removed', {
            ...describeLease(lease),
            routeTableId: table.routeTableId,
            destination,
            error: String(error),
          });
        }
      }
    }
    if (firstError !== undefined) throw firstError;
    return { removed: [...removed], kept };
  }

  /**
   * Reclaims an expired lease or a dead holder's, routes first: its routes go where they still
   * point to its ENI (from `tables` when given, else one Describe), then its item, only if still
   * this holder's and, with `expiredAt`, still expired then (a lease renewed meanwhile stays).
   * When the store keeps the item because the subnet is held by a live lease again (granted
   * meanwhile, possibly after its route was deleted here), that lease's routes are written back
   * (`restored`). The one reclaim of the grant path and the reconcile.
   */
  async reclaim(
    lease: Lease,
    config: NetworkConfig,
    options: { readonly expiredAt?: Date; readonly tables?: readonly RouteTable[] } = {},
  ): Promise<{ reclaimed: boolean; restored?: EnsureRoutesResult }> {
    await this.removeLeaseRoutes(lease, config, options.tables);
    const deleted = await this.store.delete(
      lease,
      options.expiredAt ? { onlyIfExpiredAt: options.expiredAt } : {},
    );
    if (deleted) {
      this.logger.info('lease reclaimed', {
        ...describeLease(lease),
        expired: options.expiredAt !== undefined,
      });
      return { reclaimed: true };
    }
    const current = await this.store.getBySubnet(lease.subnet);
    if (!current || !isLive(current, this.clock.now())) return { reclaimed: false };
    this.logger.info('reclaim lost to a new grant; restoring its routes', describeLease(current));
    const tableIds = options.tables?.map((t) => t.routeTableId) ?? current.routes.map((r) => r.routeTableId);
    const restored = await this.ensureLeaseRoutes(current, config, {
      sourceDestCheck: false, // the grant handled it
      routeTableIds: tableIds,
    });
    return { reclaimed: false, restored };
  }

  /**
   * CreateRoute; when a route to the destination is already there, one Describe of that table
   * decides: already to this ENI -> done; owned -> ReplaceRoute; foreign -> ForeignRouteError.
   */
  async writeRoute(
    config: NetworkConfig,
    routeTableId: string,
    destination: string,
    networkInterfaceId: string,
  ): Promise<void> {
    const outcome = await this.routes.createRoute(routeTableId, destination, networkInterfaceId);
    if (outcome === 'created') return;
    const [table] = await this.routes.describeRouteTables({
      vpcId: this.vpcId,
      routeTableIds: [routeTableId],
    });
    // An IPv6 destination is judged among the table's IPv6 routes, by the IPv6 rules.
    const family = parseDestination(destination)?.family ?? 4;
    const rules = familyConfig(config, family) ?? config;
    const existing =
      table &&
      parseDestination(destination) &&
      familyTable(table, family).routes.find((r) => sameDestination(r.destination, destination));
    if (!existing) {
      // Gone between the two calls (a concurrent delete): create it again, once.
      if ((await this.routes.createRoute(routeTableId, destination, networkInterfaceId)) === 'created')
        return;
      throw new ConflictError(
        `The route to ${destination} in ${routeTableId} keeps changing; retry shortly.`,
      );
    }
    if (existing.networkInterfaceId === networkInterfaceId && existing.state === 'active') return;
    if (!isOwnedRoute(rules, existing)) {
      throw new ForeignRouteError({ routeTableId, destination, target: targetOf(existing) });
    }
    await this.routes.replaceRoute(routeTableId, destination, networkInterfaceId);
  }

  /**
   * Records the lease's routes as pending before any of them is deleted. Should the lease
   * outlive the removal (its delete fails once the routes are gone), the renewal, which costs
   * no EC2 call and trusts the stored states, must not answer "active": pending makes it
   * write the routes back. One conditional write when some route is recorded active, else one
   * read. False when the lease is no longer this holder's (it changed hands).
   */
  async markRoutesPending(lease: Lease): Promise<boolean> {
    if (!lease.routes.some((r) => r.state === 'active')) {
      const current = await this.store.getBySubnet(lease.subnet);
      return (
        current?.instanceId === lease.instanceId && current.networkInterfaceId === lease.networkInterfaceId
      );
    }
    const updated = await this.store.updateRoutes(
      lease,
      lease.routes.map((r) => ({ ...r, state: 'pending' as const })),
    );
    return updated !== undefined;
  }

  /** The tables among `ids` that still exist: a deleted table took its routes with it. One Describe. */
  describeExisting(ids: readonly string[]): Promise<RouteTable[]> {
    return this.routes.describeRouteTables({ vpcId: this.vpcId, routeTableIds: ids, existingOnly: true });
  }

  private assertInsideNetwork(lease: Lease, config: NetworkConfig): void {
    if (!contains(config.network, lease.subnet)) {
      throw new ConflictError(
        `Subnet ${formatCidr(lease.subnet)} is outside Network ${formatCidr(config.network)}; vpc-lease writes no route there.`,
      );
    }
  }
}

// ---------------------------------------------------------------- helpers

/** The previous route states with `states` (keyed by routeKey) applied; routes new to the lease appended. */
function mergeRoutes(previous: readonly LeaseRoute[], states: ReadonlyMap<string, RouteState>): LeaseRoute[] {
  const merged: LeaseRoute[] = previous.map((r) => ({ ...r, state: states.get(routeKey(r)) ?? r.state }));
  const known = new Set(previous.map(routeKey));
  for (const [key, state] of states) {
    if (known.has(key)) continue;
    const [routeTableId, family] = key.split('/') as [string, string];
    merged.push({ routeTableId, state, ...(family === '6' ? { family: 6 as const } : {}) });
  }
  return merged;
}

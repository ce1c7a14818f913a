/**
 * Route planning: from what the route tables hold and what the leases say, the changes
 * that make them agree. Pure: no AWS, no clock, no environment; reconciler.ts does
 * the I/O and applies the plan.
 *
 * Ownership is route-ownership.ts's one definition (the README's invariants 4 and 5): a plan
 * creates only where no route exists, and replaces or deletes only owned routes. A foreign
 * route, even to a leased subnet, is left as it is; a live lease whose subnet a foreign route
 * takes (isTakenByForeign) is reclaimed instead (invariant 5), its own routes first.
 */
import { type Cidr, contains, formatCidr } from './cidr.js';
import { isLive, type Lease, type LeaseRoute } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import type { InstanceInfo, RouteEntry, RouteTable } from './ports.js';
import {
  foreignClaim,
  isOwnedRoute,
  parseDestination,
  pointsTo,
  sameDestination,
  targetOf,
} from './route-ownership.js';

// ---------------------------------------------------------------- dead holders

/** Lease holders that can no longer receive traffic: their routes go and their leases are reclaimed. */
export interface DeadHolders {
  /** instances that are gone, shutting down or terminated */
  readonly instanceIds: ReadonlySet<string>;
  /** ENIs of those instances, and lease ENIs no longer attached to their (living) instance */
  readonly networkInterfaceIds: ReadonlySet<string>;
}

export const NO_DEAD_HOLDERS: DeadHolders = { instanceIds: new Set(), networkInterfaceIds: new Set() };

const DEAD_STATES: ReadonlySet<InstanceInfo['state']> = new Set(['shutting-down', 'terminated']);

/** Whether an instance, as last described (undefined = not found), can hold a lease. */
export const isGone = (instance: InstanceInfo | undefined): boolean =>
  instance === undefined || DEAD_STATES.has(instance.state);

/**
 * The dead among the leases' holders, from one DescribeInstances of them. A stopped
 * instance is alive: its ENI survives the stop, and so do its lease and route.
 */
export function findDeadHolders(
  leases: readonly Pick<Lease, 'instanceId' | 'networkInterfaceId'>[],
  instances: readonly InstanceInfo[],
): DeadHolders {
  const byId = new Map(instances.map((i) => [i.instanceId, i]));
  const instanceIds = new Set<string>();
  const networkInterfaceIds = new Set<string>();
  for (const lease of leases) {
    const instance = byId.get(lease.instanceId);
    if (isGone(instance)) {
      instanceIds.add(lease.instanceId);
      networkInterfaceIds.add(lease.networkInterfaceId);
      for (const eni of instance?.networkInterfaces ?? []) networkInterfaceIds.add(eni.networkInterfaceId);
    } else if (!instance?.networkInterfaces.some((e) => e.networkInterfaceId === lease.networkInterfaceId)) {
      networkInterfaceIds.add(lease.networkInterfaceId);
    }
  }
  return { instanceIds, networkInterfaceIds };
}

/** Whether the holder is among the dead: its instance is gone or its ENI is no longer attached. */
export const holderIsDead = (
  holder: Pick<Lease, 'instanceId' | 'networkInterfaceId'>,
  dead: DeadHolders,
): boolean =>
  dead.instanceIds.has(holder.instanceId) || dead.networkInterfaceIds.has(holder.networkInterfaceId);

/** Whether the route's target (ENI or instance) belongs to a dead holder. */
export const targetIsDead = (route: RouteEntry, dead: DeadHolders): boolean =>
  (route.networkInterfaceId !== undefined && dead.networkInterfaceIds.has(route.networkInterfaceId)) ||
  (route.instanceId !== undefined && dead.instanceIds.has(route.instanceId));

// ---------------------------------------------------------------- the plan

export interface PlanInput {
  readonly config: NetworkConfig;
  /** the route tables in scope, as just described */
  readonly tables: readonly RouteTable[];
  /** every lease the store holds, live and expired */
  readonly leases: readonly Lease[];
  readonly dead: DeadHolders;
  readonly now: Date;
  /**
   * Whether a foreign route takes the lease's subnet; default isTakenByForeign in these tables.
   * In dual stack the reconcile decides over both families, so a lease that loses either goes.
   */
  readonly takenByForeign?: (lease: Lease) => boolean;
}

interface ChangeBase {
  readonly routeTableId: string;
  /** the route's destination, as EC2 writes it */
  readonly destination: string;
  /** the lease holder the route is (or was) for, when known */
  readonly instanceId?: string;
  /** for a person: why this change */
  readonly reason: string;
}

export type RouteChange =
  | (ChangeBase & { readonly action: 'create'; readonly networkInterfaceId: string })
  | (ChangeBase & {
      readonly action: 'replace';
      readonly networkInterfaceId: string;
      /** the target the route had */
      readonly previousTarget: string;
    })
  | (ChangeBase & { readonly action: 'delete'; readonly previousTarget: string });

export interface Reclaim {
  readonly lease: Lease;
  /** expired; its holder is dead; or a foreign route takes its subnet (isTakenByForeign) */
  readonly reason: 'expired' | 'holder-gone' | 'foreign-route';
}

/**
 * Whether a foreign route of these tables takes the subnet: its very destination, or a more
 * specific one inside it. The lease's route can then never carry all of the subnet's traffic
 * in that table (CreateRoute finds the destination taken, or the longer prefix wins), so the
 * lease goes (invariant 5): the reconcile reclaims it and its holder is given another subnet
 * at its next renewal. How it can happen: a foreign route written while a grant was under
 * way, whose CreateRoute then failed before it could find the destination taken. A wider
 * foreign route takes nothing: the lease's route is the more specific one.
 */
export function isTakenByForeign(
  config: NetworkConfig,
  tables: readonly Pick<RouteTable, 'routes'>[],
  subnet: Cidr,
): boolean {
  return takenByForeignIn(config, tables)(subnet);
}

/** isTakenByForeign for many subnets: the tables' foreign claims are read once, not per subnet. */
export function takenByForeignIn(
  config: NetworkConfig,
  tables: readonly Pick<RouteTable, 'routes'>[],
): (subnet: Cidr) => boolean {
  const claims = tables.flatMap((table) =>
    table.routes.flatMap((route) => foreignClaim(config, route) ?? []),
  );
  return (subnet) => claims.some((claim) => contains(subnet, claim));
}

export interface RoutePlan {
  /** one EC2 mutation each; deletes of a reclaimed lease's routes come before its reclaim */
  readonly changes: readonly RouteChange[];
  /** leases to delete once every delete of their subnet's routes succeeded */
  readonly reclaims: readonly Reclaim[];
  /** live leases whose holders are alive: each must have one route per table, to its ENI */
  readonly liveLeases: readonly Lease[];
}

/**
 * The changes that leave, in every table, exactly one route per live lease (to its
 * ENI), no other ENI/instance route inside `Network`, and every foreign route as it was.
 */
export function planRoutes(input: PlanInput): RoutePlan {
  const { config, tables, leases, dead, now } = input;

  // Live leases of living holders get routes; expired leases and those of dead holders are
  // reclaimed. A live lease outside Network (possible only after a config change) gets
  // neither: no route may be written outside Network, and the lease is not ours to end.
  const liveBySubnet = new Map<string, Lease>();
  const candidates: Reclaim[] = [];
  const taken = input.takenByForeign ? undefined : takenByForeignIn(config, tables);
  const takenByForeign = input.takenByForeign ?? ((lease: Lease) => taken!(lease.subnet));
  for (const lease of leases) {
    const key = formatCidr(lease.subnet);
    const expired = !isLive(lease, now);
    if (!expired && !holderIsDead(lease, dead)) {
      if (!contains(config.network, lease.subnet)) continue;
      if (takenByForeign(lease)) candidates.push({ lease, reason: 'foreign-route' });
      else if (!liveBySubnet.has(key)) liveBySubnet.set(key, lease);
      continue;
    }
    candidates.push({ lease, reason: expired ? 'expired' : 'holder-gone' });
  }
  // The store keeps one lease per subnet; should two ever come in, never reclaim the live one's subnet.
  const reclaims = candidates.filter((r) => !liveBySubnet.has(formatCidr(r.lease.subnet)));
  const reclaimBySubnet = new Map(reclaims.map((r) => [formatCidr(r.lease.subnet), r]));

  const changes: RouteChange[] = [];
  for (const table of tables) {
    const { routeTableId } = table;
    const present = new Set<string>();
    for (const route of table.routes) {
      const cidr = parseDestination(route.destination);
      if (!cidr || !contains(config.network, cidr)) continue; // outside Network: foreign
      const key = formatCidr(cidr);
      present.add(key);
      // Never create over, replace or delete a route vpc-lease does not own (invariant 4).
      if (!isOwnedRoute(config, route)) continue;

      const lease = liveBySubnet.get(key);
      if (lease) {
        if (pointsTo(route, lease) && route.state === 'active') continue;
        changes.push({
          action: 'replace',
          routeTableId,
          destination: route.destination,
          networkInterfaceId: lease.networkInterfaceId,
          instanceId: lease.instanceId,
          previousTarget: targetOf(route),
          reason:
            route.state === 'blackhole'
              ? `blackhole route (target ${targetOf(route)} is gone) to the subnet leased to ${lease.instanceId}`
              : `route points to ${targetOf(route)}, the subnet is leased to ${lease.instanceId} (${lease.networkInterfaceId})`,
        });
        continue;
      }

      // An owned route that no live lease holds: what a reclaimed, expired or TTL-deleted lease left.
      const gone = reclaimBySubnet.get(key);
      const holder = gone && pointsTo(route, gone.lease) ? gone.lease : undefined;
      changes.push({
        action: 'delete',
        routeTableId,
        destination: route.destination,
        previousTarget: targetOf(route),
        ...(holder || route.instanceId ? { instanceId: holder?.instanceId ?? route.instanceId } : {}),
        reason: deleteReason(route, gone, holder, dead),
      });
    }

    for (const [key, lease] of liveBySubnet) {
      if (present.has(key)) continue;
      changes.push({
        action: 'create',
        routeTableId,
        destination: key,
        networkInterfaceId: lease.networkInterfaceId,
        instanceId: lease.instanceId,
        reason: `no route to the subnet leased to ${lease.instanceId}`,
      });
    }
  }

  return { changes, reclaims, liveLeases: [...liveBySubnet.values()] };
}

function deleteReason(
  route: RouteEntry,
  gone: Reclaim | undefined,
  holder: Lease | undefined,
  dead: DeadHolders,
): string {
  if (holder && gone?.reason === 'expired') {
    return `lease of ${holder.instanceId} expired at ${holder.expiresAt.toISOString()}`;
  }
  if (holder && gone?.reason === 'foreign-route')
    return `a foreign route takes ${formatCidr(holder.subnet)}: the lease of ${holder.instanceId} goes`;
  if (holder) return `lease holder ${holder.instanceId} is terminated or gone`;
  if (route.state === 'blackhole')
    return `blackhole route (target ${targetOf(route)} is gone) with no live lease`;
  if (targetIsDead(route, dead)) return `target ${targetOf(route)} belongs to a terminated instance`;
  return `no live lease on this subnet (route to ${targetOf(route)})`;
}

/**
 * The tables as they are once `changes` are applied (all of them, or those `applied`
 * says succeeded). Used to predict a reconcile's outcome without a second Describe.
 */
export function applyRouteChanges(
  tables: readonly RouteTable[],
  changes: readonly RouteChange[],
  applied: (change: RouteChange) => boolean = () => true,
): RouteTable[] {
  return tables.map((table) => {
    let routes = [...table.routes];
    for (const change of changes) {
      if (change.routeTableId !== table.routeTableId || !applied(change)) continue;
      const same = (r: RouteEntry) => sameDestination(r.destination, change.destination);
      if (change.action === 'delete') {
        routes = routes.filter((r) => !same(r));
      } else {
        const written: RouteEntry = {
          destination: change.destination,
          networkInterfaceId: change.networkInterfaceId,
          ...(change.instanceId ? { instanceId: change.instanceId } : {}),
          state: 'active',
          origin: 'CreateRoute',
        };
        routes = [...routes.filter((r) => !same(r)), written];
      }
    }
    return { ...table, routes };
  });
}

/**
 * The lease's route states as the tables show them: 'active' where a route to its
 * subnet points to its ENI, 'pending' elsewhere. One entry per table, in table order.
 */
export function leaseRouteStates(lease: Lease, tables: readonly RouteTable[]): LeaseRoute[] {
  const subnet = formatCidr(lease.subnet);
  return tables.map((table) => {
    const route = table.routes.find((r) => sameDestination(r.destination, subnet));
    const active = route !== undefined && route.state === 'active' && pointsTo(route, lease);
    return { routeTableId: table.routeTableId, state: active ? 'active' : 'pending' };
  });
}

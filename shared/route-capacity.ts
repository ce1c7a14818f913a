/**
 * Route capacity (the README's invariant 3): how many routes of each table count against the
 * quota, how many of them are someone else's, and so how many leases the tables admit.
 * Pure, like the planner beside it; the ledger that enforces the figure atomically is the
 * CapacityLedger port (shared/ports.ts).
 */
import { isLive, type Lease } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import type { RouteEntry, RouteTable, RouteTableSnapshot } from './ports.js';
import { foreignClaims, isOwnedRoute } from './route-ownership.js';

/**
 * Routes that count against the "Routes per route table" quota: propagated routes have
 * a quota of their own (VPC quotas: "Propagated routes per route table"). The local route
 * is counted, which errs on the safe side.
 */
const countsTowardQuota = (route: RouteEntry): boolean => route.origin !== 'EnableVgwRoutePropagation';

export interface RouteUsage {
  readonly routeTableId: string;
  /** Backend.RouteLimit: the routes-per-table quota */
  readonly limit: number;
  /** routes counting against the quota */
  readonly used: number;
  /** of those, vpc-lease's (route-ownership.ts: one leasable subnet, to an ENI/instance or gone) */
  readonly owned: number;
  /** of those, everyone else's */
  readonly foreign: number;
  /** routes EC2 marks blackhole (target gone) */
  readonly blackholes: number;
  /** further leases this table admits: limit - foreign - live leases (never below 0) */
  readonly free: number;
}

/** Routes in the table that are not vpc-lease's and count against its quota (invariant 3). */
export const foreignRouteCount = (config: NetworkConfig, table: RouteTable): number =>
  table.routes.filter((r) => countsTowardQuota(r) && !isOwnedRoute(config, r)).length;

/**
 * One table's usage. `leases` are the live leases (pass `now` to have expired ones
 * filtered out here): each needs a route in every table in scope.
 */
export function routeUsage(
  config: NetworkConfig,
  table: RouteTable,
  leases: readonly Pick<Lease, 'expiresAt'>[],
  now?: Date,
): RouteUsage {
  const counted = table.routes.filter(countsTowardQuota);
  const owned = counted.filter((r) => isOwnedRoute(config, r)).length;
  const foreign = counted.length - owned;
  const live = now ? leases.filter((l) => isLive(l, now)).length : leases.length;
  const limit = config.backend.routeLimit;
  return {
    routeTableId: table.routeTableId,
    limit,
    used: counted.length,
    owned,
    foreign,
    blackholes: table.routes.filter((r) => r.state === 'blackhole').length,
    free: Math.max(0, limit - foreign - live),
  };
}

/**
 * The snapshot the grant path reads: foreign routes per table in scope, and the ranges inside
 * Network that foreign routes claim (allocation skips the subnets they cover or overlap).
 */
export function routeTableSnapshot(
  config: NetworkConfig,
  tables: readonly RouteTable[],
  refreshedAt: Date,
): RouteTableSnapshot {
  return {
    tables: tables.map((t) => ({
      routeTableId: t.routeTableId,
      foreignRoutes: foreignRouteCount(config, t),
    })),
    foreignClaims: foreignClaims(config, tables),
    refreshedAt,
  };
}

/**
 * How many live leases the route tables admit (invariant 3): every lease has a route in
 * every table, so the fullest table decides. With no table in scope, RouteLimit.
 */
export function capacity(config: NetworkConfig, snapshot: RouteTableSnapshot): number {
  const limit = config.backend.routeLimit;
  if (snapshot.tables.length === 0) return limit;
  return Math.max(0, Math.min(...snapshot.tables.map((t) => limit - t.foreignRoutes)));
}

/** The table with the most foreign routes: the one that runs out of room first. */
export function fullestTable(snapshot: RouteTableSnapshot): RouteTableSnapshot['tables'][number] | undefined {
  let fullest: RouteTableSnapshot['tables'][number] | undefined;
  for (const table of snapshot.tables)
    if (!fullest || table.foreignRoutes > fullest.foreignRoutes) fullest = table;
  return fullest;
}

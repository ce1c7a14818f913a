/**
 * Route capacity (the README's invariant 3): how many routes of each table count against the
 * quota, how many of them are someone else's, and so how many leases the tables admit.
 * Pure, like the planner beside it; the ledger that enforces the figure atomically is the
 * CapacityLedger port (shared/ports.ts).
 */
import { isLive, type Lease } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import type { RouteEntry, RouteTable, RouteTableSnapshot } from './ports.js';
import { familyConfig, familyTable } from './route-family.js';
import { foreignClaims, isOwnedRoute } from './route-ownership.js';

/**
 * Routes that count against the "Routes per route table" quota: propagated routes have
 * a quota of their own (VPC quotas: "Propagated routes per route table"). The local route
 * is counted, which errs on the safe side.
 */
const countsTowardQuota = (route: RouteEntry): boolean => route.origin !== 'EnableVgwRoutePropagation';

/** One family's routes of a table against the quota. */
export interface FamilyRouteUsage {
  /** Backend.RouteLimit: the routes-per-table quota (AWS applies it to each family on its own) */
  readonly limit: number;
  /** routes counting against the quota */
  readonly used: number;
  /** of those, vpc-lease's (route-ownership.ts: one leasable subnet, to an ENI/instance or gone) */
  readonly owned: number;
  /** of those, everyone else's */
  readonly foreign: number;
  /** routes EC2 marks blackhole (target gone) */
  readonly blackholes: number;
  /** further leases this family of the table admits: limit - foreign - live leases (never below 0) */
  readonly free: number;
}

/**
 * A table's usage: its IPv4 routes at the top level (as before dual stack), and in dual stack
 * its IPv6 routes under `ipv6`, counted apart as AWS counts them.
 */
export interface RouteUsage extends FamilyRouteUsage {
  readonly routeTableId: string;
  /** dual stack: the table's IPv6 routes (DestinationIpv6CidrBlock), counted on their own */
  readonly ipv6?: FamilyRouteUsage;
}

/** IPv4 routes in the table that are not vpc-lease's and count against its quota (invariant 3). */
export const foreignRouteCount = (config: NetworkConfig, table: RouteTable): number =>
  table.routes.filter((r) => countsTowardQuota(r) && !isOwnedRoute(config, r)).length;

/** Dual stack: IPv6 routes in the table that are not vpc-lease's (undefined when the config is IPv4 only). */
export function foreignIpv6RouteCount(config: NetworkConfig, table: RouteTable): number | undefined {
  const v6 = familyConfig(config, 6);
  return v6 ? foreignRouteCount(v6, familyTable(table, 6)) : undefined;
}

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
  const live = now ? leases.filter((l) => isLive(l, now)).length : leases.length;
  const v6 = familyConfig(config, 6);
  // Every live lease needs a route of each family: IPv4-only leases of a config just made dual
  // stack get theirs at their next renewal or reconcile, so they count in both families.
  return {
    routeTableId: table.routeTableId,
    ...familyUsage(config, table.routes, live),
    ...(v6 ? { ipv6: familyUsage(v6, familyTable(table, 6).routes, live) } : {}),
  };
}

function familyUsage(config: NetworkConfig, routes: readonly RouteEntry[], live: number): FamilyRouteUsage {
  const counted = routes.filter(countsTowardQuota);
  const owned = counted.filter((r) => isOwnedRoute(config, r)).length;
  const foreign = counted.length - owned;
  const limit = config.backend.routeLimit;
  return {
    limit,
    used: counted.length,
    owned,
    foreign,
    blackholes: routes.filter((r) => r.state === 'blackhole').length,
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
  const v6 = familyConfig(config, 6);
  const claims = foreignClaims(config, tables);
  if (v6)
    claims.push(
      ...foreignClaims(
        v6,
        tables.map((t) => familyTable(t, 6)),
      ),
    );
  return {
    tables: tables.map((t) => {
      const ipv6 = foreignIpv6RouteCount(config, t);
      return {
        routeTableId: t.routeTableId,
        foreignRoutes: foreignRouteCount(config, t),
        ...(ipv6 !== undefined ? { foreignIpv6Routes: ipv6 } : {}),
      };
    }),
    foreignClaims: claims,
    refreshedAt,
  };
}

/** The foreign routes of the table's fuller family: the family that runs out of room first. */
const fullerFamily = (table: RouteTableSnapshot['tables'][number]): number =>
  Math.max(table.foreignRoutes, table.foreignIpv6Routes ?? 0);

/**
 * How many live leases the route tables admit (invariant 3): every lease has a route in every
 * table, in dual stack one of each family, and AWS counts a table's IPv4 and IPv6 routes each
 * against RouteLimit; so the fullest table and family decides (a lease is one place of the
 * ledger and stands for one route per table and family). With no table in scope, RouteLimit.
 */
export function capacity(config: NetworkConfig, snapshot: RouteTableSnapshot): number {
  const limit = config.backend.routeLimit;
  if (snapshot.tables.length === 0) return limit;
  return Math.max(0, Math.min(...snapshot.tables.map((t) => limit - fullerFamily(t))));
}

/** The table (and family) with the most foreign routes: the one that runs out of room first. */
export function fullestTable(
  snapshot: RouteTableSnapshot,
): (RouteTableSnapshot['tables'][number] & { family: 4 | 6 }) | undefined {
  let fullest: RouteTableSnapshot['tables'][number] | undefined;
  for (const table of snapshot.tables)
    if (!fullest || fullerFamily(table) > fullerFamily(fullest)) fullest = table;
  if (!fullest) return undefined;
  return { ...fullest, family: (fullest.foreignIpv6Routes ?? 0) > fullest.foreignRoutes ? 6 : 4 };
}

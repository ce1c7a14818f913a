/**
 * The reconcile: repairs drift between the route tables and the leases, reclaims expired
 * leases and leases of dead holders, and brings the lease items' route states and the
 * capacity snapshot up to date. route-planner.ts decides; this class does the I/O, writing
 * routes through route-writer.ts.
 *
 * EC2 budget (docs/design.md): a constant number of Describe pages plus one mutation per
 * real difference.
 */
import { type Cidr, formatCidr } from './cidr.js';
import { describeLease, isLive, type Lease, type RouteFamily, sameRoutes } from './lease.js';
import { isLeasableIpv6, type NetworkConfig, pairedIpv4Subnet } from './network-config.js';
import {
  type Clock,
  type InstanceInfo,
  type InstancePort,
  type LeaseStore,
  type Logger,
  type RouteTable,
  type RouteTablePort,
  silentLogger,
} from './ports.js';
import { type RouteUsage, routeUsage } from './route-capacity.js';
import {
  familyConfig,
  familyLease,
  familyTable,
  ipv6SubnetOf,
  routeFamilies,
  tagFamily,
} from './route-family.js';
import { parseDestination, sameDestination } from './route-ownership.js';
import {
  applyRouteChanges,
  type DeadHolders,
  findDeadHolders,
  holderIsDead,
  leaseRouteStates,
  planRoutes,
  type RouteChange,
  type RoutePlan,
  takenByForeignIn,
} from './route-planner.js';
import type { RouteWriter } from './route-writer.js';

/** One thing a reconcile changed. */
export type ReconcileChange =
  | {
      readonly action: 'route-created' | 'route-replaced' | 'route-deleted';
      readonly routeTableId: string;
      /** the route's destination */
      readonly subnet: string;
      /** the lease holder the route was written for, or the one whose route went */
      readonly instanceId?: string;
      readonly reason: string;
    }
  | {
      readonly action: 'lease-reclaimed';
      readonly subnet: string;
      readonly instanceId: string;
      readonly reason: string;
    };

/** What a reconcile could not do; the next sweep tries again. */
export interface ReconcileProblem {
  readonly subnet?: string;
  readonly routeTableId?: string;
  readonly message: string;
}

/** A reconcile's outcome (shared/http/mappers.ts turns it into the contract's JSON). */
export interface ReconcileReport {
  readonly startedAt: Date;
  /** in the order they were made: route changes first, then reclaimed leases */
  readonly changes: readonly ReconcileChange[];
  readonly errors: readonly ReconcileProblem[];
  /** per table in scope, after the changes */
  readonly usage: readonly RouteUsage[];
}

/** The report as a sweep fills it in. */
interface Sweep {
  readonly changes: ReconcileChange[];
  readonly errors: ReconcileProblem[];
}

export interface ReconcilerDeps {
  readonly writer: RouteWriter;
  readonly routes: RouteTablePort;
  readonly instances: InstancePort;
  readonly store: LeaseStore;
  readonly clock: Clock;
  readonly logger?: Logger;
}

export class Reconciler {
  private readonly writer: RouteWriter;
  private readonly routes: RouteTablePort;
  private readonly instances: InstancePort;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(deps: ReconcilerDeps) {
    this.writer = deps.writer;
    this.routes = deps.routes;
    this.instances = deps.instances;
    this.store = deps.store;
    this.clock = deps.clock;
    this.logger = deps.logger ?? silentLogger;
  }

  /**
   * Repairs drift between the route tables and the leases: one DescribeRouteTables
   * (paginated), one store.list(), one DescribeInstances (paginated) of the lease
   * holders, then one EC2 mutation per difference the planner finds. Expired leases
   * and leases of dead holders are reclaimed: their routes first, then the lease
   * (conditionally, so a lease renewed or re-granted meanwhile survives). A failure on
   * one route is recorded in `errors` and the sweep goes on. Finally the lease items'
   * route states and the capacity snapshot are brought up to date from the tables
   * already described.
   */
  async reconcile(config: NetworkConfig): Promise<ReconcileReport> {
    const now = this.clock.now();
    const report: Sweep = { changes: [], errors: [] };

    const tables = await this.writer.tablesInScope(config);
    const leases = await this.store.list();
    const holderIds = [...new Set(leases.map((l) => l.instanceId))];
    const instances = holderIds.length > 0 ? await this.instances.describeInstances(holderIds) : [];
    const dead = findDeadHolders(leases, instances);
    // A live lease whose subnet a foreign route takes, in either family, goes (invariant 5).
    const taken = takenByForeign(config, tables, leases);
    // One plan per family (route-family.ts): the IPv4 routes, and in dual stack the IPv6 routes,
    // each by that family's ownership rules; the IPv4 plan decides reclaims and live leases.
    const families = planFamilies(config, tables, leases, dead, now, taken);
    const plan = families[0]!.plan;
    const changes = families.flatMap((f) => f.plan.changes);
    const byKey = new Map(leases.map((l) => [formatCidr(l.subnet), l]));
    const original = (view: Lease) => byKey.get(formatCidr(view.subnet)) ?? view;

    const notDone = new Set<RouteChange>();
    const currentLease = memoize((subnet: Cidr) => this.store.getBySubnet(subnet));
    for (const change of changes) {
      // The lease item is keyed by the IPv4 subnet: an IPv6 route's is its IPv4 partner.
      const subnet = ipv4SubnetOf(config, change.destination);
      try {
        if (change.action === 'delete') {
          // A grant may have given the subnet to a new holder since store.list(): then its
          // route is its own, and the grant writes it.
          const current = subnet ? await currentLease(subnet) : undefined;
          const goes = (lease: Lease) =>
            holderIsDead(lease, dead) ||
            (taken.has(formatCidr(lease.subnet)) && lease.instanceId === change.instanceId);
          if (current && isLive(current, now) && !goes(current)) {
            notDone.add(change);
            continue;
          }
          const outcome = await this.routes.deleteRoute(change.routeTableId, change.destination);
          if (outcome === 'absent') continue;
        } else if (change.action === 'create') {
          await this.writer.writeRoute(
            config,
            change.routeTableId,
            change.destination,
            change.networkInterfaceId,
          );
        } else {
          await this.routes.replaceRoute(change.routeTableId, change.destination, change.networkInterfaceId);
        }
        report.changes.push(routeChange(change));
      } catch (error) {
        notDone.add(change);
        report.errors.push({
          subnet: change.destination,
          routeTableId: change.routeTableId,
          message: `${change.action} failed: ${messageOf(error)}`,
        });
      }
    }

    // The tables as the applied changes left them, both families: the reclaims find their
    // routes gone already, and the route states and the snapshot are read from them.
    const afterByFamily = families.map((f) => ({
      family: f.family,
      tables: applyRouteChanges(
        tables.map((t) => familyTable(t, f.family)),
        f.plan.changes,
        (c) => !notDone.has(c),
      ),
    }));
    const after: RouteTable[] = tables.map((table, i) => ({
      ...table,
      routes: afterByFamily[0]!.tables[i]!.routes,
      ...(afterByFamily[1] ? { ipv6Routes: afterByFamily[1].tables[i]!.routes } : {}),
    }));
    for (const { lease: view, reason } of plan.reclaims) {
      const lease = original(view);
      const key = formatCidr(lease.subnet);
      const ipv6 = ipv6SubnetOf(lease, config);
      const mine = (c: RouteChange) =>
        sameDestination(c.destination, key) ||
        (ipv6 !== undefined && sameDestination(c.destination, formatCidr(ipv6)));
      const blocked = changes.some((c) => notDone.has(c) && mine(c));
      if (blocked) continue; // routes first (of both families): the lease waits for the next sweep
      try {
        const { reclaimed, restored } = await this.writer.reclaim(lease, config, {
          ...(reason === 'expired' ? { expiredAt: now } : {}),
          tables: after,
        });
        if (reclaimed) {
          report.changes.push({
            action: 'lease-reclaimed',
            subnet: key,
            instanceId: lease.instanceId,
            reason: {
              expired: `expired at ${lease.expiresAt.toISOString()}`,
              'holder-gone': `holder ${lease.instanceId} is terminated or gone`,
              'foreign-route': `a foreign route takes ${key}; ${lease.instanceId} gets another subnet at its next renewal`,
            }[reason],
          });
        } else if (restored?.error) {
          report.errors.push({ subnet: key, message: messageOf(restored.error) });
        }
      } catch (error) {
        report.errors.push({ subnet: key, message: `reclaim failed: ${messageOf(error)}` });
      }
    }

    const liveLeases = plan.liveLeases.map(original);
    await this.disableSourceDestChecks(liveLeases, instances, report);

    for (const lease of liveLeases) {
      const routes = afterByFamily.flatMap(({ family, tables: familyTables }) => {
        const view = familyLease(lease, config, family);
        return view ? tagFamily(leaseRouteStates(view, familyTables), family) : [];
      });
      // A lease granted before dual stack was published records its paired IPv6 subnet now.
      const ipv6Subnet = ipv6SubnetOf(lease, config);
      const holder = ipv6Subnet && !lease.ipv6Subnet ? { ...lease, ipv6Subnet } : lease;
      if (holder === lease && sameRoutes(lease.routes, routes)) continue;
      try {
        await this.store.updateRoutes(holder, routes);
      } catch (error) {
        report.errors.push({
          subnet: formatCidr(lease.subnet),
          message: `route states not saved: ${messageOf(error)}`,
        });
      }
    }
    try {
      const { usage } = await this.writer.refreshSnapshot(config, after);
      if (usage && usage.used > usage.capacity) {
        report.errors.push({
          message: `${usage.used} leases hold a route but the tables admit ${usage.capacity} (RouteLimit minus foreign routes); new leases are refused until some go: revoke some or raise RouteLimit`,
        });
      }
    } catch (error) {
      report.errors.push({ message: `route table snapshot not saved: ${messageOf(error)}` });
    }

    // Usage after the changes, from the tables already described (no second Describe).
    const usage = after.map((table) => routeUsage(config, table, liveLeases, this.clock.now()));

    this.logger.info('reconcile done', { changes: report.changes.length, errors: report.errors.length });
    return { startedAt: now, changes: report.changes, errors: report.errors, usage };
  }

  /** Source/destination check off on every live lease's ENI (it may have been turned back on by hand). */
  private async disableSourceDestChecks(
    leases: readonly Lease[],
    instances: readonly InstanceInfo[],
    report: Sweep,
  ): Promise<void> {
    const byId = new Map(instances.map((i) => [i.instanceId, i]));
    for (const lease of leases) {
      const eni = byId
        .get(lease.instanceId)
        ?.networkInterfaces.find((e) => e.networkInterfaceId === lease.networkInterfaceId);
      if (!eni?.sourceDestCheck) continue;
      try {
        await this.instances.disableSourceDestCheck(eni.networkInterfaceId);
        this.logger.info('source/destination check disabled', describeLease(lease));
      } catch (error) {
        report.errors.push({
          subnet: formatCidr(lease.subnet),
          message: `source/destination check of ${eni.networkInterfaceId} not disabled: ${messageOf(error)}`,
        });
      }
    }
  }
}

// ---------------------------------------------------------------- helpers

/** The planner's plan for each family of the config, on that family's views (route-family.ts). */
function planFamilies(
  config: NetworkConfig,
  tables: readonly RouteTable[],
  leases: readonly Lease[],
  dead: DeadHolders,
  now: Date,
  taken: ReadonlySet<string>,
): { family: RouteFamily; plan: RoutePlan }[] {
  return routeFamilies(config).map((family) => ({
    family,
    plan: planRoutes({
      config: familyConfig(config, family)!,
      tables: tables.map((t) => familyTable(t, family)),
      leases: leases.flatMap((l) => familyLease(l, config, family) ?? []),
      dead,
      now,
      // the same leases go in both plans: their routes of both families go with them
      takenByForeign: (view) => {
        const subnet = ipv4SubnetOf(config, formatCidr(view.subnet));
        return subnet !== undefined && taken.has(formatCidr(subnet));
      },
    }),
  }));
}

/** The IPv4 subnets (formatted) of the leases whose subnet of either family a foreign route takes. */
function takenByForeign(
  config: NetworkConfig,
  tables: readonly RouteTable[],
  leases: readonly Lease[],
): Set<string> {
  const taken = new Set<string>();
  for (const family of routeFamilies(config)) {
    const rules = familyConfig(config, family)!;
    const takenInFamily = takenByForeignIn(
      rules,
      tables.map((t) => familyTable(t, family)),
    );
    for (const lease of leases) {
      const view = familyLease(lease, config, family);
      if (view && takenInFamily(view.subnet)) taken.add(formatCidr(lease.subnet));
    }
  }
  return taken;
}

/** The IPv4 subnet a route's destination belongs to: itself, or an IPv6 subnet's IPv4 partner. */
function ipv4SubnetOf(config: NetworkConfig, destination: string): Cidr | undefined {
  const cidr = parseDestination(destination);
  if (!cidr || cidr.family === 4) return cidr;
  return isLeasableIpv6(config, cidr) ? pairedIpv4Subnet(config, cidr) : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const ACTIONS = {
  create: 'route-created',
  replace: 'route-replaced',
  delete: 'route-deleted',
} as const satisfies Record<RouteChange['action'], ReconcileChange['action']>;

function routeChange(change: RouteChange): ReconcileChange {
  return {
    action: ACTIONS[change.action],
    routeTableId: change.routeTableId,
    subnet: change.destination,
    ...(change.instanceId ? { instanceId: change.instanceId } : {}),
    reason: change.reason,
  };
}

/** Per-sweep cache of store reads by subnet (several tables share one subnet). */
function memoize(
  read: (subnet: Cidr) => Promise<Lease | undefined>,
): (subnet: Cidr) => Promise<Lease | undefined> {
  const cache = new Map<string, Promise<Lease | undefined>>();
  return (subnet) => {
    const key = formatCidr(subnet);
    let hit = cache.get(key);
    if (!hit) {
      hit = read(subnet);
      cache.set(key, hit);
    }
    return hit;
  };
}

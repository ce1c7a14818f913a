/**
 * The route use cases: write a lease's routes, remove them, react to instance state
 * changes and reconcile the route tables with the leases. Speaks to EC2 and the store
 * only through the ports; route-planner.ts decides, this class does the I/O.
 *
 * EC2 budgets (DESIGN.md "Routes"): a new lease costs at most #tables + 1 calls here
 * (+ the caller's DescribeInstances), a termination #tables + 1, a reconcile a constant
 * number of Describe pages plus one mutation per real difference.
 */

import { isTransient, toDomainError } from './adapters/aws-errors.js';
import { type Cidr, contains, formatCidr } from './cidr.js';
import {
  ConfigMissingError,
  ConflictError,
  ForeignRouteError,
  RouteLimitExceededError,
  type VpcLeaseError,
} from './errors.js';
import type { ReconcileChangeJson, ReconcileReportJson } from './http/contract.js';
import { describeLease, isLive, type Lease, type LeaseRoute, type RouteState } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import type {
  CapacityLedger,
  CapacityUsage,
  Clock,
  InstanceInfo,
  InstancePort,
  LeaseStore,
  RouteTable,
  RouteTablePort,
  RouteTableSnapshot,
} from './ports.js';
import { capacity, routeTableSnapshot, routeUsage } from './route-capacity.js';
import { isOwnedRoute, parseDestination, pointsTo, targetOf } from './route-ownership.js';
import {
  applyRouteChanges,
  type DeadHolders,
  findDeadHolders,
  isGone,
  leaseRouteStates,
  planRoutes,
  type RouteChange,
} from './route-planner.js';

export interface RouteServiceLogger {
  info(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
  error(message: string, extra?: object): void;
}

export interface RouteServiceDeps {
  readonly routes: RouteTablePort;
  readonly instances: InstancePort;
  readonly store: LeaseStore;
  readonly clock: Clock;
  /** the VPC whose route tables vpc-lease manages */
  readonly vpcId: string;
  readonly logger?: RouteServiceLogger;
  /** the route capacity's ledger, resized whenever the snapshot is refreshed (foreign routes change) */
  readonly ledger?: CapacityLedger;
}

export interface EnsureRoutesOptions {
  /** the lease ENI's source/destination check as the caller just described it; disabled when true */
  readonly sourceDestCheck: boolean;
  /** the tables to write the route in */
  readonly routeTableIds: readonly string[];
}

export interface EnsureRoutesResult {
  /** the lease as stored now; undefined when the store no longer holds it for this holder */
  readonly lease: Lease | undefined;
  /** the lease's route states, the tables written included */
  readonly routes: readonly LeaseRoute[];
  /** the first throttling/unavailability that left a route 'pending' */
  readonly error: VpcLeaseError | undefined;
}

export interface RemoveRoutesResult {
  /** tables where the lease's route was found and is now gone */
  readonly removed: readonly string[];
  /** tables whose route to the subnet belongs to another holder and was left alone */
  readonly kept: readonly { readonly routeTableId: string; readonly target: string }[];
}

export type InstanceStateOutcome =
  | { readonly action: 'none'; readonly reason: string }
  | { readonly action: 'released'; readonly subnet: string; readonly routeTableIds: readonly string[] }
  | {
      readonly action: 'ensured';
      readonly subnet: string;
      readonly routes: readonly LeaseRoute[];
      readonly error?: VpcLeaseError;
    };

const silent: RouteServiceLogger = { info() {}, warn() {}, error() {} };

export class RouteService {
  private readonly routes: RouteTablePort;
  private readonly instances: InstancePort;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly vpcId: string;
  private readonly logger: RouteServiceLogger;
  private readonly ledger: RouteServiceDeps['ledger'];

  constructor(deps: RouteServiceDeps) {
    this.ledger = deps.ledger;
    this.routes = deps.routes;
    this.instances = deps.instances;
    this.store = deps.store;
    this.clock = deps.clock;
    this.vpcId = deps.vpcId;
    this.logger = deps.logger ?? silent;
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
   * Writes the lease's route in each table: CreateRoute, and when a route to the subnet
   * is already there, a look at it decides: ours already, nothing to do; owned (a stale
   * holder's, a blackhole, one left by a crash) -> ReplaceRoute to the lease's ENI, which never
   * leaves the subnet without a route as delete-then-create would; foreign -> ForeignRouteError,
   * never a replace (invariant 4).
   *
   * Throttling and EC2 outages leave the route 'pending' and are returned, not thrown:
   * the caller decides whether to answer 503. RouteLimitExceededError is thrown (the
   * caller rolls the grant back); other errors are bugs or missing resources and thrown.
   * EC2 calls: one per table, plus one when the ENI's source/destination check is on.
   */
  async ensureLeaseRoutes(
    lease: Lease,
    config: NetworkConfig,
    options: EnsureRoutesOptions,
  ): Promise<EnsureRoutesResult> {
    this.assertInsideNetwork(lease, config);
    const destination = formatCidr(lease.subnet);
    const states = new Map<string, RouteState>(lease.routes.map((r) => [r.routeTableId, r.state]));
    let firstError: VpcLeaseError | undefined;

    if (options.sourceDestCheck) {
      try {
        await this.instances.disableSourceDestCheck(lease.networkInterfaceId);
      } catch (error) {
        if (!isTransient(error)) throw error;
        firstError = asDomainError(error);
      }
    }

    if (firstError) {
      // The ENI would drop the subnet's traffic anyway; spare the throttled account the route calls.
      for (const id of options.routeTableIds) if (states.get(id) !== 'active') states.set(id, 'pending');
    } else {
      for (const routeTableId of options.routeTableIds) {
        if (firstError) {
          // Throttled or unavailable once: each further call would back off as long again and
          // could outlast the function's timeout. Leave the rest pending for the retry/reconcile.
          if (states.get(routeTableId) !== 'active') states.set(routeTableId, 'pending');
          continue;
        }
        try {
          await this.writeRoute(config, routeTableId, destination, lease.networkInterfaceId);
          states.set(routeTableId, 'active');
        } catch (error) {
          if (error instanceof RouteLimitExceededError || !isTransient(error)) throw error;
          states.set(routeTableId, 'pending');
          firstError ??= asDomainError(error);
          this.logger.warn('route left pending', {
            ...describeLease(lease),
            routeTableId,
            error: String(error),
          });
        }
      }
    }

    const routes = mergeRoutes(lease.routes, states);
    const stored = sameRoutes(lease.routes, routes) ? lease : await this.store.updateRoutes(lease, routes);
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
    const destination = formatCidr(lease.subnet);
    const removed: string[] = [];
    const kept: { routeTableId: string; target: string }[] = [];
    let firstError: unknown;

    let marked = false;
    for (const table of described) {
      const route = table.routes.find((r) => sameSubnet(r.destination, lease.subnet));
      if (!route) continue;
      if (!pointsTo(route, lease) || !isOwnedRoute(config, route)) {
        kept.push({ routeTableId: table.routeTableId, target: targetOf(route) });
        continue;
      }
      if (!marked) {
        // The lease changed hands since it was read: its subnet's routes are the new holder's.
        if (!(await this.markRoutesPending(lease))) return { removed: [], kept };
        marked = true;
      }
      try {
        await this.routes.deleteRoute(table.routeTableId, destination);
        removed.push(table.routeTableId);
      } catch (error) {
        firstError ??= error;
        this.logger.warn('route not removed', {
          ...describeLease(lease),
          routeTableId: table.routeTableId,
          error: String(error),
        });
      }
    }
    if (firstError !== undefined) throw toDomainError('EC2', firstError);
    return { removed, kept };
  }

  /**
   * EventBridge "EC2 Instance State-change Notification". Events come at least once and
   * in any order, so the event's state is only logged: the decision comes from the lease
   * table and one fresh DescribeInstances.
   *   - no lease                               -> nothing (0 EC2 calls);
   *   - instance gone/shutting-down/terminated -> delete its routes (from the tables the lease
   *     item lists, no Describe of tables), then the lease: #tables + 1 EC2 calls;
   *   - running                                -> write the routes not yet active;
   *   - pending/stopping/stopped               -> nothing (the ENI survives a stop).
   * `config` defaults to the published one.
   */
  async onInstanceState(
    instanceId: string,
    eventState: string,
    config?: NetworkConfig,
  ): Promise<InstanceStateOutcome> {
    const lease = await this.store.getByInstance(instanceId);
    if (!lease) return { action: 'none', reason: `${instanceId} holds no lease` };

    const [instance] = await this.instances.describeInstances([instanceId]);
    const context = { ...describeLease(lease), eventState, currentState: instance?.state ?? 'gone' };

    if (isGone(instance)) {
      const routeTableIds = await this.releaseRoutesOfDeadHolder(lease, config);
      if (routeTableIds === undefined || !(await this.store.delete(lease))) {
        // The conditional write found another holder: the subnet changed hands after we read
        // the lease. Its routes are the new holder's; stop here.
        this.logger.info('lease changed hands; nothing released', context);
        return { action: 'none', reason: `the lease of ${instanceId} changed hands meanwhile` };
      }
      this.logger.info('lease released: instance terminated', { ...context, routeTableIds });
      return { action: 'released', subnet: formatCidr(lease.subnet), routeTableIds };
    }
    if (instance?.state !== 'running') {
      return { action: 'none', reason: `${instanceId} is ${instance?.state}; its lease and routes stay` };
    }
    const now = this.clock.now();
    if (!isLive(lease, now)) {
      return { action: 'none', reason: `the lease of ${instanceId} expired; the reconcile reclaims it` };
    }
    const eni = instance.networkInterfaces.find((e) => e.networkInterfaceId === lease.networkInterfaceId);
    if (!eni) {
      return {
        action: 'none',
        reason: `${lease.networkInterfaceId} is no longer attached to ${instanceId}; the reconcile reclaims the lease`,
      };
    }

    const published = config ?? (await this.publishedConfig());
    const scope = await this.knownScope(lease, published);
    const missing = scope.filter(
      (id) => !lease.routes.some((r) => r.routeTableId === id && r.state === 'active'),
    );
    if (missing.length === 0 && !eni.sourceDestCheck) {
      return { action: 'none', reason: 'every route of the lease is active' };
    }
    const result = await this.ensureLeaseRoutes(lease, published, {
      sourceDestCheck: eni.sourceDestCheck,
      routeTableIds: missing,
    });
    this.logger.info('lease routes ensured', { ...context, routes: result.routes });
    return {
      action: 'ensured',
      subnet: formatCidr(lease.subnet),
      routes: result.routes,
      ...(result.error ? { error: result.error } : {}),
    };
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
  async reconcile(config: NetworkConfig): Promise<ReconcileReportJson> {
    const now = this.clock.now();
    const report: ReconcileReportJson = { startedAt: now.toISOString(), changes: [], errors: [] };

    const tables = await this.tablesInScope(config);
    const leases = await this.store.list();
    const holderIds = [...new Set(leases.map((l) => l.instanceId))];
    const instances = holderIds.length > 0 ? await this.instances.describeInstances(holderIds) : [];
    const dead = findDeadHolders(leases, instances);
    const plan = planRoutes({ config, tables, leases, dead, now });

    const notDone = new Set<RouteChange>();
    const currentLease = memoize((subnet: Cidr) => this.store.getBySubnet(subnet));
    for (const change of plan.changes) {
      const subnet = parseDestination(change.destination);
      try {
        if (change.action === 'delete') {
          // A grant may have given the subnet to a new holder since store.list(): then its
          // route is its own, and the grant writes it.
          const current = subnet ? await currentLease(subnet) : undefined;
          if (current && isLive(current, now) && !holderIsDead(current, dead)) {
            notDone.add(change);
            continue;
          }
          const outcome = await this.routes.deleteRoute(change.routeTableId, change.destination);
          if (outcome === 'absent') continue;
        } else if (change.action === 'create') {
          await this.writeRoute(config, change.routeTableId, change.destination, change.networkInterfaceId);
        } else {
          await this.routes.replaceRoute(change.routeTableId, change.destination, change.networkInterfaceId);
        }
        report.changes.push(changeJson(change));
      } catch (error) {
        notDone.add(change);
        report.errors.push({
          subnet: change.destination,
          routeTableId: change.routeTableId,
          message: `${change.action} failed: ${messageOf(error)}`,
        });
      }
    }

    for (const { lease, reason } of plan.reclaims) {
      const key = formatCidr(lease.subnet);
      const blocked = plan.changes.some((c) => notDone.has(c) && sameSubnet(c.destination, lease.subnet));
      if (blocked) continue; // routes first: the lease waits for the next sweep
      try {
        const deleted = await this.store.delete(lease, reason === 'expired' ? { onlyIfExpiredAt: now } : {});
        if (deleted) {
          report.changes.push({
            action: 'lease-reclaimed',
            subnet: key,
            instanceId: lease.instanceId,
            reason:
              reason === 'expired'
                ? `expired at ${lease.expiresAt.toISOString()}`
                : `holder ${lease.instanceId} is terminated or gone`,
          });
        } else {
          await this.restoreRegranted(lease, config, tables, report);
        }
      } catch (error) {
        report.errors.push({ subnet: key, message: `reclaim failed: ${messageOf(error)}` });
      }
    }

    await this.disableSourceDestChecks(plan.liveLeases, instances, report);

    const after = applyRouteChanges(tables, plan.changes, (c) => !notDone.has(c));
    for (const lease of plan.liveLeases) {
      const routes = leaseRouteStates(lease, after);
      if (sameRoutes(lease.routes, routes)) continue;
      try {
        await this.store.updateRoutes(lease, routes);
      } catch (error) {
        report.errors.push({
          subnet: formatCidr(lease.subnet),
          message: `route states not saved: ${messageOf(error)}`,
        });
      }
    }
    try {
      const { usage } = await this.refreshSnapshot(config, after);
      if (usage && usage.used > usage.capacity) {
        report.errors.push({
          message: `${usage.used} leases hold a route but the tables admit ${usage.capacity} (RouteLimit minus foreign routes); new leases are refused until some go: revoke some or raise RouteLimit`,
        });
      }
    } catch (error) {
      report.errors.push({ message: `route table snapshot not saved: ${messageOf(error)}` });
    }

    // Usage after the changes, from the tables already described (no second Describe).
    report.usage = after.map((table) => routeUsage(config, table, plan.liveLeases, this.clock.now()));

    this.logger.info('reconcile done', { changes: report.changes.length, errors: report.errors.length });
    return report;
  }

  // ------------------------------------------------------------ internals

  /**
   * CreateRoute; when a route to the destination is already there, one Describe of that table
   * decides: already to this ENI -> done; owned -> ReplaceRoute; foreign -> ForeignRouteError.
   */
  private async writeRoute(
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
    const subnet = parseDestination(destination);
    const existing = subnet && table?.routes.find((r) => sameSubnet(r.destination, subnet));
    if (!existing) {
      // Gone between the two calls (a concurrent delete): create it again, once.
      if ((await this.routes.createRoute(routeTableId, destination, networkInterfaceId)) === 'created')
        return;
      throw new ConflictError(
        `The route to ${destination} in ${routeTableId} keeps changing; retry shortly.`,
      );
    }
    if (existing.networkInterfaceId === networkInterfaceId && existing.state === 'active') return;
    if (!isOwnedRoute(config, existing)) {
      throw new ForeignRouteError({ routeTableId, destination, target: targetOf(existing) });
    }
    await this.routes.replaceRoute(routeTableId, destination, networkInterfaceId);
  }

  /**
   * The dead holder's routes, from the tables its lease item lists (plus the configured ones,
   * when the caller passed a config that names them): first a conditional write that the
   * lease is still this holder's (undefined when it changed hands: the caller stops), then one
   * Describe of those tables, then a delete only where the route still targets this lease's
   * ENI (DESIGN.md "Trust"): a new holder of the subnet keeps its route. Finally, should a new
   * holder have taken the subnet while we deleted, its routes are written back.
   */
  private async releaseRoutesOfDeadHolder(
    lease: Lease,
    config: NetworkConfig | undefined,
  ): Promise<string[] | undefined> {
    const ids = new Set(lease.routes.map((r) => r.routeTableId));
    for (const id of config?.backend.routeTableIds ?? []) ids.add(id);
    if (!(await this.markRoutesPending(lease))) return undefined;
    if (ids.size === 0) return [];
    const published = config ?? (await this.publishedConfig());
    const tables = await this.describeExisting([...ids]);
    const { removed } = await this.removeLeaseRoutes(lease, published, tables);
    const current = await this.store.getBySubnet(lease.subnet);
    if (current && current.instanceId !== lease.instanceId && isLive(current, this.clock.now())) {
      this.logger.info('subnet re-granted during the release; restoring its routes', describeLease(current));
      await this.ensureLeaseRoutes(current, published, {
        sourceDestCheck: false, // the grant handled it
        routeTableIds: current.routes.map((r) => r.routeTableId),
      });
    }
    return [...removed];
  }

  /** The tables among `ids` that still exist: a deleted table took its routes with it. */
  private async describeExisting(ids: readonly string[]): Promise<RouteTable[]> {
    try {
      return await this.routes.describeRouteTables({ vpcId: this.vpcId, routeTableIds: ids });
    } catch (error) {
      if (!isMissingTable(error)) throw error;
      const tables: RouteTable[] = [];
      for (const id of ids) {
        try {
          tables.push(...(await this.routes.describeRouteTables({ vpcId: this.vpcId, routeTableIds: [id] })));
        } catch (inner) {
          if (!isMissingTable(inner)) throw inner;
        }
      }
      return tables;
    }
  }

  /**
   * Records the lease's routes as pending before any of them is deleted. Should the lease
   * outlive the removal (its delete fails once the routes are gone), the renewal, which costs
   * no EC2 call and trusts the stored states, must not answer "active": pending makes it
   * write the routes back. One conditional write when some route is recorded active, else one
   * read. False when the lease is no longer this holder's (it changed hands).
   */
  private async markRoutesPending(lease: Lease): Promise<boolean> {
    if (!lease.routes.some((r) => r.state === 'active')) {
      const current = await this.store.getBySubnet(lease.subnet);
      return (
        current?.instanceId === lease.instanceId && current.networkInterfaceId === lease.networkInterfaceId
      );
    }
    const updated = await this.store.updateRoutes(
      lease,
      lease.routes.map((r) => ({ routeTableId: r.routeTableId, state: 'pending' as const })),
    );
    return updated !== undefined;
  }

  /**
   * The store refused to reclaim a lease: the subnet was granted again after we listed
   * it, possibly before we deleted its route. Write the new holder's routes back.
   */
  private async restoreRegranted(
    reclaimed: Lease,
    config: NetworkConfig,
    tables: readonly RouteTable[],
    report: ReconcileReportJson,
  ): Promise<void> {
    const current = await this.store.getBySubnet(reclaimed.subnet);
    if (!current || !isLive(current, this.clock.now())) return;
    this.logger.info('reclaim lost to a new grant; restoring its routes', describeLease(current));
    const result = await this.ensureLeaseRoutes(current, config, {
      sourceDestCheck: false, // the grant handled it
      routeTableIds: tables.map((t) => t.routeTableId),
    });
    if (result.error) {
      report.errors.push({ subnet: formatCidr(current.subnet), message: messageOf(result.error) });
    }
  }

  /** Source/destination check off on every live lease's ENI (it may have been turned back on by hand). */
  private async disableSourceDestChecks(
    leases: readonly Lease[],
    instances: readonly InstanceInfo[],
    report: ReconcileReportJson,
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

  /** The tables a lease should have routes in, known without describing EC2. */
  private async knownScope(lease: Lease, config: NetworkConfig): Promise<string[]> {
    if (config.backend.routeTableIds) return [...config.backend.routeTableIds];
    const snapshot = await this.store.getRouteTableSnapshot();
    if (snapshot && snapshot.tables.length > 0) return snapshot.tables.map((t) => t.routeTableId);
    if (lease.routes.length > 0) return lease.routes.map((r) => r.routeTableId);
    return (await this.tablesInScope(config)).map((t) => t.routeTableId);
  }

  private async publishedConfig(): Promise<NetworkConfig> {
    const stored = await this.store.getConfig();
    if (!stored) throw new ConfigMissingError();
    return stored.config;
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

function mergeRoutes(previous: readonly LeaseRoute[], states: ReadonlyMap<string, RouteState>): LeaseRoute[] {
  const merged = previous.map((r) => ({
    routeTableId: r.routeTableId,
    state: states.get(r.routeTableId) ?? r.state,
  }));
  for (const [routeTableId, state] of states) {
    if (!previous.some((r) => r.routeTableId === routeTableId)) merged.push({ routeTableId, state });
  }
  return merged;
}

function sameRoutes(a: readonly LeaseRoute[], b: readonly LeaseRoute[]): boolean {
  if (a.length !== b.length) return false;
  const states = new Map(a.map((r) => [r.routeTableId, r.state]));
  return b.every((r) => states.get(r.routeTableId) === r.state);
}

function sameSubnet(destination: string, subnet: Cidr): boolean {
  const cidr = parseDestination(destination);
  return cidr !== undefined && formatCidr(cidr) === formatCidr(subnet);
}

const holderIsDead = (lease: Lease, dead: DeadHolders): boolean =>
  dead.instanceIds.has(lease.instanceId) || dead.networkInterfaceIds.has(lease.networkInterfaceId);

function isMissingTable(error: unknown): boolean {
  const details = (error as { details?: { awsError?: unknown } }).details;
  return details?.awsError === 'InvalidRouteTableID.NotFound';
}

/** Only for errors isTransient() accepted: toDomainError makes those a ThrottledError or ServiceUnavailableError. */
function asDomainError(error: unknown): VpcLeaseError {
  return toDomainError('EC2', error) as VpcLeaseError;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const ACTIONS: Record<RouteChange['action'], ReconcileChangeJson['action']> = {
  create: 'route-created',
  replace: 'route-replaced',
  delete: 'route-deleted',
};

function changeJson(change: RouteChange): ReconcileChangeJson {
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

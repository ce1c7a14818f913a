/**
 * EventBridge "EC2 Instance State-change Notification": a terminated holder's routes and
 * lease go, a running holder's missing routes are written. Events come at least once and in
 * any order, so the decision comes from the lease table and one fresh DescribeInstances,
 * never from the event's state. The writing is route-writer.ts's.
 *
 * EC2 budget (docs/design.md): a termination costs #tables + 1 calls (+ the DescribeInstances),
 * in dual stack #tables x 2 + 1 (an IPv4 and an IPv6 route per table).
 */
import { formatCidr } from './cidr.js';
import { publishedConfig } from './config-service.js';
import type { VpcLeaseError } from './errors.js';
import { describeLease, isLive, type Lease, type LeaseRoute, routeKey } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import { type Clock, type InstancePort, type LeaseStore, type Logger, silentLogger } from './ports.js';
import { routesOf } from './route-family.js';
import { isGone } from './route-planner.js';
import type { RouteWriter } from './route-writer.js';

export interface InstanceEventsDeps {
  readonly writer: RouteWriter;
  readonly instances: InstancePort;
  readonly store: LeaseStore;
  readonly clock: Clock;
  readonly logger?: Logger;
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

export class InstanceEvents {
  private readonly writer: RouteWriter;
  private readonly instances: InstancePort;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(deps: InstanceEventsDeps) {
    this.writer = deps.writer;
    this.instances = deps.instances;
    this.store = deps.store;
    this.clock = deps.clock;
    this.logger = deps.logger ?? silentLogger;
  }

  /**
   * One state-change event of `instanceId`; the event's state is only logged:
   *   - no lease                               -> nothing (0 EC2 calls);
   *   - instance gone/shutting-down/terminated -> delete its routes (from the tables the lease
   *     item lists, no Describe of tables), then the lease: #tables + 1 EC2 calls (dual stack:
   *     both routes of each table, #tables x 2 + 1);
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
    // Every route of both families: a lease granted before dual stack gets its IPv6 routes here too.
    const active = new Set(lease.routes.filter((r) => r.state === 'active').map(routeKey));
    const missing = routesOf(published, scope, 'pending').filter((ref) => !active.has(routeKey(ref)));
    if (missing.length === 0 && !eni.sourceDestCheck) {
      return { action: 'none', reason: 'every route of the lease is active' };
    }
    const result = await this.writer.ensureLeaseRoutes(lease, published, {
      sourceDestCheck: eni.sourceDestCheck,
      routes: missing,
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
   * The dead holder's routes, from the tables its lease item lists (plus the configured ones,
   * when the caller passed a config that names them): first a conditional write that the
   * lease is still this holder's (undefined when it changed hands: the caller stops), then one
   * Describe of those tables, then a delete only where the route still targets this lease's
   * ENI (docs/design.md): a new holder of the subnet keeps its route. Finally, should a new
   * holder have taken the subnet while we deleted, its routes are written back.
   */
  private async releaseRoutesOfDeadHolder(
    lease: Lease,
    config: NetworkConfig | undefined,
  ): Promise<string[] | undefined> {
    const ids = new Set(lease.routes.map((r) => r.routeTableId));
    for (const id of config?.backend.routeTableIds ?? []) ids.add(id);
    if (!(await this.writer.markRoutesPending(lease))) return undefined;
    if (ids.size === 0) return [];
    const published = config ?? (await this.publishedConfig());
    const tables = await this.writer.describeExisting([...ids]);
    const { removed } = await this.writer.removeLeaseRoutes(lease, published, tables);
    const current = await this.store.getBySubnet(lease.subnet);
    if (current && current.instanceId !== lease.instanceId && isLive(current, this.clock.now())) {
      this.logger.info('subnet re-granted during the release; restoring its routes', describeLease(current));
      await this.writer.ensureLeaseRoutes(current, published, {
        sourceDestCheck: false, // the grant handled it
        routes: current.routes,
      });
    }
    return [...removed];
  }

  /** The tables a lease should have routes in, known without describing EC2. */
  private async knownScope(lease: Lease, config: NetworkConfig): Promise<string[]> {
    if (config.backend.routeTableIds) return [...config.backend.routeTableIds];
    const snapshot = await this.store.getRouteTableSnapshot();
    if (snapshot && snapshot.tables.length > 0) return snapshot.tables.map((t) => t.routeTableId);
    if (lease.routes.length > 0) return lease.routes.map((r) => r.routeTableId);
    return (await this.writer.tablesInScope(config)).map((t) => t.routeTableId);
  }

  private async publishedConfig(): Promise<NetworkConfig> {
    return (await publishedConfig(this.store)).config;
  }
}

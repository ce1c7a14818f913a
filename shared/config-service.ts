/**
 * Publishing the network config (PUT /v1/admin/config, `vpc-lease config set`): the
 * equivalent of `etcdctl set /coreos.com/network/config`, with the checks etcd never made.
 * A refused config changes nothing.
 */
import { formatCidr, overlaps, parseCidr } from './cidr.js';
import { ConfigMissingError, ConflictError, ValidationError } from './errors.js';
import { isLive, type Lease } from './lease.js';
import {
  isLeasable,
  type NetworkConfig,
  parseNetworkConfig,
  refuseIpv6VpcOverlap,
  refuseUnroutedDualStack,
} from './network-config.js';
import type {
  Clock,
  InstancePort,
  LeaseStore,
  RouteTable,
  RouteTableSnapshot,
  StoredConfig,
} from './ports.js';
import { foreignRouteCount, routeTableSnapshot } from './route-planner.js';

export interface ConfigServiceDeps {
  store: LeaseStore;
  instances: InstancePort;
  routes: {
    tablesInScope(config: NetworkConfig): Promise<RouteTable[]>;
    refreshSnapshot(
      config: NetworkConfig,
      tables?: readonly RouteTable[],
    ): Promise<{ snapshot: RouteTableSnapshot }>;
  };
  /** keeps capacity slots in line with the capacity */
  slots: { alignSlots(config: NetworkConfig, snapshot: RouteTableSnapshot, upTo?: number): Promise<number> };
  clock: Clock;
  vpcId: string;
}

/** How many leases an error message names before it says "and N more". */
const NAMED = 10;

export class ConfigService {
  constructor(private readonly deps: ConfigServiceDeps) {}

  async get(): Promise<StoredConfig> {
    const stored = await this.deps.store.getConfig();
    if (!stored) throw new ConfigMissingError();
    return stored;
  }

  /**
   * Validates and publishes. 400 for a malformed config or one that overlaps the VPC;
   * 409 for one that would strand live leases or one published concurrently by someone else.
   */
  async publish(input: unknown, options: { expectedVersion?: number } = {}): Promise<StoredConfig> {
    const config = parseNetworkConfig(input);
    const { store, instances, routes, clock, vpcId } = this.deps;

    // Traffic to the VPC's own addresses must never be routed to a host's ENI.
    const vpcCidrs = await instances.describeVpcCidrs(vpcId);
    for (const text of vpcCidrs) {
      if (overlaps(config.network, parseCidr(text))) {
        throw new ValidationError(
          `Network ${formatCidr(config.network)} overlaps ${text}, a CIDR block of ${vpcId}; choose a range outside the VPC (e.g. 10.244.0.0/16 for a VPC in 10.0.0.0/16).`,
        );
      }
    }
    if (config.ipv6) refuseIpv6VpcOverlap(config, await instances.describeVpcIpv6Cidrs(vpcId), vpcId);

    // Also proves each listed route table exists in the VPC (the adapter refuses unknown ones).
    const tables = await routes.tablesInScope(config);
    if (tables.length === 0) {
      throw new ValidationError(
        `${vpcId} has no route table in scope of Backend.RouteTableID; nothing could be routed.`,
      );
    }
    // After every other check of the config (400), so that a dual-stack config is validated in full.
    refuseUnroutedDualStack(config);

    const current = await store.getConfig();
    const now = clock.now();
    const live = current ? (await store.list()).filter((l) => isLive(l, now)) : [];
    if (live.length > 0) this.refuseStranding(config, live, tables);

    const expected = options.expectedVersion ?? current?.version;
    if (options.expectedVersion !== undefined && options.expectedVersion !== current?.version) {
      throw new ConflictError(
        `The network config is at version ${current?.version ?? 'none'}, not ${options.expectedVersion}; read it again and retry.`,
      );
    }
    // Before the new config is visible, no slot at or above its capacity may be taken any more,
    // also by a grant that read the old config: then the live leases cannot outgrow it.
    const snapshot = routeTableSnapshot(config, tables, now);
    const previous = current && (await store.getRouteTableSnapshot());
    // No grant can have chosen a slot at or above the RouteLimit it read.
    const stranded = await this.deps.slots.alignSlots(
      config,
      snapshot,
      current?.config.backend.routeLimit ?? 0,
    );
    if (stranded > 0) {
      if (current && previous) await this.deps.slots.alignSlots(current.config, previous);
      throw new ConflictError(
        `Hosts joined while this config was being published, and ${stranded} lease(s) no longer fit under ` +
          `Backend.RouteLimit ${config.backend.routeLimit}; the config was not changed. Retry, or revoke leases first.`,
      );
    }
    const stored = await store.putConfig(config, expected, now);
    await routes.refreshSnapshot(config, tables);
    return stored;
  }

  private refuseStranding(
    config: NetworkConfig,
    live: readonly Lease[],
    tables: readonly RouteTable[],
  ): void {
    const outside = live.filter((l) => !isLeasable(config, l.subnet));
    if (outside.length > 0) {
      throw new ConflictError(
        `This config would strand ${outside.length} live lease(s) whose subnet it cannot lease ` +
          `(outside SubnetMin..SubnetMax or of another SubnetLen): ${name(outside)}. ` +
          'Revoke them first (`vpc-lease revoke <subnet>`) or keep them in range.',
        { details: { leases: outside.slice(0, NAMED).map((l) => formatCidr(l.subnet)) } },
      );
    }

    const inScope = new Set(tables.map((t) => t.routeTableId));
    const dropped = new Map<string, Lease[]>();
    for (const lease of live) {
      for (const route of lease.routes) {
        if (!inScope.has(route.routeTableId))
          dropped.set(route.routeTableId, [...(dropped.get(route.routeTableId) ?? []), lease]);
      }
    }
    for (const [routeTableId, leases] of dropped) {
      throw new ConflictError(
        `This config drops route table ${routeTableId}, which holds the routes of ${leases.length} live lease(s): ${name(leases)}. ` +
          'Revoke them first, or keep the table in Backend.RouteTableID.',
        { details: { routeTableId, leases: leases.slice(0, NAMED).map((l) => formatCidr(l.subnet)) } },
      );
    }

    for (const table of tables) {
      const foreign = foreignRouteCount(config, table);
      const capacity = config.backend.routeLimit - foreign;
      if (live.length > capacity) {
        throw new ConflictError(
          `Backend.RouteLimit ${config.backend.routeLimit} is below current use of ${table.routeTableId}: ` +
            `${live.length} live leases + ${foreign} other routes. Keep RouteLimit at least ${live.length + foreign}, or revoke leases first.`,
          { details: { routeTableId: table.routeTableId, liveLeases: live.length, foreignRoutes: foreign } },
        );
      }
    }
  }
}

function name(leases: readonly Lease[]): string {
  const shown = leases.slice(0, NAMED).map((l) => `${formatCidr(l.subnet)} (${l.instanceId})`);
  return leases.length > NAMED ? `${shown.join(', ')} and ${leases.length - NAMED} more` : shown.join(', ');
}

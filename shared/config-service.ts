/**
 * Publishing the network config (PUT /v1/admin/config, `vpc-lease config set`): the
 * equivalent of `etcdctl set /coreos.com/network/config`, with the checks etcd never made.
 * A refused config changes nothing.
 */
import { equals, formatCidr, overlaps, parseCidr } from './cidr.js';
import { ConfigMissingError, ConflictError, ValidationError } from './errors.js';
import { isLive, type Lease } from './lease.js';
import { isLeasable, type NetworkConfig, pairedIpv6Subnet, parseNetworkConfig } from './network-config.js';
import { refuseIpv6VpcOverlap } from './network-config-ipv6.js';
import type { Clock, InstancePort, LeaseRouteWriter, LeaseStore, RouteTable, StoredConfig } from './ports.js';
import {
  foreignIpv6RouteCount,
  foreignRouteCount,
  capacity as leaseCapacity,
  routeTableSnapshot,
} from './route-capacity.js';

export interface ConfigServiceDeps {
  store: LeaseStore;
  instances: InstancePort;
  routes: Pick<LeaseRouteWriter, 'tablesInScope' | 'refreshSnapshot'>;
  clock: Clock;
  vpcId: string;
}

/** How many leases an error message names before it says "and N more". */
const NAMED = 10;

/** The published config; ConfigMissingError (503, an operator must publish one) while there is none. */
export function requirePublished(stored: StoredConfig | undefined): StoredConfig {
  if (!stored) throw new ConfigMissingError();
  return stored;
}

/** The published config, read from the store (strongly consistent); see requirePublished. */
export async function publishedConfig(store: Pick<LeaseStore, 'getConfig'>): Promise<StoredConfig> {
  return requirePublished(await store.getConfig());
}

export class ConfigService {
  constructor(private readonly deps: ConfigServiceDeps) {}

  get(): Promise<StoredConfig> {
    return publishedConfig(this.deps.store);
  }

  /**
   * Validates and publishes. 400 for a malformed config or one that overlaps the VPC;
   * 409 for one that would strand live leases or one published concurrently by someone else.
   */
  async publish(input: unknown, options: { expectedVersion?: number } = {}): Promise<StoredConfig> {
    const { config, tables } = await this.validate(input);
    const { store, routes, clock } = this.deps;

    const current = await store.getConfig();
    const now = clock.now();
    const leases = current ? await store.list() : [];
    const live = leases.filter((l) => isLive(l, now));
    if (live.length > 0) this.refuseStranding(config, live, tables);
    refuseMovingIpv6(config, leases);

    const expected = options.expectedVersion ?? current?.version;
    if (options.expectedVersion !== undefined && options.expectedVersion !== current?.version) {
      throw new ConflictError(
        `The network config is at version ${current?.version ?? 'none'}, not ${options.expectedVersion}; read it again and retry.`,
      );
    }
    // The config and the capacity it gives are published in one atomic write, refused when
    // more leases hold a place than it admits: hosts that join during this publish either
    // took their place before it (then it is refused) or find the new capacity.
    const snapshot = routeTableSnapshot(config, tables, now);
    const stored = await store.putConfig(config, expected, now, leaseCapacity(config, snapshot));
    await routes.refreshSnapshot(config, tables);
    return stored;
  }

  /**
   * The checks of a publish that need no lease (400 ValidationError): the config itself, no
   * overlap with the VPC, at least one route table in scope. Writes nothing; the import's
   * dry run asks this of a registry's config it would publish.
   */
  async validate(input: unknown): Promise<{ config: NetworkConfig; tables: RouteTable[] }> {
    const config = parseNetworkConfig(input);
    const { instances, routes, vpcId } = this.deps;

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
    return { config, tables };
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

    // Per family: in dual stack every live lease needs an IPv6 route in each table too (the
    // IPv4-only ones get theirs at their next renewal or reconcile), counted on its own.
    for (const table of tables) {
      const families = [
        { family: 'IPv4', label: '', foreign: foreignRouteCount(config, table) },
        ...(config.ipv6
          ? [{ family: 'IPv6', label: 'IPv6 ', foreign: foreignIpv6RouteCount(config, table) ?? 0 }]
          : []),
      ];
      for (const { family, label, foreign } of families) {
        const capacity = config.backend.routeLimit - foreign;
        if (live.length > capacity) {
          throw new ConflictError(
            `Backend.RouteLimit ${config.backend.routeLimit} is below current ${label}use of ${table.routeTableId}: ` +
              `${live.length} live leases + ${foreign} other ${label}routes. Keep RouteLimit at least ${live.length + foreign}, or revoke leases first.`,
            {
              details: {
                routeTableId: table.routeTableId,
                family,
                liveLeases: live.length,
                foreignRoutes: foreign,
              },
            },
          );
        }
      }
    }
  }
}

/**
 * A lease item (live, or expired and not reclaimed yet) that holds an IPv6 subnet keeps it and
 * its IPv6 routes until it goes: a config that would pair its IPv4 subnet with another IPv6
 * subnet, or turn dual stack off, would leave those routes to nobody (vpc-lease owns IPv6
 * routes only inside the published IPv6 range). Refused with 409. Turning dual stack ON over
 * IPv4-only leases is allowed: each gets its paired IPv6 subnet and routes at its next renewal
 * or at the next reconcile.
 */
function refuseMovingIpv6(config: NetworkConfig, leases: readonly Lease[]): void {
  const moved = leases.filter((l) => {
    if (!l.ipv6Subnet) return false;
    if (!config.ipv6 || !isLeasable(config, l.subnet)) return true;
    const paired = pairedIpv6Subnet(config, l.subnet);
    return paired === undefined || !equals(paired, l.ipv6Subnet);
  });
  if (moved.length === 0) return;
  const subnets = moved.slice(0, NAMED).map((l) => formatCidr(l.subnet));
  if (!config.ipv6) {
    throw new ConflictError(
      `This config turns dual stack off while ${moved.length} lease(s) hold an IPv6 subnet and IPv6 routes: ${name(moved)}. ` +
        'Revoke them first (`vpc-lease revoke <subnet>`; expired ones go with `vpc-lease reconcile`), or keep EnableIPv6 and the IPv6 fields as they are.',
      { details: { leases: subnets } },
    );
  }
  throw new ConflictError(
    `This config pairs ${moved.length} lease(s) with another IPv6 subnet than the one they hold: ${name(moved)}. ` +
      'Keep IPv6Network, IPv6SubnetLen, IPv6SubnetMin (and SubnetMin) as they are, or revoke those leases first (`vpc-lease revoke <subnet>`).',
    { details: { leases: subnets } },
  );
}

function name(leases: readonly Lease[]): string {
  const shown = leases.slice(0, NAMED).map((l) => `${formatCidr(l.subnet)} (${l.instanceId})`);
  return leases.length > NAMED ? `${shown.join(', ')} and ${leases.length - NAMED} more` : shown.join(', ');
}

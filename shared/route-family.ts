/**
 * Dual stack, one address family at a time (DESIGN.md "Routes").
 *
 * A dual-stack lease has two routes per table: DestinationCidrBlock = its IPv4 subnet and
 * DestinationIpv6CidrBlock = its IPv6 subnet, both to the same ENI. EC2 keeps a table's IPv6
 * routes apart and counts them against the "Routes per route table" quota separately, so
 * every rule about routes (ownership, invariants 1-5, planning, usage, capacity) holds per
 * family. The ownership rules, the planner and the usage count are written for one family;
 * these views give them the IPv6 family in the same shape, so they apply unchanged:
 *
 *   familyConfig(config, 6)   IPv6Network as Network, IPv6SubnetLen as SubnetLen, and as the
 *                             leasable range IPv6SubnetMin up to the last subnet that has an
 *                             IPv4 partner (only those can ever be leased);
 *   familyTable(table, 6)     the table's IPv6 routes as its routes;
 *   familyLease(lease, c, 6)  the lease's IPv6 subnet as its subnet, its IPv6 route states as
 *                             its routes.
 *
 * Family 4 is the identity (apart from leaving the IPv6 route states out). Pure.
 */
import { type Cidr, nthSubnet } from './cidr.js';
import { familyOf, type Lease, type LeaseRoute, type RouteFamily, routeKey } from './lease.js';
import { isLeasable, leasableCount, type NetworkConfig, pairedIpv6Subnet } from './network-config.js';
import type { RouteTable } from './ports.js';

/** The families a config routes: IPv4 always, IPv6 in dual stack. */
export const routeFamilies = (config: NetworkConfig): readonly RouteFamily[] => (config.ipv6 ? [4, 6] : [4]);

const ipv6Views = new WeakMap<NetworkConfig, NetworkConfig>();

/** The config as one family's routes see it (see the header); undefined for IPv6 in an IPv4-only config. */
export function familyConfig(config: NetworkConfig, family: 6): NetworkConfig | undefined;
export function familyConfig(config: NetworkConfig, family: 4): NetworkConfig;
export function familyConfig(config: NetworkConfig, family: RouteFamily): NetworkConfig | undefined;
export function familyConfig(config: NetworkConfig, family: RouteFamily): NetworkConfig | undefined {
  if (family === 4) return config;
  const v6 = config.ipv6;
  if (!v6) return undefined;
  let view = ipv6Views.get(config);
  if (!view) {
    view = {
      network: v6.network,
      subnetLen: v6.subnetLen,
      subnetMin: v6.subnetMin,
      // IPv6 subnets past the IPv4 count have no partner: no lease can hold them, no route to them is ours.
      subnetMax: nthSubnet(6, v6.subnetMin.base, v6.subnetLen, leasableCount(config) - 1),
      backend: config.backend,
    };
    ipv6Views.set(config, view);
  }
  return view;
}

/** The table's routes of one family. */
export const familyTable = (table: RouteTable, family: RouteFamily): RouteTable =>
  family === 4 ? table : { ...table, routes: table.ipv6Routes ?? [] };

/**
 * The lease's IPv6 subnet: the one it stores, or (a lease granted while the config was IPv4
 * only) the one the config pairs with its IPv4 subnet. Undefined when the config is IPv4 only
 * and the lease stores none, or when its IPv4 subnet is not leasable under this config.
 */
export function ipv6SubnetOf(
  lease: Pick<Lease, 'subnet' | 'ipv6Subnet'>,
  config: NetworkConfig,
): Cidr | undefined {
  if (lease.ipv6Subnet) return lease.ipv6Subnet;
  if (!config.ipv6 || !isLeasable(config, lease.subnet)) return undefined;
  return pairedIpv6Subnet(config, lease.subnet);
}

/** The lease as one family's routes see it (see the header); undefined when it has no subnet of that family. */
export function familyLease(lease: Lease, config: NetworkConfig, family: RouteFamily): Lease | undefined {
  const routes = familyRoutes(lease.routes, family);
  if (family === 4) {
    const { ipv6Subnet: _, ...ipv4 } = lease;
    return { ...ipv4, routes };
  }
  const subnet = ipv6SubnetOf(lease, config);
  if (!subnet) return undefined;
  const { ipv6Subnet: _, ...rest } = lease;
  return { ...rest, subnet, routes };
}

/** The route states of one family, without the family tag (the shape of an IPv4-only lease's routes). */
export const familyRoutes = (routes: readonly LeaseRoute[], family: RouteFamily): LeaseRoute[] =>
  routes.filter((r) => familyOf(r) === family).map((r) => ({ routeTableId: r.routeTableId, state: r.state }));

/** One family's route states tagged with their family, ready to be stored beside the other family's. */
export const tagFamily = (routes: readonly LeaseRoute[], family: RouteFamily): LeaseRoute[] =>
  routes.map((r) =>
    family === 6
      ? { routeTableId: r.routeTableId, state: r.state, family: 6 as const }
      : { routeTableId: r.routeTableId, state: r.state },
  );

/**
 * Whether the lease records a route of every family of the config in every one of these
 * tables (states aside). False for a lease granted before dual stack was published: its IPv6
 * routes are still to be written.
 */
export function coversFamilies(
  lease: Pick<Lease, 'routes' | 'ipv6Subnet'>,
  config: NetworkConfig,
  routeTableIds: readonly string[],
): boolean {
  if (config.ipv6 && !lease.ipv6Subnet) return false;
  const recorded = new Set(lease.routes.map(routeKey));
  return routeFamilies(config).every((family) =>
    routeTableIds.every((routeTableId) =>
      recorded.has(routeKey({ routeTableId, ...(family === 6 ? { family } : {}) })),
    ),
  );
}

/** Every route a lease needs in these tables, of every family of the config, in the given state. */
export const routesOf = (
  config: NetworkConfig,
  routeTableIds: readonly string[],
  state: LeaseRoute['state'],
): LeaseRoute[] =>
  routeFamilies(config).flatMap((family) =>
    routeTableIds.map((routeTableId) => ({ routeTableId, state, ...(family === 6 ? { family } : {}) })),
  );

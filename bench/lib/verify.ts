/**
 * What EC2 and the lease table hold after a run, read with the uncounted clients, and the
 * checks every benchmark makes on it: one lease per host, no subnet twice (invariant 1),
 * and in every table in scope a route per lease to that lease's ENI; in dual stack also an
 * IPv6 route per lease (its paired subnet) to the same ENI.
 */
import { DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import { contains, formatCidr, parseCidr, parseIpv6Cidr } from '../../shared/cidr.js';
import type { Lease } from '../../shared/lease.js';
import { type NetworkConfig, pairedIpv6Subnet } from '../../shared/network-config.js';
import type { LeaseStore } from '../../shared/ports.js';

/** destination -> target ENI (or other target), for the routes inside `Network`, per table. */
export async function overlayRoutes(
  ec2: EC2Client,
  config: NetworkConfig,
  routeTableIds: readonly string[],
): Promise<Map<string, Map<string, string>>> {
  const out = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [...routeTableIds] }));
  const byTable = new Map<string, Map<string, string>>();
  for (const table of out.RouteTables ?? []) {
    const routes = new Map<string, string>();
    for (const route of table.Routes ?? []) {
      const destination = route.DestinationCidrBlock ?? route.DestinationIpv6CidrBlock;
      if (!destination) continue;
      try {
        const network = route.DestinationCidrBlock ? config.network : config.ipv6?.network;
        const cidr = route.DestinationCidrBlock ? parseCidr(destination) : parseIpv6Cidr(destination);
        if (!network || !contains(network, cidr)) continue;
        // keyed in the project's own printing (RFC 5952 for IPv6), as the leases print theirs
        routes.set(formatCidr(cidr), route.NetworkInterfaceId ?? route.InstanceId ?? route.GatewayId ?? '?');
      } catch {}
    }
    byTable.set(table.RouteTableId!, routes);
  }
  return byTable;
}

export interface Verdict {
  /** distinct subnets among the live leases */
  readonly distinctSubnets: number;
  readonly leases: number;
  /** tables x leases routes expected, and how many point where they should */
  readonly routesExpected: number;
  readonly routesCorrect: number;
  readonly problems: readonly string[];
}

/** Checks the store and the route tables against the hosts that should each hold one lease. */
export async function verifyLeasesAndRoutes(input: {
  store: LeaseStore;
  ec2: EC2Client;
  config: NetworkConfig;
  routeTableIds: readonly string[];
  hosts: readonly LaunchedInstance[];
}): Promise<Verdict & { byInstance: Map<string, Lease> }> {
  const { hosts, routeTableIds } = input;
  const problems: string[] = [];
  const leases = await input.store.list();
  const subnets = new Set(leases.map((l) => formatCidr(l.subnet)));
  if (subnets.size !== leases.length) problems.push(`${leases.length - subnets.size} subnet(s) leased twice`);
  const byInstance = new Map<string, Lease>();
  for (const lease of leases) {
    if (byInstance.has(lease.instanceId)) problems.push(`${lease.instanceId} holds two leases`);
    byInstance.set(lease.instanceId, lease);
  }
  const missing = hosts.filter((h) => !byInstance.has(h.instanceId));
  if (missing.length > 0) problems.push(`${missing.length} host(s) hold no lease`);
  if (leases.length > hosts.length) problems.push(`${leases.length - hosts.length} lease(s) held by no host`);

  const tables = await overlayRoutes(input.ec2, input.config, routeTableIds);
  // A lease's destinations: its subnet, and in dual stack the IPv6 subnet it pairs with (index i
  // with index i), which the lease item must record.
  const destinationsOf = (lease: Lease): string[] => {
    const paired = pairedIpv6Subnet(input.config, lease.subnet);
    if (!paired) return [formatCidr(lease.subnet)];
    if (!lease.ipv6Subnet || formatCidr(lease.ipv6Subnet) !== formatCidr(paired))
      problems.push(
        `${formatCidr(lease.subnet)} records IPv6 subnet ${lease.ipv6Subnet ? formatCidr(lease.ipv6Subnet) : 'none'}, not its pair ${formatCidr(paired)}`,
      );
    return [formatCidr(lease.subnet), formatCidr(paired)];
  };
  const owned = new Map(leases.map((l) => [l, destinationsOf(l)]));
  let routesCorrect = 0;
  for (const id of routeTableIds) {
    const routes = tables.get(id) ?? new Map<string, string>();
    for (const [lease, destinations] of owned) {
      for (const destination of destinations) {
        if (routes.get(destination) === lease.networkInterfaceId) routesCorrect++;
      }
    }
    const ownedDestinations = new Set([...owned.values()].flat());
    const strays = [...routes.keys()].filter((d) => !ownedDestinations.has(d));
    if (strays.length > 0) problems.push(`${strays.length} route(s) in ${id} for no lease`);
  }
  const routesExpected = [...owned.values()].reduce((sum, d) => sum + d.length, 0) * routeTableIds.length;
  if (routesCorrect !== routesExpected)
    problems.push(`${routesExpected - routesCorrect} of ${routesExpected} routes missing or misdirected`);
  return {
    distinctSubnets: subnets.size,
    leases: leases.length,
    routesExpected,
    routesCorrect,
    problems,
    byInstance,
  };
}

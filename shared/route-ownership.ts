/**
 * Which routes are vpc-lease's (the README's invariants 4 and 5): the one definition that the
 * route planner, the route writer, the reconcile and the admin usage view all use.
 *
 * A route is owned only when BOTH hold:
 *   - its destination is exactly one leasable subnet: aligned, SubnetLen long, inside Network,
 *     within SubnetMin..SubnetMax (the only destinations a lease can ever be granted);
 *   - its target is a network interface or an instance (what vpc-lease writes), or is gone
 *     (EC2 marks the route `blackhole`).
 * Everything else is foreign, inside Network or not: gateway, NAT, transit gateway, peering,
 * endpoint and prefix-list routes, routes of other prefix lengths (the hand-made
 * 10.244.0.0/16, a /25 inside a subnet), routes outside the leasable range. vpc-lease never
 * creates over, replaces or deletes a foreign route.
 *
 * A foreign route strictly inside Network (longer prefix than Network) claims the addresses it
 * covers: the leasable subnets it covers or overlaps are not leased (invariant 5), since a
 * lease route there would take traffic from it (a more specific route wins) or lose traffic
 * to it. A foreign route to Network itself or wider (0.0.0.0/0, 10.0.0.0/8, the whole
 * overlay to one box) is less specific than every lease route and blocks nothing.
 */
import { type Cidr, contains, formatCidr, overlaps, parseCidr, parseIpv6Cidr } from './cidr.js';
import type { Lease } from './lease.js';
import { isLeasable, type NetworkConfig } from './network-config.js';
import type { RouteEntry } from './ports.js';

/**
 * The destination as a CIDR of either family (IPv6 told apart by its colons, as EC2 keeps it in
 * DestinationIpv6CidrBlock), or undefined when it is none (a prefix list, malformed).
 * For IPv6 the rules below apply to the family views of route-family.ts.
 */
export function parseDestination(destination: string): Cidr | undefined {
  try {
    return destination.includes(':') ? parseIpv6Cidr(destination) : parseCidr(destination);
  } catch {
    return undefined;
  }
}

/** Whether two route destinations name the same CIDR, however each is written. */
export function sameDestination(a: string, b: string): boolean {
  if (a === b) return true;
  const ca = parseDestination(a);
  const cb = parseDestination(b);
  return ca !== undefined && cb !== undefined && formatCidr(ca) === formatCidr(cb);
}

/** Exactly one leasable subnet of the config. */
export function isLeasableDestination(config: NetworkConfig, destination: string): boolean {
  const cidr = parseDestination(destination);
  return cidr !== undefined && isLeasable(config, cidr);
}

/** A route to an ENI or an instance: the kind vpc-lease writes. */
export const hasLeaseTarget = (route: RouteEntry): boolean =>
  Boolean(route.networkInterfaceId || route.instanceId) && !route.otherTarget;

/** Whether vpc-lease owns the route (see the header): leasable destination AND an ENI/instance or gone target. */
export const isOwnedRoute = (config: NetworkConfig, route: RouteEntry): boolean =>
  isLeasableDestination(config, route.destination) && (hasLeaseTarget(route) || route.state === 'blackhole');

/** Whether the route sends traffic to the lease's holder (its ENI; or its instance when EC2 shows no ENI). */
export function pointsTo(
  route: RouteEntry,
  holder: Pick<Lease, 'networkInterfaceId' | 'instanceId'>,
): boolean {
  if (route.otherTarget) return false;
  if (route.networkInterfaceId) return route.networkInterfaceId === holder.networkInterfaceId;
  return route.instanceId !== undefined && route.instanceId === holder.instanceId;
}

/** The foreign route's destination when it claims addresses strictly inside Network (see the header). */
export function foreignClaim(config: NetworkConfig, route: RouteEntry): Cidr | undefined {
  if (isOwnedRoute(config, route)) return undefined;
  const cidr = parseDestination(route.destination);
  if (!cidr || cidr.prefix <= config.network.prefix || !contains(config.network, cidr)) return undefined;
  return cidr;
}

/** Every range inside Network that foreign routes of these tables claim, formatted, without repeats. */
export function foreignClaims(
  config: NetworkConfig,
  tables: readonly { routes: readonly RouteEntry[] }[],
): string[] {
  const claims = new Set<string>();
  for (const table of tables) {
    for (const route of table.routes) {
      const claim = foreignClaim(config, route);
      if (claim) claims.add(formatCidr(claim));
    }
  }
  return [...claims].sort();
}

/** Whether a subnet may not be leased because a foreign claim covers or overlaps it (invariant 5). */
export function isClaimedByForeign(subnet: Cidr, claims: readonly Cidr[]): boolean {
  return claims.some((claim) => overlaps(claim, subnet));
}

export const targetOf = (route: RouteEntry): string =>
  route.networkInterfaceId ?? route.instanceId ?? route.otherTarget ?? 'nothing';

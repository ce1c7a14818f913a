/** The domain: a lease binds one subnet of the network to one instance and its ENI. */
import { type Cidr, formatCidr } from './cidr.js';

/**
 * active  - the route exists in the table with the lease holder's ENI as target
 * pending - not (yet) written: EC2 failed or throttled; the next PUT /v1/lease or the reconcile writes it
 */
export type RouteState = 'active' | 'pending';

/** The address family of a route: 4 (DestinationCidrBlock) or 6 (DestinationIpv6CidrBlock). */
export type RouteFamily = 4 | 6;

export interface LeaseRoute {
  readonly routeTableId: string;
  readonly state: RouteState;
  /** 6 for the IPv6 route of a dual-stack lease; absent for the IPv4 route (every lease has one) */
  readonly family?: 6;
}

export interface Lease {
  readonly subnet: Cidr;
  /**
   * Dual stack: the IPv6 subnet paired with `subnet` (the same index of the IPv6 range,
   * network-config.ts pairedIpv6Subnet). Absent on a lease granted while the config was IPv4 only.
   */
  readonly ipv6Subnet?: Cidr;
  readonly instanceId: string;
  readonly privateIp: string;
  readonly networkInterfaceId: string;
  readonly expiresAt: Date;
  /** one entry per route table and family: the IPv4 route, and in dual stack the IPv6 route */
  readonly routes: readonly LeaseRoute[];
}

export const familyOf = (route: Pick<LeaseRoute, 'family'>): RouteFamily => route.family ?? 4;

export const isLive = (lease: Pick<Lease, 'expiresAt'>, now: Date): boolean =>
  lease.expiresAt.getTime() > now.getTime();

/** Every route of the lease, of both families, exists (the lease is then `active`). */
export const allRoutesActive = (lease: Pick<Lease, 'routes'>): boolean =>
  lease.routes.every((r) => r.state === 'active');

/** Whether two lists record the same state for the same tables (order aside). */
/** The route of a lease in one table and family, as a key ("rtb-0123/6"). */
export const routeKey = (route: Pick<LeaseRoute, 'routeTableId' | 'family'>): string =>
  `${route.routeTableId}/${familyOf(route)}`;

/** The same routes (table and family) in the same states. */
export function sameRoutes(a: readonly LeaseRoute[], b: readonly LeaseRoute[]): boolean {
  if (a.length !== b.length) return false;
  const states = new Map(a.map((r) => [routeKey(r), r.state]));
  return b.every((r) => states.get(routeKey(r)) === r.state);
}

export const describeLease = (lease: Lease): Record<string, unknown> => ({
  subnet: formatCidr(lease.subnet),
  ...(lease.ipv6Subnet ? { ipv6Subnet: formatCidr(lease.ipv6Subnet) } : {}),
  instanceId: lease.instanceId,
  networkInterfaceId: lease.networkInterfaceId,
});

/** Instance ids as EC2 writes them: i- and 8 (older instances) or 17 hex digits, nothing between. */
export const INSTANCE_ID = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

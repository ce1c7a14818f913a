/**
 * The "VPC router" of the lab forwards by the VPC's route table as moto holds it:
 *
 *   destination -> eni-...   : via that interface's private IP (the host namespace)
 *   destination -> igw-...   : via the "internet" namespace
 *   local                    : the router's own connected subnet, nothing to add
 *   blackhole, or a route that disappeared since the last mirror : unreachable
 *
 * (moto never marks a route blackhole; a route whose interface is gone is treated as one.)
 */
import type { Route } from '@aws-sdk/client-ec2';
import { inNs } from './shell.js';

export type KernelRoute =
  | { destination: string; kind: 'via'; via: string }
  | { destination: string; kind: 'unreachable' };

export interface RouteMirrorInput {
  routes: readonly Route[];
  /** private IP of each network interface that exists and is attached */
  eniAddress: ReadonlyMap<string, string>;
  /** dual stack: the IPv6 address of each such interface's host (the next hop of its IPv6 routes) */
  eniAddress6?: ReadonlyMap<string, string>;
  /** next hop for internet gateway routes */
  internetVia: string;
  /** destinations mirrored before: the ones now absent become unreachable */
  previous: ReadonlySet<string>;
}

export function planRouterRoutes(input: RouteMirrorInput): KernelRoute[] {
  const planned = new Map<string, KernelRoute>();
  for (const route of input.routes) {
    const ipv6 = route.DestinationCidrBlock === undefined;
    const destination = route.DestinationCidrBlock ?? route.DestinationIpv6CidrBlock;
    if (destination === undefined || route.GatewayId === 'local') continue;
    if (route.State === 'blackhole') {
      planned.set(destination, { destination, kind: 'unreachable' });
    } else if (route.NetworkInterfaceId !== undefined) {
      const via = (ipv6 ? input.eniAddress6 : input.eniAddress)?.get(route.NetworkInterfaceId);
      planned.set(
        destination,
        via ? { destination, kind: 'via', via } : { destination, kind: 'unreachable' },
      );
    } else if (route.GatewayId?.startsWith('igw-') && !ipv6) {
      // the lab's "internet" speaks IPv4 only
      planned.set(destination, { destination, kind: 'via', via: input.internetVia });
    }
  }
  for (const destination of input.previous) {
    if (!planned.has(destination)) planned.set(destination, { destination, kind: 'unreachable' });
  }
  return [...planned.values()].sort((a, b) => a.destination.localeCompare(b.destination));
}

/** `ip route replace` each planned route in the router namespace (idempotent). */
export async function applyRouterRoutes(routerNs: string, routes: readonly KernelRoute[]): Promise<void> {
  for (const route of routes) {
    const destination = route.destination === '0.0.0.0/0' ? 'default' : route.destination;
    // `ip route` tells the family from the destination (an IPv6 prefix is an IPv6 route)
    const args =
      route.kind === 'via'
        ? ['route', 'replace', destination, 'via', route.via]
        : ['route', 'replace', 'unreachable', destination];
    await inNs(routerNs, 'ip', args);
  }
}

export function formatKernelRoutes(routes: readonly KernelRoute[]): string[] {
  return routes.map((r) =>
    r.kind === 'via' ? `${r.destination} via ${r.via}` : `unreachable ${r.destination}`,
  );
}

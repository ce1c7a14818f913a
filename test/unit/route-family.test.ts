/**
 * Dual stack, one family at a time: the IPv6 views of the config, a table and a lease
 * (shared/route-family.ts) through which ownership, planning and capacity apply per family.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCidr, formatIp, nthSubnet, parseCidr, parseIpv6Cidr } from '../../shared/cidr.js';
import type { Lease } from '../../shared/lease.js';
import {
  isLeasableIpv6,
  leasableCount,
  leasableSubnet,
  pairedIpv6Subnet,
  parseNetworkConfig,
} from '../../shared/network-config.js';
import type { RouteEntry, RouteTable } from '../../shared/ports.js';
import { capacity, routeTableSnapshot, routeUsage } from '../../shared/route-capacity.js';
import {
  coversFamilies,
  familyConfig,
  familyLease,
  familyTable,
  routesOf,
} from '../../shared/route-family.js';
import { isOwnedRoute } from '../../shared/route-ownership.js';
import { leaseRouteStates, NO_DEAD_HOLDERS, planRoutes } from '../../shared/route-planner.js';

const RTB = 'rtb-0123456789abcdef0';
const ENI = 'eni-0a1b2c3d4e5f60718';
const NOW = new Date('2026-01-01T00:00:00Z');

const dual = parseNetworkConfig({
  Network: '10.244.0.0/16',
  SubnetMin: '10.244.1.0',
  SubnetMax: '10.244.10.0',
  Backend: { Type: 'aws-vpc', RouteTableID: RTB, RouteLimit: 50 },
  EnableIPv6: true,
  IPv6Network: 'fd00:10:244::/56',
});
const ipv4Only = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' } });

const route = (
  destination: string,
  target: Partial<RouteEntry> = { networkInterfaceId: ENI },
): RouteEntry => ({
  destination,
  state: 'active',
  origin: 'CreateRoute',
  ...target,
});

const lease = (rest: Partial<Lease> = {}): Lease => ({
  subnet: parseCidr('10.244.7.0/24'),
  ipv6Subnet: parseIpv6Cidr('fd00:10:244:7::/64'),
  instanceId: 'i-0abc1234def567890',
  privateIp: '10.0.1.23',
  networkInterfaceId: ENI,
  expiresAt: new Date(NOW.getTime() + 3_600_000),
  routes: routesOf(dual, [RTB], 'active'),
  ...rest,
});

describe('the IPv6 view of a dual-stack config', () => {
  it('owns exactly the IPv6 subnets that have an IPv4 partner, to an ENI, as invariant 4 says', () => {
    const v6 = familyConfig(dual, 6)!;
    expect(formatCidr(v6.network)).toBe('fd00:10:244::/56');
    expect(isOwnedRoute(v6, route('fd00:10:244:1::/64'))).toBe(true);
    expect(isOwnedRoute(v6, route('fd00:10:244:a::/64'))).toBe(true);
    // IPv6SubnetMax is fd00:10:244:ff::, but only ten IPv4 subnets can be leased
    expect(isOwnedRoute(v6, route('fd00:10:244:b::/64'))).toBe(false);
    expect(isOwnedRoute(v6, route('fd00:10:244::/64'))).toBe(false);
    expect(isOwnedRoute(v6, route('fd00:10:244:1::/80'))).toBe(false);
    expect(isOwnedRoute(v6, route('fd00:10:244:1::/64', { otherTarget: 'igw-0123' }))).toBe(false);
    expect(isOwnedRoute(v6, route('fd00:10:244:1::/64', { state: 'blackhole' }))).toBe(true);
    // an IPv6 route is never owned under the IPv4 rules, nor an IPv4 route under the IPv6 ones
    expect(isOwnedRoute(dual, route('fd00:10:244:1::/64'))).toBe(false);
    expect(isOwnedRoute(v6, route('10.244.1.0/24'))).toBe(false);
  });

  it('is absent for an IPv4-only config', () => {
    expect(familyConfig(ipv4Only, 6)).toBeUndefined();
    expect(familyConfig(ipv4Only, 4)).toBe(ipv4Only);
  });

  it('owns an IPv6 route exactly when the config pairs its destination with a leasable IPv4 subnet', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 254 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 300 }),
        (min, span, ipv6Min, k) => {
          const max = Math.min(254, min + span);
          const config = parseNetworkConfig({
            Network: '10.244.0.0/16',
            SubnetMin: `10.244.${min}.0`,
            SubnetMax: `10.244.${max}.0`,
            Backend: { Type: 'aws-vpc' },
            EnableIPv6: true,
            IPv6Network: 'fd00:10:244::/48',
            IPv6SubnetMin: formatIp(
              6,
              nthSubnet(6, parseIpv6Cidr('fd00:10:244::/48').base, 64, ipv6Min + 1).base,
            ),
          });
          const candidate = nthSubnet(6, config.ipv6!.subnetMin.base, 64, k);
          const owned = isOwnedRoute(familyConfig(config, 6)!, route(formatCidr(candidate)));
          expect(owned).toBe(isLeasableIpv6(config, candidate));
          expect(owned).toBe(k < leasableCount(config));
          if (owned) expect(pairedIpv6Subnet(config, leasableSubnet(config, k))).toEqual(candidate);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('the IPv6 view of a lease', () => {
  it('has the IPv6 subnet as its subnet and the IPv6 route states as its routes', () => {
    const held = lease({
      routes: [
        { routeTableId: RTB, state: 'active' },
        { routeTableId: RTB, state: 'pending', family: 6 },
      ],
    });
    expect(familyLease(held, dual, 6)).toMatchObject({
      subnet: parseIpv6Cidr('fd00:10:244:7::/64'),
      routes: [{ routeTableId: RTB, state: 'pending' }],
    });
    expect(familyLease(held, dual, 4)).toMatchObject({
      subnet: parseCidr('10.244.7.0/24'),
      routes: [{ routeTableId: RTB, state: 'active' }],
    });
  });

  it('pairs a lease granted before dual stack with the IPv6 subnet of the same index', () => {
    const before = lease({ ipv6Subnet: undefined, routes: [{ routeTableId: RTB, state: 'active' }] });
    expect(familyLease(before, dual, 6)?.subnet).toEqual(parseIpv6Cidr('fd00:10:244:7::/64'));
    expect(familyLease(before, ipv4Only, 6)).toBeUndefined();
    // it does not cover the families until its IPv6 subnet and routes are recorded
    expect(coversFamilies(before, dual, [RTB])).toBe(false);
    expect(coversFamilies(lease(), dual, [RTB])).toBe(true);
    expect(coversFamilies(before, ipv4Only, [RTB])).toBe(true);
  });
});

describe('planning the IPv6 routes with the one planner', () => {
  it('creates the missing IPv6 route, keeps the IPv4 one and never touches a foreign IPv6 route', () => {
    const v6 = familyConfig(dual, 6)!;
    const table: RouteTable = {
      routeTableId: RTB,
      vpcId: 'vpc-1',
      routes: [route('10.244.7.0/24')],
      ipv6Routes: [
        route('fd00:10:244:3::/64', {
          natGatewayId: undefined,
          otherTarget: 'tgw-0123',
        } as Partial<RouteEntry>),
        route('fd00:10:244:9::/64', { networkInterfaceId: 'eni-0ffffffffffffffff' }),
      ],
    };
    const held = lease();
    const v4Plan = planRoutes({
      config: dual,
      tables: [table],
      leases: [held],
      dead: NO_DEAD_HOLDERS,
      now: NOW,
    });
    expect(v4Plan.changes).toEqual([]);
    const v6Plan = planRoutes({
      config: v6,
      tables: [familyTable(table, 6)],
      leases: [familyLease(held, dual, 6)!],
      dead: NO_DEAD_HOLDERS,
      now: NOW,
    });
    expect(v6Plan.changes.map((c) => [c.action, c.destination])).toEqual([
      ['delete', 'fd00:10:244:9::/64'],
      ['create', 'fd00:10:244:7::/64'],
    ]);
    expect(leaseRouteStates(familyLease(held, dual, 6)!, [familyTable(table, 6)])).toEqual([
      { routeTableId: RTB, state: 'pending' },
    ]);
  });
});

describe('capacity per family', () => {
  const table = (ipv4Foreign: number, ipv6Foreign: number): RouteTable => ({
    routeTableId: RTB,
    vpcId: 'vpc-1',
    routes: Array.from({ length: ipv4Foreign }, (_, i) =>
      route(`172.16.${i}.0/24`, { otherTarget: 'pcx-1' }),
    ),
    ipv6Routes: Array.from({ length: ipv6Foreign }, (_, i) =>
      route(`fd00:99:${i.toString(16)}::/64`, { otherTarget: 'pcx-1' }),
    ),
  });

  it('is RouteLimit minus the foreign routes of the fuller family', () => {
    expect(capacity(dual, routeTableSnapshot(dual, [table(2, 48)], NOW))).toBe(2);
    expect(capacity(dual, routeTableSnapshot(dual, [table(45, 3)], NOW))).toBe(5);
    // IPv6 routes do not count against an IPv4-only config's capacity
    expect(capacity(ipv4Only, routeTableSnapshot(ipv4Only, [table(2, 48)], NOW))).toBe(48);
  });

  it('shows used, limit and free per family', () => {
    const usage = routeUsage(dual, table(2, 48), [lease()]);
    expect(usage).toMatchObject({ limit: 50, used: 2, foreign: 2, free: 47 });
    expect(usage.ipv6).toEqual({ limit: 50, used: 48, owned: 0, foreign: 48, blackholes: 0, free: 1 });
    expect(routeUsage(ipv4Only, table(2, 48), [lease()]).ipv6).toBeUndefined();
  });
});

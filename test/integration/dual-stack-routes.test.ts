/**
 * Dual stack end to end on a real control plane (moto): every lease gets the IPv6 subnet of
 * its IPv4 subnet's index, and beside its IPv4 route one IPv6 route per table
 * (DestinationIpv6CidrBlock -> the same ENI), written, repaired, replaced and deleted on every
 * path: grant, renewal, release, revoke, instance events, reconcile. Ownership holds per
 * family (a foreign IPv6 route is never touched), capacity is per family, and a lease is
 * active only when the routes of both families are.
 */
import {
  CreateRouteCommand,
  CreateRouteTableCommand,
  DeleteRouteCommand,
  DescribeRouteTablesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import { formatCidr } from '../../shared/cidr.js';
import { ConflictError, RouteLimitExceededError } from '../../shared/errors.js';
import { leaseToJson } from '../../shared/http/mappers.js';
import { allRoutesActive, type Lease } from '../../shared/lease.js';
import { useMoto } from '../support/aws.js';
import { type ControlPlane, createControlPlane } from '../support/control-plane.js';

const aws = useMoto();

const IPV6_NETWORK = 'fd00:10:244::/56';

interface DualPlane extends ControlPlane {
  tableIds: string[];
  publish(rest?: object): Promise<void>;
}

/** A control plane whose config is published dual stack over two route tables of the VPC. */
async function dualPlane(options: { routeLimit?: number; ipv4First?: boolean } = {}): Promise<DualPlane> {
  const plane = await createControlPlane(aws);
  const second = await aws.ec2.send(new CreateRouteTableCommand({ VpcId: plane.vpc.vpcId }));
  const tableIds = [plane.vpc.routeTableId, second.RouteTable!.RouteTableId!];
  const publish = async (rest: object = {}) => {
    await plane.configs.publish({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: tableIds, RouteLimit: options.routeLimit ?? 50 },
      EnableIPv6: true,
      IPv6Network: IPV6_NETWORK,
      ...rest,
    });
  };
  if (!options.ipv4First) await publish();
  return { ...plane, tableIds, publish };
}

/** The table's routes into the overlay, both families, as [destination, target]. */
async function overlayRoutes(tableId: string): Promise<[string, string][]> {
  const out = await aws.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [tableId] }));
  return (out.RouteTables?.[0]?.Routes ?? [])
    .flatMap((r): [string, string][] => {
      const destination = r.DestinationCidrBlock ?? r.DestinationIpv6CidrBlock;
      if (!destination || !(destination.startsWith('10.244.') || destination.startsWith('fd00:10:244:')))
        return [];
      return [[destination, r.NetworkInterfaceId ?? r.GatewayId ?? r.InstanceId ?? '?']];
    })
    .sort();
}

const routesOfLease = (lease: Lease, host: LaunchedInstance): [string, string][] =>
  [
    [formatCidr(lease.subnet), host.networkInterfaceId] as [string, string],
    [formatCidr(lease.ipv6Subnet!), host.networkInterfaceId] as [string, string],
  ].sort();

const ipv6Of = (lease: Lease) => formatCidr(lease.ipv6Subnet!);

/** The IPv6 subnet of the same index: 10.244.<n>.0/24 <-> fd00:10:244:<n>::/64 (SubnetMin 10.244.1.0, IPv6SubnetMin fd00:10:244:1::). */
const pairOf = (subnet: string) => `fd00:10:244:${Number(subnet.split('.')[2]).toString(16)}::/64`;

async function deleteIpv6Route(tableId: string, destination: string) {
  await aws.ec2.send(
    new DeleteRouteCommand({ RouteTableId: tableId, DestinationIpv6CidrBlock: destination }),
  );
}

async function createIpv6Route(tableId: string, destination: string, target: { eni?: string; igw?: string }) {
  await aws.ec2.send(
    new CreateRouteCommand({
      RouteTableId: tableId,
      DestinationIpv6CidrBlock: destination,
      ...(target.eni ? { NetworkInterfaceId: target.eni } : { GatewayId: target.igw }),
    }),
  );
}

describe('dual stack: a lease pairs IPv4 subnet i with IPv6 subnet i', () => {
  it('grants both subnets and writes both routes in every table, to the host ENI; the lease is active', async () => {
    const plane = await dualPlane();
    const [host] = await plane.launch();
    const { lease, config, outcome } = await plane.leases.acquire(host!.instanceId, {
      privateIp: host!.privateIp,
    });

    expect(outcome).toBe('granted');
    expect(ipv6Of(lease)).toBe(pairOf(formatCidr(lease.subnet)));
    for (const tableId of plane.tableIds)
      expect(await overlayRoutes(tableId)).toEqual(routesOfLease(lease, host!));
    expect(allRoutesActive(lease)).toBe(true);
    expect(lease.routes).toHaveLength(4);

    const json = leaseToJson(lease, config);
    expect(json).toMatchObject({ ipv6Subnet: ipv6Of(lease), ipv6Network: IPV6_NETWORK });
    expect(json.routes).toEqual(
      expect.arrayContaining(
        plane.tableIds.flatMap((routeTableId) => [
          { routeTableId, destination: formatCidr(lease.subnet), state: 'active' },
          { routeTableId, destination: ipv6Of(lease), state: 'active' },
        ]),
      ),
    );
    // stored as granted: the IPv6 subnet and a route state per table and family
    expect(await plane.store.getByInstance(host!.instanceId)).toEqual(lease);
  });

  it('gives a host its previous subnet back with the same IPv6 subnet', async () => {
    const plane = await dualPlane();
    const [host] = await plane.launch();
    const first = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    await plane.leases.release(host!.instanceId);
    const again = await plane.leases.acquire(host!.instanceId, {
      privateIp: host!.privateIp,
      previousSubnet: formatCidr(first.lease.subnet),
    });
    expect(again.lease.subnet).toEqual(first.lease.subnet);
    expect(again.lease.ipv6Subnet).toEqual(first.lease.ipv6Subnet);
  });

  it('renewal writes back an IPv6 route recorded pending (deleted by hand), and only that one', async () => {
    const plane = await dualPlane();
    const [host] = await plane.launch();
    const { lease } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    const [tableId] = plane.tableIds;
    await deleteIpv6Route(tableId!, ipv6Of(lease));
    await plane.store.updateRoutes(
      lease,
      lease.routes.map((r) =>
        r.routeTableId === tableId && r.family === 6 ? { ...r, state: 'pending' } : r,
      ),
    );

    const renewed = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });

    expect(renewed.outcome).toBe('renewed');
    expect(allRoutesActive(renewed.lease)).toBe(true);
    expect(await overlayRoutes(tableId!)).toEqual(routesOfLease(lease, host!));
  });

  it('replaces a stale IPv6 route to the leased subnet (an earlier holder ENI) on grant', async () => {
    const plane = await dualPlane();
    const [old, host] = await plane.launch(2);
    const subnet = '10.244.9.0/24';
    for (const tableId of plane.tableIds)
      await createIpv6Route(tableId, pairOf(subnet), { eni: old!.networkInterfaceId });

    const { lease } = await plane.leases.acquire(host!.instanceId, {
      privateIp: host!.privateIp,
      previousSubnet: subnet,
    });

    expect(formatCidr(lease.subnet)).toBe(subnet);
    for (const tableId of plane.tableIds)
      expect(await overlayRoutes(tableId)).toEqual(routesOfLease(lease, host!));
  });

  it('release and revoke remove both routes from every table', async () => {
    const plane = await dualPlane();
    const [a, b] = await plane.launch(2);
    await plane.leases.acquire(a!.instanceId, { privateIp: a!.privateIp });
    const { lease: revoked } = await plane.leases.acquire(b!.instanceId, { privateIp: b!.privateIp });

    await plane.leases.release(a!.instanceId);
    for (const tableId of plane.tableIds)
      expect(await overlayRoutes(tableId)).toEqual(routesOfLease(revoked, b!));

    await plane.leases.revoke(revoked.subnet);
    for (const tableId of plane.tableIds) expect(await overlayRoutes(tableId)).toEqual([]);
    expect(await plane.store.list()).toEqual([]);
  });

  it('termination removes both routes and the lease; a stop keeps them', async () => {
    const plane = await dualPlane();
    const [stopped, gone] = await plane.launch(2);
    const { lease: kept } = await plane.leases.acquire(stopped!.instanceId, {
      privateIp: stopped!.privateIp,
    });
    await plane.leases.acquire(gone!.instanceId, { privateIp: gone!.privateIp });

    await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped!.instanceId] }));
    expect(await plane.instanceEvents.onInstanceState(stopped!.instanceId, 'stopped')).toMatchObject({
      action: 'none',
    });
    await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone!.instanceId] }));
    expect(await plane.instanceEvents.onInstanceState(gone!.instanceId, 'terminated')).toMatchObject({
      action: 'released',
      routeTableIds: expect.arrayContaining(plane.tableIds),
    });

    for (const tableId of plane.tableIds)
      expect(await overlayRoutes(tableId)).toEqual(routesOfLease(kept, stopped!));
    expect(await plane.store.getByInstance(gone!.instanceId)).toBeUndefined();
  });

  it('a `running` event writes an IPv6 route the lease records pending', async () => {
    const plane = await dualPlane();
    const [host] = await plane.launch();
    const { lease } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    const tableId = plane.tableIds[1]!;
    await deleteIpv6Route(tableId, ipv6Of(lease));
    await plane.store.updateRoutes(
      lease,
      lease.routes.map((r) =>
        r.routeTableId === tableId && r.family === 6 ? { ...r, state: 'pending' } : r,
      ),
    );

    const outcome = await plane.instanceEvents.onInstanceState(host!.instanceId, 'running');

    expect(outcome).toMatchObject({ action: 'ensured' });
    expect(await overlayRoutes(tableId)).toEqual(routesOfLease(lease, host!));
    expect(allRoutesActive((await plane.store.getByInstance(host!.instanceId))!)).toBe(true);
  });
});

describe('dual stack: the reconcile, per family', () => {
  it('repairs an IPv6 route deleted by hand and records it active again', async () => {
    const plane = await dualPlane();
    const [host] = await plane.launch();
    const { lease, config } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    const tableId = plane.tableIds[0]!;
    await deleteIpv6Route(tableId, ipv6Of(lease));

    const first = await plane.reconciler.reconcile(config);
    expect(first.errors).toEqual([]);
    expect(first.changes).toEqual([
      expect.objectContaining({ action: 'route-created', routeTableId: tableId, subnet: ipv6Of(lease) }),
    ]);
    expect(await overlayRoutes(tableId)).toEqual(routesOfLease(lease, host!));
    expect(allRoutesActive((await plane.store.getByInstance(host!.instanceId))!)).toBe(true);

    const second = await plane.reconciler.reconcile(config);
    expect(second.changes).toEqual([]);
  });

  it('re-points an IPv6 route moved to another ENI by hand, and never touches foreign IPv6 routes', async () => {
    const plane = await dualPlane();
    const [host, other] = await plane.launch(2);
    const { lease, config } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    const tableId = plane.tableIds[0]!;
    await aws.ec2.send(
      new DeleteRouteCommand({ RouteTableId: tableId, DestinationIpv6CidrBlock: ipv6Of(lease) }),
    );
    await createIpv6Route(tableId, ipv6Of(lease), { eni: other!.networkInterfaceId });
    // foreign: another prefix length inside IPv6Network, and a leasable destination to a gateway
    await createIpv6Route(tableId, 'fd00:10:244:80::/57', { eni: other!.networkInterfaceId });
    await createIpv6Route(tableId, 'fd00:10:244:70::/64', { igw: plane.vpc.internetGatewayId });

    const report = await plane.reconciler.reconcile(config);

    expect(report.errors).toEqual([]);
    expect(report.changes.map((c) => [c.action, c.subnet])).toEqual([['route-replaced', ipv6Of(lease)]]);
    expect(await overlayRoutes(tableId)).toEqual(
      [
        ...routesOfLease(lease, host!),
        ['fd00:10:244:70::/64', plane.vpc.internetGatewayId],
        ['fd00:10:244:80::/57', other!.networkInterfaceId],
      ].sort(),
    );
  });

  it('reclaims an expired lease: both routes deleted (they target its ENI), then the lease', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const plane = await createControlPlane(aws, { clock: { now: () => now }, leaseTtlSeconds: 60 });
    await plane.configs.publish({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: plane.vpc.routeTableId },
      EnableIPv6: true,
      IPv6Network: IPV6_NETWORK,
    });
    const [host] = await plane.launch();
    const { lease, config } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });
    expect(await overlayRoutes(plane.vpc.routeTableId)).toEqual(routesOfLease(lease, host!));

    now = new Date(now.getTime() + 120_000);
    const report = await plane.reconciler.reconcile(config);

    expect(report.changes.map((c) => [c.action, c.subnet]).sort()).toEqual(
      [
        ['lease-reclaimed', formatCidr(lease.subnet)],
        ['route-deleted', formatCidr(lease.subnet)],
        ['route-deleted', ipv6Of(lease)],
      ].sort(),
    );
    expect(await overlayRoutes(plane.vpc.routeTableId)).toEqual([]);
    expect(await plane.store.list()).toEqual([]);
  });
});

describe('dual stack: capacity per family', () => {
  it('lets only 2 dual-stack joins through a table with IPv6 room for 2 more routes', async () => {
    // RouteLimit 10. IPv4: the local route and 0.0.0.0/0 leave 8; IPv6: the local route, ::/0
    // and 6 foreign routes added here leave 2. The fuller family decides.
    const plane = await dualPlane({ routeLimit: 10, ipv4First: true });
    for (let i = 0; i < 6; i++)
      await createIpv6Route(plane.tableIds[0]!, `fd00:99:${i}::/64`, { igw: plane.vpc.internetGatewayId });
    await plane.publish({ Backend: { Type: 'aws-vpc', RouteTableID: plane.tableIds, RouteLimit: 10 } });
    const hosts = await plane.launch(3);

    const joins = [];
    for (const host of hosts)
      joins.push(
        await plane.leases.acquire(host.instanceId, { privateIp: host.privateIp }).then(
          ({ lease }) => lease,
          (error: unknown) => error,
        ),
      );

    expect(joins.slice(0, 2).every((j) => !(j instanceof Error) && allRoutesActive(j as Lease))).toBe(true);
    expect(joins[2]).toBeInstanceOf(RouteLimitExceededError);
    expect((joins[2] as Error).message).toContain(`${plane.tableIds[0]}: 10/10 IPv6 routes in use`);
    const [usage] = await plane.admin.routeUsage();
    expect(usage).toMatchObject({
      limit: 10,
      foreign: 2,
      free: 6,
      ipv6: { limit: 10, used: 10, foreign: 8, owned: 2, free: 0 },
    });
  });
});

describe('dual stack: publishing over live leases', () => {
  it('gives IPv4-only leases their IPv6 subnet and routes at the next renewal and at the reconcile', async () => {
    const plane = await dualPlane({ ipv4First: true });
    const [renewing, quiet] = await plane.launch(2);
    const before = await plane.leases.acquire(renewing!.instanceId, { privateIp: renewing!.privateIp });
    const other = await plane.leases.acquire(quiet!.instanceId, { privateIp: quiet!.privateIp });
    expect(before.lease.ipv6Subnet).toBeUndefined();

    await plane.publish();

    const renewed = await plane.leases.acquire(renewing!.instanceId, { privateIp: renewing!.privateIp });
    expect(renewed.outcome).toBe('renewed');
    expect(renewed.lease.subnet).toEqual(before.lease.subnet);
    expect(ipv6Of(renewed.lease)).toBe(pairOf(formatCidr(before.lease.subnet)));
    expect(allRoutesActive(renewed.lease)).toBe(true);
    expect(leaseToJson(renewed.lease, renewed.config).ipv6Subnet).toBe(ipv6Of(renewed.lease));

    const { config } = await plane.configs.get();
    const report = await plane.reconciler.reconcile(config);
    expect(report.errors).toEqual([]);
    const upgraded = (await plane.store.getByInstance(quiet!.instanceId))!;
    expect(ipv6Of(upgraded)).toBe(pairOf(formatCidr(other.lease.subnet)));
    expect(allRoutesActive(upgraded)).toBe(true);
    for (const tableId of plane.tableIds)
      expect(await overlayRoutes(tableId)).toEqual(
        [...routesOfLease(renewed.lease, renewing!), ...routesOfLease(upgraded, quiet!)].sort(),
      );
  });

  it('refuses with 409 a config that turns dual stack off or moves the IPv6 subnets while leases hold them', async () => {
    const plane = await dualPlane();
    const [host] = await plane.launch();
    const { lease } = await plane.leases.acquire(host!.instanceId, { privateIp: host!.privateIp });

    const off = await plane.configs
      .publish({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteTableID: plane.tableIds } })
      .catch((e: unknown) => e);
    expect(off).toBeInstanceOf(ConflictError);
    expect((off as ConflictError).message).toMatch(
      /turns dual stack off while 1 lease\(s\) hold an IPv6 subnet/,
    );
    expect((off as ConflictError).message).toContain(formatCidr(lease.subnet));

    const moved = await plane.publish({ IPv6Network: 'fd00:10:245::/56' }).catch((e: unknown) => e);
    expect(moved).toBeInstanceOf(ConflictError);
    expect((moved as ConflictError).message).toMatch(/pairs 1 lease\(s\) with another IPv6 subnet/);

    // nothing changed: still dual stack on the same IPv6Network, routes in place
    expect(formatCidr((await plane.configs.get()).config.ipv6!.network)).toBe(IPV6_NETWORK);
    expect(await overlayRoutes(plane.tableIds[0]!)).toEqual(routesOfLease(lease, host!));
  });
});

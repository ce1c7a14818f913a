import { CreateRouteCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import { createEc2Client } from '../../shared/adapters/aws-clients.js';
import { DynamoDbLeaseStore } from '../../shared/adapters/dynamodb-lease-store.js';
import { Ec2Instances } from '../../shared/adapters/ec2-instances.js';
import { Ec2RouteTables } from '../../shared/adapters/ec2-route-tables.js';
import { parseCidr } from '../../shared/cidr.js';
import { RouteLimitExceededError, ThrottledError } from '../../shared/errors.js';
import { InstanceEvents } from '../../shared/instance-events.js';
import type { Lease, LeaseRoute } from '../../shared/lease.js';
import type { NetworkConfig } from '../../shared/network-config.js';
import type { LeaseStore } from '../../shared/ports.js';
import { Reconciler } from '../../shared/reconciler.js';
import { RouteWriter } from '../../shared/route-writer.js';
import { TEST_REGION } from '../support/aws.js';
import {
  createNetworkFixture,
  createRouteByHand,
  deleteRouteByHand,
  foreignRoutes,
  injectEc2Errors,
  launchHosts,
  type NetworkFixture,
  networkConfig,
  overlayRoutes,
  replaceRouteByHand,
  routeTarget,
  setSourceDestCheck,
  sourceDestCheckOf,
  terminate,
  useMotoEc2,
} from '../support/ec2-fixtures.js';

const T0 = new Date('2026-06-01T00:00:00Z');
const hours = (n: number) => new Date(T0.getTime() + n * 3600_000);

const aws = useMotoEc2();

/**
 * The real DynamoDB store on moto with a race injected at one point: `afterList` runs once
 * right after list() read the table, `beforeDelete` once right before delete() writes.
 * The races run real grants against the real engine, so what the conditions decide is DynamoDB's.
 */
class RacingStore extends DynamoDbLeaseStore {
  afterList: (() => Promise<void>) | undefined;
  beforeDelete: (() => Promise<void>) | undefined;

  override async list(): Promise<Lease[]> {
    const leases = await super.list();
    const race = this.afterList;
    this.afterList = undefined;
    await race?.();
    return leases;
  }

  override async delete(lease: Lease, options?: { onlyIfExpiredAt?: Date }): Promise<boolean> {
    const race = this.beforeDelete;
    this.beforeDelete = undefined;
    await race?.();
    return super.delete(lease, options);
  }
}

/** A racing store on a fresh table whose route capacity leaves room for every test's leases. */
async function racingStore(): Promise<RacingStore> {
  const store = new RacingStore(aws.dynamo, await aws.newTable());
  await store.capacity.resize(50, 50);
  return store;
}

const MUTATIONS = [
  'EC2.CreateRoute',
  'EC2.ReplaceRoute',
  'EC2.DeleteRoute',
  'EC2.ModifyNetworkInterfaceAttribute',
];
const mutations = () => MUTATIONS.reduce((sum, key) => sum + (aws.counter.calls.get(key) ?? 0), 0);
const ec2Calls = () => aws.counter.total('EC2.');

interface Scene {
  fixture: NetworkFixture;
  hosts: LaunchedInstance[];
  store: LeaseStore;
  config: NetworkConfig;
  writer: RouteWriter;
  events: InstanceEvents;
  reconciler: Reconciler;
  tableIds: readonly string[];
  /** grants a lease through the store, as the lease service does (routes pending in every table) */
  grant(host: LaunchedInstance, subnet: string, options?: { expiresAt?: Date; at?: Date }): Promise<Lease>;
  lease(subnet: string): Promise<Lease | undefined>;
}

/** A lease store on a fresh table whose route capacity leaves room for every test's leases. */
async function storeWithRoom(): Promise<LeaseStore> {
  const store = new DynamoDbLeaseStore(aws.dynamo, await aws.newTable());
  await store.capacity.resize(50, 50);
  return store;
}

async function scene(
  options: { tables?: number; hosts?: number; ec2?: EC2Client; store?: LeaseStore; wholeVpc?: boolean } = {},
): Promise<Scene> {
  const fixture = await createNetworkFixture(aws.ec2, { tables: options.tables ?? 2 });
  const hosts = await launchHosts(aws.ec2, fixture, options.hosts ?? 2);
  const store = options.store ?? (await storeWithRoom());
  const config = networkConfig(options.wholeVpc ? {} : { routeTableIds: fixture.routeTableIds });
  const ec2 = options.ec2 ?? aws.ec2;
  const routes = new Ec2RouteTables(ec2);
  const instances = new Ec2Instances(ec2);
  const clock = { now: () => T0 };
  const writer = new RouteWriter({ routes, instances, store, clock, vpcId: fixture.vpcId });
  const events = new InstanceEvents({ writer, instances, store, clock });
  const reconciler = new Reconciler({ writer, routes, instances, store, clock });
  const tableIds = fixture.routeTableIds;
  return {
    fixture,
    hosts,
    store,
    config,
    writer,
    events,
    reconciler,
    tableIds,
    async grant(host, subnet, { expiresAt = hours(1), at = T0 } = {}) {
      const result = await store.grant(
        {
          subnet: parseCidr(subnet),
          instanceId: host.instanceId,
          privateIp: host.privateIp,
          networkInterfaceId: host.networkInterfaceId,
          expiresAt,
          routes: tableIds.map((routeTableId) => ({ routeTableId, state: 'pending' as const })),
        },
        at,
      );
      if (!result.granted) throw new Error(`test setup: grant of ${subnet} refused: ${result.conflicts}`);
      return result.lease;
    },
    lease: (subnet) => store.getBySubnet(parseCidr(subnet)),
  };
}

const active = (tableIds: readonly string[]): LeaseRoute[] =>
  tableIds.map((routeTableId) => ({ routeTableId, state: 'active' }));

async function foreignOf(s: Scene) {
  return Promise.all(s.tableIds.map((id) => foreignRoutes(aws.ec2, id)));
}

function faultyEc2(faults: Parameters<typeof injectEc2Errors>[1]): { client: EC2Client; dispose(): void } {
  const client = createEc2Client({
    endpoint: aws.moto.endpoint,
    region: TEST_REGION,
    counter: aws.counter,
    maxAttempts: 2,
  });
  injectEc2Errors(client, faults);
  return {
    client,
    dispose() {
      client.destroy();
    },
  };
}

describe('RouteWriter.ensureLeaseRoutes', () => {
  it('writes the route of a new lease in every table and turns the ENI source/dest check off, within tables + 2 EC2 calls', async () => {
    const s = await scene({ tables: 3 });
    const [host] = s.hosts;
    const lease = await s.grant(host!, '10.244.7.0/24');
    const foreignBefore = await foreignOf(s);

    aws.counter.reset();
    // what the lease service does: one DescribeInstances to verify the host, then ensure
    const [info] = await new Ec2Instances(aws.ec2).describeInstances([host!.instanceId]);
    const result = await s.writer.ensureLeaseRoutes(lease, s.config, {
      sourceDestCheck: info!.networkInterfaces[0]!.sourceDestCheck,
      routeTableIds: s.tableIds,
    });

    expect(ec2Calls()).toBe(s.tableIds.length + 2);
    expect(result.error).toBeUndefined();
    expect(result.routes).toEqual(active(s.tableIds));
    expect((await s.lease('10.244.7.0/24'))?.routes).toEqual(active(s.tableIds));
    for (const id of s.tableIds) {
      expect(await overlayRoutes(aws.ec2, id)).toEqual([['10.244.7.0/24', host!.networkInterfaceId]]);
    }
    expect(await sourceDestCheckOf(aws.ec2, host!.networkInterfaceId)).toBe(false);
    expect(await foreignOf(s)).toEqual(foreignBefore);
  });

  it('costs one EC2 call per table when the source/dest check is already off', async () => {
    const s = await scene({ tables: 2 });
    const lease = await s.grant(s.hosts[0]!, '10.244.7.0/24');
    aws.counter.reset();
    await s.writer.ensureLeaseRoutes(lease, s.config, { sourceDestCheck: false, routeTableIds: s.tableIds });
    expect(ec2Calls()).toBe(2);
    expect(aws.counter.calls.get('EC2.CreateRoute')).toBe(2);
  });

  it('replaces a stale route to the same subnet with ReplaceRoute, never deleting it', async () => {
    const s = await scene({ tables: 2 });
    const [newHolder, oldHolder] = s.hosts;
    await createRouteByHand(aws.ec2, s.tableIds[1]!, '10.244.7.0/24', oldHolder!.networkInterfaceId);
    const lease = await s.grant(newHolder!, '10.244.7.0/24');

    aws.counter.reset();
    const result = await s.writer.ensureLeaseRoutes(lease, s.config, {
      sourceDestCheck: false,
      routeTableIds: s.tableIds,
    });

    expect(result.routes).toEqual(active(s.tableIds));
    expect(await routeTarget(aws.ec2, s.tableIds[1]!, '10.244.7.0/24')).toBe(newHolder!.networkInterfaceId);
    expect(aws.counter.calls.get('EC2.DeleteRoute')).toBeUndefined();
    expect(aws.counter.calls.get('EC2.ReplaceRoute')).toBe(1);
  });

  it('leaves routes pending and returns ThrottledError with Retry-After when EC2 throttles (injected RequestLimitExceeded)', async () => {
    const faulty = faultyEc2({ CreateRoute: { code: 'RequestLimitExceeded', status: 503 } });
    try {
      const s = await scene({ tables: 2, ec2: faulty.client });
      const lease = await s.grant(s.hosts[0]!, '10.244.7.0/24');

      const result = await s.writer.ensureLeaseRoutes(lease, s.config, {
        sourceDestCheck: true,
        routeTableIds: s.tableIds,
      });

      expect(result.error).toBeInstanceOf(ThrottledError);
      expect(result.error).toMatchObject({ status: 503, retryAfterSeconds: 5 });
      expect(result.routes.map((r) => r.state)).toEqual(['pending', 'pending']);
      expect((await s.lease('10.244.7.0/24'))?.routes.map((r) => r.state)).toEqual(['pending', 'pending']);
      expect(await overlayRoutes(aws.ec2, s.tableIds[0]!)).toEqual([]);
    } finally {
      faulty.dispose();
    }
  });

  it('throws RouteLimitExceededError when EC2 refuses the route for lack of room (injected RouteLimitExceeded)', async () => {
    const faulty = faultyEc2({ CreateRoute: { code: 'RouteLimitExceeded', status: 400 } });
    try {
      const s = await scene({ tables: 1, ec2: faulty.client });
      const lease = await s.grant(s.hosts[0]!, '10.244.7.0/24');
      await expect(
        s.writer.ensureLeaseRoutes(lease, s.config, { sourceDestCheck: false, routeTableIds: s.tableIds }),
      ).rejects.toBeInstanceOf(RouteLimitExceededError);
    } finally {
      faulty.dispose();
    }
  });
});

describe('RouteWriter.removeLeaseRoutes', () => {
  it('deletes the lease route from every table: one Describe and one DeleteRoute per table', async () => {
    const s = await scene({ tables: 3 });
    const lease = await s.grant(s.hosts[0]!, '10.244.7.0/24');
    await s.writer.ensureLeaseRoutes(lease, s.config, { sourceDestCheck: false, routeTableIds: s.tableIds });
    const foreignBefore = await foreignOf(s);

    aws.counter.reset();
    const result = await s.writer.removeLeaseRoutes(lease, s.config);

    expect(result.removed).toEqual(s.tableIds);
    expect(aws.counter.calls.get('EC2.DescribeRouteTables')).toBe(1);
    expect(aws.counter.calls.get('EC2.DeleteRoute')).toBe(3);
    for (const id of s.tableIds) expect(await overlayRoutes(aws.ec2, id)).toEqual([]);
    expect(await foreignOf(s)).toEqual(foreignBefore);
  });

  it('never removes a route that now points to another holder of the subnet', async () => {
    const s = await scene({ tables: 2 });
    const [old, newer] = s.hosts;
    const lease = await s.grant(old!, '10.244.7.0/24');
    await s.writer.ensureLeaseRoutes(lease, s.config, { sourceDestCheck: false, routeTableIds: s.tableIds });
    await replaceRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.7.0/24', newer!.networkInterfaceId);

    const result = await s.writer.removeLeaseRoutes(lease, s.config);

    expect(result.kept).toEqual([
      { routeTableId: s.tableIds[0], destination: '10.244.7.0/24', target: newer!.networkInterfaceId },
    ]);
    expect(await routeTarget(aws.ec2, s.tableIds[0]!, '10.244.7.0/24')).toBe(newer!.networkInterfaceId);
    expect(await routeTarget(aws.ec2, s.tableIds[1]!, '10.244.7.0/24')).toBeUndefined();
  });
});

describe('InstanceEvents.onInstanceState', () => {
  async function routedLease(s: Scene, host: LaunchedInstance, subnet: string) {
    const lease = await s.grant(host, subnet);
    return (
      await s.writer.ensureLeaseRoutes(lease, s.config, { sourceDestCheck: true, routeTableIds: s.tableIds })
    ).lease!;
  }

  it('removes the routes and the lease of a terminated instance within tables + 2 EC2 calls', async () => {
    const s = await scene({ tables: 3 });
    const [host, neighbour] = s.hosts;
    await routedLease(s, host!, '10.244.7.0/24');
    await routedLease(s, neighbour!, '10.244.8.0/24');
    const foreignBefore = await foreignOf(s);
    await terminate(aws.ec2, host!.instanceId);

    aws.counter.reset();
    const outcome = await s.events.onInstanceState(host!.instanceId, 'terminated', s.config);

    expect(outcome).toEqual({ action: 'released', subnet: '10.244.7.0/24', routeTableIds: s.tableIds });
    // DescribeInstances, one DescribeRouteTables (a route goes only while it targets the lease's
    // ENI: EC2 has no conditional delete), one DeleteRoute per table
    expect(ec2Calls()).toBe(s.tableIds.length + 2);
    expect(aws.counter.calls.get('EC2.DeleteRoute')).toBe(s.tableIds.length);
    expect(await s.lease('10.244.7.0/24')).toBeUndefined();
    for (const id of s.tableIds) {
      expect(await overlayRoutes(aws.ec2, id)).toEqual([['10.244.8.0/24', neighbour!.networkInterfaceId]]);
    }
    expect(await foreignOf(s)).toEqual(foreignBefore);
  });

  it('releases a terminated holder whose lease still lists a route table deleted since: its routes went with it', async () => {
    const s = await scene({ tables: 2 });
    const [host] = s.hosts;
    const lease = await routedLease(s, host!, '10.244.7.0/24');
    const deleted = 'rtb-0123456789abcdef0';
    await s.store.updateRoutes(lease, [...lease.routes, { routeTableId: deleted, state: 'active' }]);
    await terminate(aws.ec2, host!.instanceId);

    const outcome = await s.events.onInstanceState(host!.instanceId, 'terminated', s.config);

    expect(outcome).toEqual({ action: 'released', subnet: '10.244.7.0/24', routeTableIds: s.tableIds });
    expect(await s.lease('10.244.7.0/24')).toBeUndefined();
    for (const id of s.tableIds) expect(await overlayRoutes(aws.ec2, id)).toEqual([]);
  });

  it('does nothing, and calls no EC2 API, for a duplicate terminated event', async () => {
    const s = await scene({ tables: 2 });
    const [host] = s.hosts;
    await routedLease(s, host!, '10.244.7.0/24');
    await terminate(aws.ec2, host!.instanceId);
    await s.events.onInstanceState(host!.instanceId, 'terminated', s.config);

    aws.counter.reset();
    const again = await s.events.onInstanceState(host!.instanceId, 'terminated', s.config);

    expect(again).toMatchObject({ action: 'none' });
    expect(ec2Calls()).toBe(0);
  });

  it('brings nothing back when a late running event follows the termination', async () => {
    const s = await scene({ tables: 2 });
    const [host] = s.hosts;
    await routedLease(s, host!, '10.244.7.0/24');
    await terminate(aws.ec2, host!.instanceId);
    await s.events.onInstanceState(host!.instanceId, 'terminated', s.config);

    const late = await s.events.onInstanceState(host!.instanceId, 'running', s.config);

    expect(late).toMatchObject({ action: 'none' });
    for (const id of s.tableIds) expect(await overlayRoutes(aws.ec2, id)).toEqual([]);
    expect(await s.lease('10.244.7.0/24')).toBeUndefined();
  });

  it('decides from the current state when events arrive out of order: running after the instance was terminated releases it', async () => {
    const s = await scene({ tables: 2 });
    const [host] = s.hosts;
    await routedLease(s, host!, '10.244.7.0/24');
    await terminate(aws.ec2, host!.instanceId);

    const first = await s.events.onInstanceState(host!.instanceId, 'running', s.config);
    const second = await s.events.onInstanceState(host!.instanceId, 'terminated', s.config);

    expect(first).toMatchObject({ action: 'released' });
    expect(second).toMatchObject({ action: 'none' });
    for (const id of s.tableIds) expect(await overlayRoutes(aws.ec2, id)).toEqual([]);
  });

  it('writes the routes still pending when the instance runs, and nothing once all are active', async () => {
    const s = await scene({ tables: 2 });
    const [host] = s.hosts;
    await s.grant(host!, '10.244.7.0/24');

    const first = await s.events.onInstanceState(host!.instanceId, 'running', s.config);
    aws.counter.reset();
    const second = await s.events.onInstanceState(host!.instanceId, 'running', s.config);

    expect(first).toMatchObject({ action: 'ensured', routes: active(s.tableIds) });
    expect(second).toMatchObject({ action: 'none' });
    expect(ec2Calls()).toBe(1); // the fresh DescribeInstances only
    for (const id of s.tableIds) {
      expect(await overlayRoutes(aws.ec2, id)).toEqual([['10.244.7.0/24', host!.networkInterfaceId]]);
    }
    expect(await sourceDestCheckOf(aws.ec2, host!.networkInterfaceId)).toBe(false);
  });

  it('keeps the lease and its routes while the instance is stopped', async () => {
    const s = await scene({ tables: 1 });
    const [host] = s.hosts;
    await routedLease(s, host!, '10.244.7.0/24');
    const { StopInstancesCommand } = await import('@aws-sdk/client-ec2');
    await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [host!.instanceId] }));

    const outcome = await s.events.onInstanceState(host!.instanceId, 'stopped', s.config);

    expect(outcome).toMatchObject({ action: 'none' });
    expect(await s.lease('10.244.7.0/24')).toBeDefined();
    expect(await routeTarget(aws.ec2, s.tableIds[0]!, '10.244.7.0/24')).toBe(host!.networkInterfaceId);
  });

  it('calls no EC2 API for an instance that holds no lease', async () => {
    const s = await scene({ tables: 1 });
    aws.counter.reset();
    expect(await s.events.onInstanceState(s.hosts[0]!.instanceId, 'running', s.config)).toMatchObject({
      action: 'none',
    });
    expect(ec2Calls()).toBe(0);
  });
});

describe('Reconciler.reconcile', () => {
  /** Two hosts with live, fully routed leases in every table. */
  async function settled(options: { tables?: number; hosts?: number } = {}) {
    const s = await scene({ tables: options.tables ?? 2, hosts: options.hosts ?? 2 });
    const leases: Lease[] = [];
    for (const [i, host] of s.hosts.entries()) {
      const lease = await s.grant(host, `10.244.${i + 1}.0/24`);
      leases.push(
        (
          await s.writer.ensureLeaseRoutes(lease, s.config, {
            sourceDestCheck: true,
            routeTableIds: s.tableIds,
          })
        ).lease!,
      );
    }
    return { ...s, leases };
  }

  it('changes nothing when routes and leases agree', async () => {
    const s = await settled();
    aws.counter.reset();
    const report = await s.reconciler.reconcile(s.config);
    expect(report).toMatchObject({ startedAt: T0, changes: [], errors: [] });
    expect(mutations()).toBe(0);
  });

  it('recreates a route deleted by hand', async () => {
    const s = await settled();
    await deleteRouteByHand(aws.ec2, s.tableIds[1]!, '10.244.1.0/24');

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes).toEqual([
      expect.objectContaining({
        action: 'route-created',
        routeTableId: s.tableIds[1],
        subnet: '10.244.1.0/24',
      }),
    ]);
    expect(await routeTarget(aws.ec2, s.tableIds[1]!, '10.244.1.0/24')).toBe(s.hosts[0]!.networkInterfaceId);
  });

  it('points a route re-pointed by hand back to the lease holder with one ReplaceRoute', async () => {
    const s = await settled();
    await replaceRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.1.0/24', s.hosts[1]!.networkInterfaceId);

    aws.counter.reset();
    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes).toEqual([
      expect.objectContaining({ action: 'route-replaced', subnet: '10.244.1.0/24' }),
    ]);
    expect(aws.counter.calls.get('EC2.ReplaceRoute')).toBe(1);
    expect(aws.counter.calls.get('EC2.DeleteRoute')).toBeUndefined();
    expect(await routeTarget(aws.ec2, s.tableIds[0]!, '10.244.1.0/24')).toBe(s.hosts[0]!.networkInterfaceId);
  });

  it('deletes a route inside Network that no lease holds', async () => {
    const s = await settled();
    await createRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.99.0/24', s.hosts[1]!.networkInterfaceId);

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes).toEqual([
      expect.objectContaining({
        action: 'route-deleted',
        routeTableId: s.tableIds[0],
        subnet: '10.244.99.0/24',
      }),
    ]);
    expect(await routeTarget(aws.ec2, s.tableIds[0]!, '10.244.99.0/24')).toBeUndefined();
  });

  it('reclaims an expired lease: its routes are deleted, then the lease', async () => {
    const s = await settled();
    const [late] = await launchHosts(aws.ec2, s.fixture, 1);
    const expired = await s.grant(late!, '10.244.50.0/24', { at: hours(-3), expiresAt: hours(-1) });
    for (const id of s.tableIds)
      await createRouteByHand(aws.ec2, id, '10.244.50.0/24', late!.networkInterfaceId);

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes.map((c) => `${c.action} ${c.subnet}`)).toEqual([
      'route-deleted 10.244.50.0/24',
      'route-deleted 10.244.50.0/24',
      'lease-reclaimed 10.244.50.0/24',
    ]);
    expect(report.changes[0]).toMatchObject({
      instanceId: expired.instanceId,
      reason: expect.stringContaining('expired'),
    });
    expect(await s.lease('10.244.50.0/24')).toBeUndefined();
    for (const id of s.tableIds) expect(await routeTarget(aws.ec2, id, '10.244.50.0/24')).toBeUndefined();
  });

  it('reclaims a live lease whose subnet a gateway route took in one table (written while its grant was under way): its own routes go, the gateway route stays', async () => {
    const s = await settled();
    // what the race leaves: the grant's CreateRoute failed in table 0, a foreign route landed there
    await deleteRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.2.0/24');
    await aws.ec2.send(
      new CreateRouteCommand({
        RouteTableId: s.tableIds[0]!,
        DestinationCidrBlock: '10.244.2.0/24',
        GatewayId: s.fixture.internetGatewayId,
      }),
    );

    const report = await s.reconciler.reconcile(s.config);

    expect(report.errors).toEqual([]);
    expect(
      report.changes.map((c) => `${c.action} ${'routeTableId' in c ? c.routeTableId : '-'} ${c.subnet}`),
    ).toEqual([`route-deleted ${s.tableIds[1]} 10.244.2.0/24`, 'lease-reclaimed - 10.244.2.0/24']);
    expect(report.changes[1]).toMatchObject({
      instanceId: s.hosts[1]!.instanceId,
      reason: expect.stringContaining('a foreign route takes 10.244.2.0/24'),
    });
    expect(await s.lease('10.244.2.0/24')).toBeUndefined();
    expect(await routeTarget(aws.ec2, s.tableIds[0]!, '10.244.2.0/24')).toBe(s.fixture.internetGatewayId);
    expect(await routeTarget(aws.ec2, s.tableIds[1]!, '10.244.2.0/24')).toBeUndefined();
    // the other host keeps its lease and routes
    expect(await s.lease('10.244.1.0/24')).toBeDefined();
    for (const id of s.tableIds)
      expect(await routeTarget(aws.ec2, id, '10.244.1.0/24')).toBe(s.hosts[0]!.networkInterfaceId);
  });

  it('deletes the route to a terminated instance, found through DescribeInstances (moto never marks blackholes), and reclaims its lease', async () => {
    const s = await settled();
    await terminate(aws.ec2, s.hosts[1]!.instanceId);

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes.map((c) => `${c.action} ${c.subnet}`)).toEqual([
      'route-deleted 10.244.2.0/24',
      'route-deleted 10.244.2.0/24',
      'lease-reclaimed 10.244.2.0/24',
    ]);
    expect(await s.lease('10.244.2.0/24')).toBeUndefined();
    for (const id of s.tableIds) {
      expect(await overlayRoutes(aws.ec2, id)).toEqual([['10.244.1.0/24', s.hosts[0]!.networkInterfaceId]]);
    }
  });

  it('repairs every kind of drift with a constant number of Describe calls and one mutation per difference, and never touches a foreign route', async () => {
    const s = await settled({ tables: 3 });
    const foreignBefore = await foreignOf(s);
    const [t0, t1, t2] = s.tableIds;
    await deleteRouteByHand(aws.ec2, t0!, '10.244.1.0/24'); // 1: create
    await replaceRouteByHand(aws.ec2, t1!, '10.244.2.0/24', s.fixture.applianceEniId); // 2: replace
    await createRouteByHand(aws.ec2, t2!, '10.244.77.0/24', s.hosts[0]!.networkInterfaceId); // 3: delete
    await setSourceDestCheck(aws.ec2, s.hosts[1]!.networkInterfaceId, true); // 4: src/dst check

    aws.counter.reset();
    const report = await s.reconciler.reconcile(s.config);

    expect(report.errors).toEqual([]);
    expect(report.changes).toHaveLength(3);
    expect(aws.counter.calls.get('EC2.DescribeRouteTables')).toBe(1);
    expect(aws.counter.calls.get('EC2.DescribeInstances')).toBe(1);
    expect(mutations()).toBe(4);
    expect(await sourceDestCheckOf(aws.ec2, s.hosts[1]!.networkInterfaceId)).toBe(false);
    expect(await foreignOf(s)).toEqual(foreignBefore);

    aws.counter.reset();
    expect((await s.reconciler.reconcile(s.config)).changes).toEqual([]);
    expect(mutations()).toBe(0);
  });

  it('marks lease routes active in the store where the route exists', async () => {
    const s = await scene({ tables: 2 });
    const lease = await s.grant(s.hosts[0]!, '10.244.7.0/24');
    for (const id of s.tableIds)
      await createRouteByHand(aws.ec2, id, '10.244.7.0/24', lease.networkInterfaceId);
    expect((await s.lease('10.244.7.0/24'))?.routes.map((r) => r.state)).toEqual(['pending', 'pending']);

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes).toEqual([]);
    expect((await s.lease('10.244.7.0/24'))?.routes).toEqual(active(s.tableIds));
  });

  it('refreshes the route-table snapshot from the tables it already described', async () => {
    const s = await settled({ tables: 2 });
    aws.counter.reset();
    await s.reconciler.reconcile(s.config);
    expect(aws.counter.calls.get('EC2.DescribeRouteTables')).toBe(1);
    const snapshot = await s.store.getRouteTableSnapshot();
    // local, 0.0.0.0/0, the peering and the appliance's ENI route: the leases' routes are not foreign
    expect(snapshot?.tables).toEqual(s.tableIds.map((routeTableId) => ({ routeTableId, foreignRoutes: 4 })));
    expect(snapshot?.refreshedAt.toISOString()).toBe(T0.toISOString());
  });

  it('covers every route table of the VPC when the config lists none', async () => {
    const s = await scene({ tables: 2, wholeVpc: true });
    await s.grant(s.hosts[0]!, '10.244.7.0/24');

    await s.reconciler.reconcile(s.config);

    const tables = await s.writer.tablesInScope(s.config);
    expect(tables).toHaveLength(3); // the fixture's two and the VPC's main table
    for (const table of tables) {
      expect(await routeTarget(aws.ec2, table.routeTableId, '10.244.7.0/24')).toBe(
        s.hosts[0]!.networkInterfaceId,
      );
    }
  });

  it('records a route it could not delete (injected RequestLimitExceeded), repairs the rest and keeps that lease for the next sweep', async () => {
    const faulty = faultyEc2({ DeleteRoute: { code: 'RequestLimitExceeded', status: 503 } });
    try {
      const s = await scene({ tables: 1, hosts: 3, ec2: faulty.client });
      const [kept, gone, fresh] = s.hosts;
      await s.grant(kept!, '10.244.1.0/24');
      await createRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.1.0/24', kept!.networkInterfaceId);
      await s.grant(gone!, '10.244.2.0/24');
      await createRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.2.0/24', gone!.networkInterfaceId);
      await s.grant(fresh!, '10.244.3.0/24');
      await terminate(aws.ec2, gone!.instanceId);

      const report = await s.reconciler.reconcile(s.config);

      expect(report.errors).toEqual([
        expect.objectContaining({
          subnet: '10.244.2.0/24',
          routeTableId: s.tableIds[0],
          message: expect.stringContaining('throttling'),
        }),
      ]);
      expect(report.changes).toEqual([
        expect.objectContaining({ action: 'route-created', subnet: '10.244.3.0/24' }),
      ]);
      expect(await s.lease('10.244.2.0/24')).toBeDefined(); // routes first: the lease waits
    } finally {
      faulty.dispose();
    }
  });

  it('leaves a route alone when its subnet is granted while the sweep runs', async () => {
    // The grant lands after the sweep listed the leases, so the sweep planned to delete
    // the (then unleased) route; the new holder's route must survive.
    const store = await racingStore();
    const s = await scene({ tables: 1, store });
    const [stale, next] = s.hosts;
    await createRouteByHand(aws.ec2, s.tableIds[0]!, '10.244.6.0/24', stale!.networkInterfaceId);
    store.afterList = async () => {
      const lease = await s.grant(next!, '10.244.6.0/24');
      await s.writer.ensureLeaseRoutes(lease, s.config, {
        sourceDestCheck: false,
        routeTableIds: s.tableIds,
      });
    };

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes).toEqual([]);
    expect(await routeTarget(aws.ec2, s.tableIds[0]!, '10.244.6.0/24')).toBe(next!.networkInterfaceId);
  });

  it('writes the routes back when the subnet it reclaims was granted again meanwhile', async () => {
    // The store answers "not deleted" because a new grant took the expired subnet between
    // the sweep's list() and its delete(); the sweep had already deleted the route.
    const store = await racingStore();
    const s = await scene({ tables: 2, store });
    const [old, next] = s.hosts;
    await s.grant(old!, '10.244.5.0/24', { at: hours(-3), expiresAt: hours(-1) });
    for (const id of s.tableIds)
      await createRouteByHand(aws.ec2, id, '10.244.5.0/24', old!.networkInterfaceId);
    store.beforeDelete = async () => {
      await s.grant(next!, '10.244.5.0/24');
    };

    const report = await s.reconciler.reconcile(s.config);

    expect(report.changes.map((c) => c.action)).not.toContain('lease-reclaimed');
    expect((await s.lease('10.244.5.0/24'))?.instanceId).toBe(next!.instanceId);
    for (const id of s.tableIds) {
      expect(await routeTarget(aws.ec2, id, '10.244.5.0/24')).toBe(next!.networkInterfaceId);
    }
  });
});

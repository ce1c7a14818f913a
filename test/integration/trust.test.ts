/**
 * The trust boundary at the service level, on moto (DESIGN.md "Trust", invariants 4 and 5,
 * the grant interval): each test is an attack a security review reproduced, and what stops it.
 */
import { CreateRouteCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { DynamoDbLeaseStore } from '../../shared/adapters/dynamodb-lease-store.js';
import { formatCidr, parseCidr } from '../../shared/cidr.js';
import { TooManyRequestsError } from '../../shared/errors.js';
import { InstanceEvents } from '../../shared/instance-events.js';
import type { Lease } from '../../shared/lease.js';
import { RouteWriter } from '../../shared/route-writer.js';
import { createControlPlane } from '../support/control-plane.js';
import { createRouteByHand, routesOf, routeTarget, terminate, useMotoEc2 } from '../support/ec2-fixtures.js';

const aws = useMotoEc2();

const manualClock = (start = Date.UTC(2026, 5, 1)) => {
  let now = start;
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };
};

const routeToGateway = (routeTableId: string, destination: string, gatewayId: string) =>
  aws.ec2.send(
    new CreateRouteCommand({
      RouteTableId: routeTableId,
      DestinationCidrBlock: destination,
      GatewayId: gatewayId,
    }),
  );

describe('a gateway route inside Network (invariants 4 and 5)', () => {
  it('is never taken over: a previousSubnet under it gets another subnet, and release leaves it', async () => {
    const plane = await createControlPlane(aws);
    const [host] = await plane.launch();
    const table = plane.vpc.routeTableId;
    await routeToGateway(table, '10.244.250.0/24', plane.vpc.internetGatewayId);
    const { config } = await plane.leases.getConfig();
    await plane.routes.refreshSnapshot(config); // as the reconcile does every five minutes

    const { lease } = await plane.leases.acquire(host!.instanceId, {
      privateIp: host!.privateIp,
      previousSubnet: '10.244.250.0/24',
    });
    expect(lease.subnet).not.toEqual(parseCidr('10.244.250.0/24'));
    await plane.leases.release(host!.instanceId);

    expect(await routeTarget(aws.ec2, table, '10.244.250.0/24')).toBe(plane.vpc.internetGatewayId);
  });

  it('is not replaced when the grant did not know it yet: the grant is undone and another subnet leased', async () => {
    const plane = await createControlPlane(aws);
    const [host] = await plane.launch();
    const table = plane.vpc.routeTableId;
    // written after the snapshot the grant reads: the allocator cannot know it
    await routeToGateway(table, '10.244.251.0/24', plane.vpc.internetGatewayId);

    const { lease } = await plane.leases.acquire(host!.instanceId, {
      privateIp: host!.privateIp,
      previousSubnet: '10.244.251.0/24',
    });

    expect(lease.subnet).not.toEqual(parseCidr('10.244.251.0/24'));
    expect(lease.routes).toEqual([{ routeTableId: table, state: 'active' }]);
    expect(await routeTarget(aws.ec2, table, '10.244.251.0/24')).toBe(plane.vpc.internetGatewayId);
    expect(await plane.store.getBySubnet(parseCidr('10.244.251.0/24'))).toBeUndefined();
  });

  it('blocks every subnet it overlaps: a /23 to a gateway keeps both /24s out of allocation', async () => {
    const plane = await createControlPlane(aws, {
      config: {
        Network: '10.244.0.0/16',
        SubnetMin: '10.244.250.0',
        SubnetMax: '10.244.252.0',
        Backend: { Type: 'aws-vpc' },
      },
    });
    const hosts = await plane.launch(2);
    const table = plane.vpc.routeTableId;
    await routeToGateway(table, '10.244.250.0/23', plane.vpc.internetGatewayId);
    const { config } = await plane.leases.getConfig();
    await plane.routes.refreshSnapshot(config);

    const first = await plane.leases.acquire(hosts[0]!.instanceId, { privateIp: hosts[0]!.privateIp });
    expect(first.lease.subnet).toEqual(parseCidr('10.244.252.0/24'));
    await expect(
      plane.leases.acquire(hosts[1]!.instanceId, { privateIp: hosts[1]!.privateIp }),
    ).rejects.toMatchObject({ code: 'SubnetsExhausted' });
    expect(await routeTarget(aws.ec2, table, '10.244.250.0/23')).toBe(plane.vpc.internetGatewayId);
  });
});

describe('the reconcile and routes it does not own (invariant 4)', () => {
  it('never deletes the hand-made 10.244.0.0/16 or a /25 to a running instance', async () => {
    const plane = await createControlPlane(aws);
    const [host] = await plane.launch();
    const table = plane.vpc.routeTableId;
    await createRouteByHand(aws.ec2, table, '10.244.0.0/16', host!.networkInterfaceId);
    await createRouteByHand(aws.ec2, table, '10.244.9.0/25', host!.networkInterfaceId);
    const { config } = await plane.leases.getConfig();

    const report = await plane.reconciler.reconcile(config);

    expect(report.changes).toEqual([]);
    expect(await routesOf(aws.ec2, table)).toEqual(
      expect.arrayContaining([
        ['10.244.0.0/16', host!.networkInterfaceId],
        ['10.244.9.0/25', host!.networkInterfaceId],
      ]),
    );
  });

  it('shows the ranges foreign routes claim in the routes view', async () => {
    const plane = await createControlPlane(aws);
    const [host] = await plane.launch();
    await createRouteByHand(aws.ec2, plane.vpc.routeTableId, '10.244.9.0/25', host!.networkInterfaceId);
    await routeToGateway(plane.vpc.routeTableId, '10.244.250.0/24', plane.vpc.internetGatewayId);
    const admin = plane.admin;

    const [usage] = await admin.routeUsage();

    expect(usage?.foreignClaims).toEqual(['10.244.250.0/24', '10.244.9.0/25']);
  });
});

describe("deleting a lease's route only while it targets the lease's ENI (instance events)", () => {
  /** The real store on moto; `afterGetByInstance` runs once right after getByInstance read. */
  class RacingStore extends DynamoDbLeaseStore {
    afterGetByInstance: (() => Promise<void>) | undefined;
    override async getByInstance(instanceId: string): Promise<Lease | undefined> {
      const lease = await super.getByInstance(instanceId);
      const race = this.afterGetByInstance;
      this.afterGetByInstance = undefined;
      await race?.();
      return lease;
    }
  }

  it("keeps B's route when B took the dead holder's subnet after the handler read A's lease", async () => {
    const clock = manualClock();
    const plane = await createControlPlane(aws, { clock, leaseTtlSeconds: 120 });
    const [a, b] = await plane.launch(2);
    const table = plane.vpc.routeTableId;
    const { lease: old } = await plane.leases.acquire(a!.instanceId, { privateIp: a!.privateIp });
    const subnet = formatCidr(old.subnet);
    clock.advance(200); // A's lease expired
    await terminate(aws.ec2, a!.instanceId);
    const store = new RacingStore(aws.dynamo, plane.environment.tableName);
    const writer = new RouteWriter({
      routes: plane.routeTables,
      instances: plane.instances,
      store,
      clock,
      vpcId: plane.vpc.vpcId,
    });
    const events = new InstanceEvents({ writer, instances: plane.instances, store, clock });
    store.afterGetByInstance = async () => {
      await plane.leases.acquire(b!.instanceId, {
        privateIp: b!.privateIp,
        previousSubnet: subnet,
      });
    };

    const outcome = await events.onInstanceState(a!.instanceId, 'terminated');

    expect(outcome.action).toBe('none');
    const taken = await plane.store.getBySubnet(old.subnet);
    expect(taken?.instanceId).toBe(b!.instanceId);
    expect(await routeTarget(aws.ec2, table, subnet)).toBe(b!.networkInterfaceId);
    expect(taken?.routes).toEqual([{ routeTableId: table, state: 'active' }]);
  });
});

describe('the grant interval (one new grant per instance per GRANT_INTERVAL_SECONDS)', () => {
  it('answers a release-and-lease-again cycle 429 with Retry-After, before any EC2 call, and lets renewals through', async () => {
    const clock = manualClock();
    const plane = await createControlPlane(aws, { clock, grantIntervalSeconds: 30 });
    const [host] = await plane.launch();
    const request = { privateIp: host!.privateIp };
    await plane.leases.acquire(host!.instanceId, request);
    const renewed = await plane.leases.acquire(host!.instanceId, request);
    expect(renewed.outcome).toBe('renewed');
    clock.advance(10);
    await plane.leases.release(host!.instanceId);

    aws.counter.reset();
    const refused = await plane.leases.acquire(host!.instanceId, request).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(TooManyRequestsError);
    expect((refused as TooManyRequestsError).retryAfterSeconds).toBe(20);
    expect(aws.counter.total('EC2.')).toBe(0);
    expect(await plane.store.getByInstance(host!.instanceId)).toBeUndefined();

    clock.advance(20);
    expect((await plane.leases.acquire(host!.instanceId, request)).outcome).toBe('granted');
  });
});

/**
 * The route limit under concurrency (issue 3, item 3; DESIGN.md invariant 3): capacity per
 * table = RouteLimit - the routes vpc-lease does not own; a grant beyond it is refused with
 * 409 RouteLimitExceeded in the same conditional write that grants, so simultaneous joins
 * never overshoot; EC2's own refusal undoes the grant; an expired lease gives its room back
 * only once its route is gone.
 *
 * The fixture's fullest table holds FOREIGN_IN_FULLEST foreign routes (local, 0.0.0.0/0 ->
 * igw, 192.168.0.0/16 -> pcx, 172.16.0.0/12 -> an appliance ENI, 10.244.0.0/24 -> pcx).
 */
import { describe, expect, it } from 'vitest';
import type { LeaseJson } from '../../shared/http/contract.js';
import { routesOf, useMotoEc2 } from '../support/ec2-fixtures.js';
import { type SdkCall, targetedFault } from '../support/faults.js';
import {
  type Answer,
  createFaultyPlane,
  type FaultyPlane,
  FOREIGN_IN_FULLEST,
} from '../support/faulty-plane.js';
import { scanItems } from '../support/invariants.js';

const aws = useMotoEc2();

const TTL_SECONDS = 3600;

const planeWithCapacity = (capacity: number, hosts: number) =>
  createFaultyPlane(aws, {
    hosts,
    leaseTtlSeconds: TTL_SECONDS,
    config: (routeTableIds) => ({
      Network: '10.244.0.0/16',
      Backend: {
        Type: 'aws-vpc',
        RouteTableID: [...routeTableIds],
        RouteLimit: FOREIGN_IN_FULLEST + capacity,
      },
    }),
  });

/** Routes inside the overlay network to an ENI, per table in scope: vpc-lease's routes. */
async function ownedRoutes(plane: FaultyPlane): Promise<[string, string][][]> {
  return Promise.all(
    plane.routeTableIds.map(async (id) =>
      (await routesOf(aws.ec2, id)).filter(
        ([dest, target]) => dest.startsWith('10.244.') && target.startsWith('eni-'),
      ),
    ),
  );
}

const leaseItems = async (plane: FaultyPlane) =>
  (await scanItems({ client: aws.dynamo, tableName: plane.tableName })).filter((i) =>
    i.pk.startsWith('SUBNET#'),
  );

function expectRouteLimitExceeded(res: Answer, limit: number): void {
  expect(res.statusCode).toBe(409);
  expect(res.body?.error?.code).toBe('RouteLimitExceeded');
  const message = res.body?.error?.message ?? '';
  // used/limit, and what to do: raise the quota and RouteLimit, or use the vxlan backend
  const [, used, said] = /(\d+)\/(\d+) routes in use/.exec(message) ?? [];
  expect(Number(said), message).toBe(limit);
  expect(Number(used), message).toBeGreaterThanOrEqual(limit);
  expect(message).toMatch(/quota/i);
  expect(message).toMatch(/RouteLimit/);
  expect(message).toMatch(/vxlan/);
}

describe('route limit under simultaneous joins', () => {
  it('with RouteLimit = foreign routes + 2, six simultaneous joins get exactly two leases and four 409 RouteLimitExceeded', async () => {
    const plane = await planeWithCapacity(2, 6);
    const limit = FOREIGN_IN_FULLEST + 2;

    const answers = await Promise.all(plane.hosts.map((h) => plane.putLease(h)));

    const granted = answers.filter((a) => a.statusCode === 200);
    const refused = answers.filter((a) => a.statusCode !== 200);
    expect(granted).toHaveLength(2);
    expect(refused).toHaveLength(4);
    for (const res of refused) {
      expectRouteLimitExceeded(res, limit);
      expect(res.body?.error?.details).toMatchObject({ limit, routeTableId: plane.routeTableIds[0] });
    }
    for (const res of granted)
      expect((res.body as LeaseJson).routes.every((r) => r.state === 'active')).toBe(true);
    expect((await ownedRoutes(plane)).map((t) => t.length)).toEqual([2, 2]);
    await plane.check(true);
    plane.dispose();
  });

  it('grants exactly 10 of 100 simultaneous joins against a capacity of 10', async () => {
    const plane = await planeWithCapacity(10, 100);

    const answers = await Promise.all(plane.hosts.map((h) => plane.putLease(h)));

    const byOutcome = new Map<string, number>();
    for (const a of answers) {
      const key = `${a.statusCode} ${a.body?.error?.code ?? ''}`.trim();
      byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(byOutcome)).toEqual({ '200': 10, '409 RouteLimitExceeded': 90 });
    const subnets = answers.filter((a) => a.statusCode === 200).map((a) => a.body?.subnet);
    expect(new Set(subnets).size).toBe(10);
    expect((await ownedRoutes(plane)).map((t) => t.length)).toEqual([10, 10]);
    await plane.check(true);
    plane.dispose();
  }, 120_000);
});

describe('EC2’s own RouteLimitExceeded', () => {
  it('undoes the grant (no lease, no route in any table) and answers the same 409', async () => {
    const plane = await planeWithCapacity(10, 1);
    const host = plane.hosts[0]!;
    const second = plane.routeTableIds[1]!;
    // moto enforces no routes-per-table quota: EC2's refusal is injected, in the second table,
    // so the first table's route was already written and must be taken back.
    plane.faults.policy = targetedFault(
      (call: SdkCall) => call.command === 'CreateRoute' && call.input.RouteTableId === second,
      { kind: 'InjectedRouteLimitExceeded', timing: 'before' },
    );

    const res = await plane.putLease(host);

    expect(plane.faults.injected).toHaveLength(1);
    expect(res.statusCode).toBe(409);
    expect(res.body?.error?.code).toBe('RouteLimitExceeded');
    expect(res.body?.error?.message).toMatch(new RegExp(`${second}: \\d+/\\d+ routes in use`));
    expect(res.body?.error?.message).toMatch(/vxlan/);
    expect(await leaseItems(plane)).toEqual([]);
    expect(await scanItems({ client: aws.dynamo, tableName: plane.tableName })).not.toContainEqual(
      expect.objectContaining({ instanceId: host.instanceId }),
    );
    expect((await ownedRoutes(plane)).map((t) => t.length)).toEqual([0, 0]);
    await plane.check(true);
    plane.dispose();
  });
});

describe('an expired lease frees its capacity only once its route is gone', () => {
  const deleteRouteThrottled = targetedFault((call) => call.command === 'DeleteRoute', {
    kind: 'InjectedRequestLimitExceeded',
    timing: 'before',
  });

  it('refuses a new holder while the expired route cannot be deleted, and grants it once it is', async () => {
    const plane = await planeWithCapacity(1, 2);
    const [a, b] = plane.hosts as [FaultyPlane['hosts'][0], FaultyPlane['hosts'][0]];
    const first = await plane.putLease(a);
    expect(first.statusCode).toBe(200);
    plane.clock.advance(TTL_SECONDS + 1);
    plane.faults.policy = deleteRouteThrottled;

    const blocked = await plane.putLease(b);

    expect(blocked.statusCode).toBe(503);
    expect(blocked.headers['retry-after']).toMatch(/^\d+$/);
    // The expired lease and its route are still there, so its slot is still taken: one route per table.
    expect((await leaseItems(plane)).map((i) => i.instanceId)).toEqual([a.instanceId]);
    expect(await ownedRoutes(plane)).toEqual([
      [[first.body?.subnet, a.networkInterfaceId]],
      [[first.body?.subnet, a.networkInterfaceId]],
    ]);
    await plane.check();

    // Nor does the reconcile reclaim it while the route stays.
    const report = await plane.reconciler.reconcile(plane.config);
    expect(report.errors.length).toBeGreaterThan(0);
    expect(report.changes.filter((c) => c.action === 'lease-reclaimed')).toEqual([]);
    expect(await leaseItems(plane)).toHaveLength(1);

    plane.faults.policy = undefined;
    const granted = await plane.putLease(b);
    expect(granted.statusCode).toBe(200);
    expect((await leaseItems(plane)).map((i) => i.instanceId)).toEqual([b.instanceId]);
    expect(await ownedRoutes(plane)).toEqual([
      [[granted.body?.subnet, b.networkInterfaceId]],
      [[granted.body?.subnet, b.networkInterfaceId]],
    ]);
    await plane.check(true);
    plane.dispose();
  });

  it('passes the capacity of an expired lease to a new holder of the same subnet by replacing its route, never adding one', async () => {
    const plane = await planeWithCapacity(1, 2);
    const [a, b] = plane.hosts as [FaultyPlane['hosts'][0], FaultyPlane['hosts'][0]];
    const first = await plane.putLease(a);
    const subnet = first.body?.subnet as string;
    plane.clock.advance(TTL_SECONDS + 1);
    plane.faults.policy = deleteRouteThrottled; // no delete needed: the route is replaced
    plane.counter.reset();

    const taken = await plane.putLease(b, { privateIp: b.privateIp, previousSubnet: subnet });

    expect(taken.statusCode).toBe(200);
    expect(taken.body?.subnet).toBe(subnet);
    expect(plane.counter.calls.get('EC2.ReplaceRoute')).toBe(2);
    expect(plane.counter.calls.get('EC2.DeleteRoute') ?? 0).toBe(0);
    expect(await ownedRoutes(plane)).toEqual([
      [[subnet, b.networkInterfaceId]],
      [[subnet, b.networkInterfaceId]],
    ]);
    await plane.check(true);
    plane.dispose();
  });
});

describe('RouteLimit lowered by an operator while a host joins', () => {
  // A grant that read the old config (and its larger capacity) before the publish and writes
  // after it: the publish blocks every free slot at or above the new capacity with a
  // tombstone before the new config is visible (shared/slot-keeper.ts), so that grant fails
  // on its slot, retries, and finds no room; or the publish sees the lease and refuses.
  it('accepts a publish that admits the lease in use, and refuses the join it overtook with 409', async () => {
    const plane = await planeWithCapacity(3, 2);
    const [a, b] = plane.hosts as [FaultyPlane['hosts'][0], FaultyPlane['hosts'][0]];
    expect((await plane.putLease(a)).statusCode).toBe(200);

    // b's grant has read the config (capacity 3) and chosen its slot; its write waits until
    // the operator has published a RouteLimit that admits one lease, the one in use.
    let reached!: () => void;
    const atTheWrite = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const published = new Promise<void>((resolve) => {
      release = resolve;
    });
    plane.faults.policy = targetedFault(
      (call) => {
        const first = (
          call.input.TransactItems as { Put?: { Item?: { pk?: { S?: string } } } }[] | undefined
        )?.[0];
        const isGrant =
          call.command === 'TransactWriteItems' && first?.Put?.Item?.pk?.S?.startsWith('SUBNET#');
        if (isGrant) reached();
        return Boolean(isGrant);
      },
      { kind: 'InjectedPause', timing: 'before', until: published },
      1,
    );
    const joining = plane.putLease(b);
    await atTheWrite;

    const publish = await plane.publishRouteLimit(FOREIGN_IN_FULLEST + 1);
    release();
    const joined = await joining;
    await plane.syncConfig();

    // The publish admits the one lease in use, so it is accepted; the join it overtook then
    // finds no room: never both accepted.
    expect(publish.statusCode, JSON.stringify(publish.body)).toBe(200);
    expect(joined.statusCode, JSON.stringify(joined.body)).toBe(409);
    expect(joined.body?.error?.code).toBe('RouteLimitExceeded');
    expect(await plane.cleanStore.getByInstance(b.instanceId)).toBeUndefined();
    expect((await plane.cleanStore.getByInstance(a.instanceId))?.instanceId).toBe(a.instanceId);
    await plane.check();
    plane.dispose();
  });
});

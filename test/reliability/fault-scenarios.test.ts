/**
 * The nastiest single faults, injected deterministically where the random interleavings
 * reach them only rarely: a write that took effect while its caller saw a failure (between
 * the lease write and the route write, between a route delete and the lease delete), and
 * DynamoDB transactions cancelled for conflicts (no condition failed) beyond the store's
 * own retries. Each scenario checks what the client was told against the state left, and
 * DESIGN.md's invariants (test/support/invariants.ts).
 */
import { describe, expect, it } from 'vitest';
import { formatCidr, parseCidr } from '../../shared/cidr.js';
import type { LeaseJson } from '../../shared/http/contract.js';
import { routesOf, terminate, useMotoEc2 } from '../support/ec2-fixtures.js';
import { type FaultDecision, type SdkCall, targetedFault } from '../support/faults.js';
import {
  createFaultyPlane,
  type FaultyPlane,
  FOREIGN_IN_FULLEST,
  stateChange,
} from '../support/faulty-plane.js';
import { scanItems } from '../support/invariants.js';

const aws = useMotoEc2();

// ---------------------------------------------------------------- which call to hit

type Marshalled = { S?: string };
type TransactItem = {
  Put?: { Item?: { pk?: Marshalled } };
  Update?: { Key?: { pk?: Marshalled }; UpdateExpression?: string };
  Delete?: { Key?: { pk?: Marshalled } };
};
const transactItems = (call: SdkCall): TransactItem[] =>
  call.service === 'DynamoDB' && call.command === 'TransactWriteItems'
    ? ((call.input.TransactItems as TransactItem[] | undefined) ?? [])
    : [];

/** The grant: Put SUBNET#, INSTANCE# (+ a place of CAPACITY). */
const isGrant = (call: SdkCall) => transactItems(call)[0]?.Put?.Item?.pk?.S?.startsWith('SUBNET#') ?? false;
/** The renewal: Update expiresAt on both items. */
const isRenewal = (call: SdkCall) =>
  transactItems(call)[0]?.Update?.UpdateExpression?.startsWith('SET expiresAt') ?? false;
/** The lease delete: Delete SUBNET# (+ INSTANCE# while still the lease's, and its place of CAPACITY). */
const isLeaseDelete = (call: SdkCall) =>
  transactItems(call)[0]?.Delete?.Key?.pk?.S?.startsWith('SUBNET#') ?? false;
const isEc2 = (command: string) => (call: SdkCall) => call.service === 'EC2' && call.command === command;

const timeoutAfterTheWrite: FaultDecision = { kind: 'InjectedTimeout', timing: 'after' };
/** The store tries a transaction four times; a conflict lasting longer reaches the service. */
const STORE_ATTEMPTS = 4;
const conflictOn = (mask: number): FaultDecision => ({
  kind: 'InjectedTransactionConflict',
  timing: 'before',
  conflictMask: mask,
});

const MUTATIONS = ['EC2.CreateRoute', 'EC2.ReplaceRoute', 'EC2.DeleteRoute'];
const routeMutations = (plane: FaultyPlane) =>
  MUTATIONS.reduce((sum, key) => sum + (plane.counter.calls.get(key) ?? 0), 0);

async function itemsOf(plane: FaultyPlane, instanceId: string) {
  const items = await scanItems({ client: aws.dynamo, tableName: plane.tableName });
  return items.filter((i) => i.instanceId === instanceId).map((i) => i.pk);
}

async function routesTo(plane: FaultyPlane, subnet: string) {
  return Promise.all(plane.routeTableIds.map(async (id) => new Map(await routesOf(aws.ec2, id)).get(subnet)));
}

async function leased(plane: FaultyPlane): Promise<{ plane: FaultyPlane; lease: LeaseJson }> {
  const host = plane.hosts[0]!;
  const res = await plane.putLease(host);
  expect(res.statusCode).toBe(200);
  return { plane, lease: res.body as LeaseJson };
}

// ---------------------------------------------------------------- writes the caller did not see

describe('a write that took effect while its caller saw a failure', () => {
  it('answers 503 when the grant was written but the answer timed out, and the retry gets that lease with its routes', async () => {
    const plane = await createFaultyPlane(aws, { hosts: 1 });
    const host = plane.hosts[0]!;
    plane.faults.policy = targetedFault(isGrant, timeoutAfterTheWrite, 2);

    const first = await plane.putLease(host);

    expect(first.statusCode).toBe(503);
    expect(first.headers['retry-after']).toMatch(/^\d+$/);
    expect(plane.faults.injected).toHaveLength(2); // the SDK retried once, and the retry's answer was lost too
    const written = await plane.cleanStore.getByInstance(host.instanceId);
    expect(written?.routes.map((r) => r.state)).toEqual(['pending', 'pending']);
    await plane.check();

    plane.faults.policy = undefined;
    const retry = await plane.putLease(host);
    expect(retry.statusCode).toBe(200);
    const lease = retry.body as LeaseJson;
    expect(lease.subnet).toBe(formatCidr(written!.subnet));
    expect(lease.routes.map((r) => r.state)).toEqual(['active', 'active']);
    expect(await routesTo(plane, lease.subnet)).toEqual([host.networkInterfaceId, host.networkInterfaceId]);
    await plane.check(true);
    plane.dispose();
  });

  it('answers 503 when CreateRoute took effect but timed out, keeps the lease with its route pending, and the retry finishes it', async () => {
    const plane = await createFaultyPlane(aws, { hosts: 1 });
    const host = plane.hosts[0]!;
    plane.faults.policy = targetedFault(isEc2('CreateRoute'), timeoutAfterTheWrite, 2);

    const first = await plane.putLease(host);

    expect(first.statusCode).toBe(503);
    expect(first.body?.error?.code).toBe('ServiceUnavailable');
    // says what is true: the lease was kept, only its route is missing
    expect(first.body?.error?.message).toMatch(/lease on 10\.244\.\d+\.0\/24 is kept.*retry PUT \/v1\/lease/);
    expect(first.body?.error?.message).not.toMatch(/nothing was changed/);
    const kept = await plane.cleanStore.getByInstance(host.instanceId);
    expect(kept).toBeDefined();
    expect(kept!.routes.some((r) => r.state === 'pending')).toBe(true);
    await plane.check();

    plane.faults.policy = undefined;
    const retry = await plane.putLease(host);
    expect(retry.statusCode).toBe(200);
    const lease = retry.body as LeaseJson;
    expect(lease.routes.map((r) => r.state)).toEqual(['active', 'active']);
    expect(await routesTo(plane, lease.subnet)).toEqual([host.networkInterfaceId, host.networkInterfaceId]);
    await plane.check(true);
    plane.dispose();
  });

  it('answers 503 when DeleteRoute took effect but timed out, keeps the lease, and the retried DELETE releases everything', async () => {
    const { plane, lease } = await leased(await createFaultyPlane(aws, { hosts: 1 }));
    const host = plane.hosts[0]!;
    plane.faults.policy = targetedFault(isEc2('DeleteRoute'), timeoutAfterTheWrite, 2);

    const first = await plane.deleteLease(host);

    expect(first.statusCode).toBe(503);
    expect(await itemsOf(plane, host.instanceId)).toHaveLength(2); // routes first: the lease waits
    await plane.check();

    plane.faults.policy = undefined;
    expect((await plane.deleteLease(host)).statusCode).toBe(204);
    expect(await itemsOf(plane, host.instanceId)).toEqual([]);
    expect(await routesTo(plane, lease.subnet)).toEqual([undefined, undefined]);
    await plane.check(true);
    plane.dispose();
  });
});

// ---------------------------------------------------------------- conflicts without a failed condition

describe('DynamoDB transactions cancelled for conflicts beyond the store’s retries', () => {
  it('answers a release whose lease delete keeps conflicting with 503, and keeps the whole lease', async () => {
    const { plane } = await leased(await createFaultyPlane(aws, { hosts: 1 }));
    const host = plane.hosts[0]!;
    // every one of the store's attempts conflicts on the subnet item
    plane.faults.policy = targetedFault(isLeaseDelete, conflictOn(0b001), STORE_ATTEMPTS);

    const res = await plane.deleteLease(host);

    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(plane.faults.injected).toHaveLength(STORE_ATTEMPTS);
    expect(await itemsOf(plane, host.instanceId)).toHaveLength(2);
    await plane.check();

    plane.faults.policy = undefined;
    expect((await plane.deleteLease(host)).statusCode).toBe(204);
    expect(await itemsOf(plane, host.instanceId)).toEqual([]);
    plane.dispose();
  });

  it('gives the place back with the lease when only the capacity item conflicts', async () => {
    const { plane } = await leased(await createFaultyPlane(aws, { hosts: 1 }));
    const host = plane.hosts[0]!;
    plane.faults.policy = targetedFault(isLeaseDelete, conflictOn(0b100), STORE_ATTEMPTS);

    const res = await plane.deleteLease(host);

    // All or nothing: the refused release keeps both items.
    expect(res.statusCode).toBe(503);
    expect(plane.faults.injected).toHaveLength(STORE_ATTEMPTS);
    expect(await itemsOf(plane, host.instanceId)).toHaveLength(2);
    await plane.check();

    plane.faults.policy = undefined;
    expect((await plane.deleteLease(host)).statusCode).toBe(204);
    expect(await itemsOf(plane, host.instanceId)).toEqual([]);
    plane.dispose();
  });

  it('keeps the route of a host whose renewal conflicts, and asks it to retry', async () => {
    const { plane, lease } = await leased(await createFaultyPlane(aws, { hosts: 1 }));
    const host = plane.hosts[0]!;
    plane.counter.reset();
    plane.faults.policy = targetedFault(isRenewal, conflictOn(0b111), STORE_ATTEMPTS);

    const res = await plane.putLease(host);

    // A renewal costs no EC2 call: a conflict must not turn it into delete-and-recreate.
    expect(routeMutations(plane), 'route changes during a renewal').toBe(0);
    expect(await routesTo(plane, lease.subnet)).toEqual([host.networkInterfaceId, host.networkInterfaceId]);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    await plane.check();

    plane.faults.policy = undefined;
    const retry = await plane.putLease(host);
    expect(retry.statusCode).toBe(200);
    expect(retry.body?.subnet).toBe(lease.subnet);
    plane.dispose();
  });

  it('fails the event of a terminated host whose lease delete keeps conflicting, so it is retried, and keeps the lease', async () => {
    const { plane } = await leased(await createFaultyPlane(aws, { hosts: 1 }));
    const host = plane.hosts[0]!;
    await terminate(aws.ec2, host.instanceId);
    plane.faults.policy = targetedFault(isLeaseDelete, conflictOn(0b001), STORE_ATTEMPTS);

    const event = plane.stateEvent(stateChange(host.instanceId, 'terminated'));

    await expect(event).rejects.toMatchObject({ status: 503 });
    expect(await itemsOf(plane, host.instanceId)).toHaveLength(2);
    await plane.check();

    // EventBridge delivers it again; this time the delete goes through
    plane.faults.policy = undefined;
    expect(await plane.stateEvent(stateChange(host.instanceId, 'terminated'))).toMatchObject({
      action: 'released',
    });
    expect(await itemsOf(plane, host.instanceId)).toEqual([]);
    plane.dispose();
  });
});

// ---------------------------------------------------------------- a lease re-slotted while it is released

describe('a RouteLimit publish while a lease is being released', () => {
  it('gives the lease’s place back once, under the published capacity', async () => {
    const plane = await createFaultyPlane(aws, {
      hosts: 1,
      config: (routeTableIds) => ({
        Network: '10.244.0.0/16',
        Backend: { Type: 'aws-vpc', RouteTableID: [...routeTableIds], RouteLimit: FOREIGN_IN_FULLEST + 3 },
      }),
    });
    const host = plane.hosts[0]!;
    const granted = await plane.cleanStore.grant(
      {
        subnet: parseCidr('10.244.7.0/24'),
        instanceId: host.instanceId,
        privateIp: host.privateIp,
        networkInterfaceId: host.networkInterfaceId,
        expiresAt: new Date(plane.clock.now().getTime() + 3600_000),
        routes: plane.routeTableIds.map((routeTableId) => ({ routeTableId, state: 'pending' as const })),
      },
      plane.clock.now(),
    );
    expect(granted.granted).toBe(true);
    await plane.cleanReconciler.reconcile(plane.config);

    // The release has read the lease and removed its routes; its delete waits while the
    // operator lowers the capacity to 2.
    let reached!: () => void;
    const atTheDelete = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const published = new Promise<void>((resolve) => {
      release = resolve;
    });
    plane.faults.policy = targetedFault(
      (call) => {
        const hit = isLeaseDelete(call);
        if (hit) reached();
        return hit;
      },
      { kind: 'InjectedPause', timing: 'before', until: published },
      1,
    );
    const releasing = plane.deleteLease(host);
    await atTheDelete;
    const publish = await plane.publishRouteLimit(FOREIGN_IN_FULLEST + 2);
    expect(publish.statusCode).toBe(200);
    await plane.syncConfig();
    expect(await plane.cleanStore.capacity.usage()).toEqual({ used: 1, capacity: 2 });
    release();
    const released = await releasing;

    expect(released.statusCode).toBe(204);
    expect(await itemsOf(plane, host.instanceId)).toEqual([]);
    expect(await plane.cleanStore.capacity.usage()).toEqual({ used: 0, capacity: 2 });
    await plane.check(true);
    plane.dispose();
  });
});

// ---------------------------------------------------------------- routes removed, lease kept

describe('a removal that took the routes but could not delete the lease', () => {
  it('never lets a renewal answer "active" for the routes it removed', async () => {
    const { plane, lease } = await leased(await createFaultyPlane(aws, { hosts: 1 }));
    const host = plane.hosts[0]!;
    plane.faults.policy = targetedFault(isLeaseDelete, { kind: 'InjectedInternalError', timing: 'before' });

    // e.g. the agent's release on exit: routes deleted, then DynamoDB fails the lease delete
    const released = await plane.deleteLease(host);
    expect(released.statusCode).toBe(503);
    expect(await routesTo(plane, lease.subnet)).toEqual([undefined, undefined]);
    expect(await itemsOf(plane, host.instanceId)).toHaveLength(2);

    // ...and the agent starts again: the removal recorded the routes pending before deleting
    // them, so the renewal writes them back instead of trusting a stale "active".
    plane.faults.policy = undefined;
    const renewed = await plane.putLease(host);
    expect(renewed.statusCode).toBe(200);
    expect((renewed.body as LeaseJson).routes.map((r) => r.state)).toEqual(['active', 'active']);
    expect(await routesTo(plane, lease.subnet)).toEqual([host.networkInterfaceId, host.networkInterfaceId]);
    await plane.check(true);
    plane.dispose();
  });
});

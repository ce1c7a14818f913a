/**
 * The route capacity's ledger (CapacityLedger, shared/adapters/dynamodb-capacity-ledger.ts)
 * against moto: its conditions decide invariant 3, so they are tested on the engine.
 */
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbLeaseStore } from '../../shared/adapters/dynamodb-lease-store.js';
import { parseCidr } from '../../shared/cidr.js';
import type { NewLease } from '../../shared/ports.js';
import { useMoto } from '../support/aws.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const HOUR = new Date(T0.getTime() + 3600_000);

const lease = (n: number): NewLease => ({
  subnet: parseCidr(`10.244.${n}.0/24`),
  instanceId: `i-${String(n).padStart(17, '0')}`,
  privateIp: `10.0.0.${n}`,
  networkInterfaceId: `eni-${String(n).padStart(17, '0')}`,
  expiresAt: HOUR,
  routes: [],
});

describe('the capacity ledger (against moto)', () => {
  const aws = useMoto();
  const newStore = async () => new DynamoDbLeaseStore(aws.dynamo, await aws.newTable());

  it('has no usage before its first resize, and admits no lease then', async () => {
    const store = await newStore();
    expect(await store.capacity.usage()).toBeUndefined();
    expect(await store.grant(lease(1), T0)).toEqual({ granted: false, conflicts: ['no-capacity'] });
  });

  it('grants exactly `capacity` of 20 simultaneous leases on distinct subnets', async () => {
    const store = await newStore();
    await store.capacity.resize(5, 50);

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.grant(lease(i + 1), T0)));

    expect(results.filter((r) => r.granted)).toHaveLength(5);
    expect(results.filter((r) => !r.granted && r.conflicts.includes('no-capacity'))).toHaveLength(15);
    expect((await store.list()).length).toBe(5);
    expect(await store.capacity.usage()).toEqual({ used: 5, capacity: 5 });
  });

  it('resizes to the capacity the tables leave, even below use (grants wait until leases go)', async () => {
    const store = await newStore();
    await store.capacity.resize(3, 50);
    for (const n of [1, 2, 3]) expect((await store.grant(lease(n), T0)).granted).toBe(true);

    expect(await store.capacity.resize(2, 50)).toEqual({ used: 3, capacity: 2 });
    expect(await store.grant(lease(4), T0)).toMatchObject({ granted: false, conflicts: ['no-capacity'] });

    const [first, second] = await store.list();
    await store.delete(first!);
    expect(await store.grant(lease(4), T0)).toMatchObject({ granted: false, conflicts: ['no-capacity'] });
    await store.delete(second!);
    expect((await store.grant(lease(4), T0)).granted).toBe(true);
    expect(await store.capacity.usage()).toEqual({ used: 2, capacity: 2 });
  });

  it('skips a resize computed from another RouteLimit than the one last published', async () => {
    const store = await newStore();
    await store.capacity.resize(48, 50);

    expect(await store.capacity.resize(98, 100)).toBeUndefined();

    expect(await store.capacity.usage()).toEqual({ used: 0, capacity: 48 });
  });

  it('counts the leases a table already holds when it is first resized', async () => {
    // A table written before the ledger existed: lease items, no CAPACITY item.
    const table = await aws.newTable();
    const store = new DynamoDbLeaseStore(aws.dynamo, table);
    await store.capacity.resize(10, 50);
    for (const n of [1, 2, 3]) await store.grant(lease(n), T0);
    await aws.dynamo.send(new DeleteCommand({ TableName: table, Key: { pk: 'CAPACITY' } }));
    expect(await store.capacity.usage()).toBeUndefined();

    expect(await store.capacity.resize(10, 50)).toEqual({ used: 3, capacity: 10 });
  });
});

import { describe, expect, it } from 'vitest';
import { DynamoDbLeaseStore } from '../../shared/adapters/dynamodb-lease-store.js';
import { parseCidr } from '../../shared/cidr.js';
import { parseNetworkConfig } from '../../shared/network-config.js';
import type { NewLease } from '../../shared/ports.js';
import { useMoto } from '../support/aws.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const later = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

const lease = (overrides: Partial<NewLease> = {}): NewLease => ({
  subnet: parseCidr('10.244.7.0/24'),
  instanceId: 'i-0000000000000000a',
  privateIp: '10.0.0.10',
  networkInterfaceId: 'eni-0000000000000000a',
  expiresAt: later(3600),
  routes: [{ routeTableId: 'rtb-00000001', state: 'pending' }],
  ...overrides,
});

describe('DynamoDbLeaseStore (against moto)', () => {
  const aws = useMoto();
  /** A store on a fresh table whose route capacity admits `capacity` leases. */
  const newStore = async (capacity = 10) => {
    const store = new DynamoDbLeaseStore(aws.dynamo, await aws.newTable());
    await store.capacity.resize(capacity, 50);
    return store;
  };

  it('grants a free subnet and reads it back by subnet and by instance', async () => {
    const store = await newStore();
    const result = await store.grant(lease(), T0);
    expect(result.granted).toBe(true);
    const bySubnet = await store.getBySubnet(parseCidr('10.244.7.0/24'));
    expect(bySubnet).toMatchObject({
      instanceId: 'i-0000000000000000a',
      networkInterfaceId: 'eni-0000000000000000a',
    });
    expect(bySubnet?.expiresAt.toISOString()).toBe(later(3600).toISOString());
    expect(await store.getByInstance('i-0000000000000000a')).toEqual(bySubnet);
  });

  it('refuses a subnet held by a live lease, naming the subnet as the conflict', async () => {
    const store = await newStore();
    await store.grant(lease(), T0);
    const second = await store.grant(lease({ instanceId: 'i-0000000000000000b' }), later(10));
    expect(second).toEqual({ granted: false, conflicts: ['subnet-taken'] });
    expect((await store.getBySubnet(parseCidr('10.244.7.0/24')))?.instanceId).toBe('i-0000000000000000a');
  });

  it('refuses a second lease for an instance that holds a live one', async () => {
    const store = await newStore();
    await store.grant(lease(), T0);
    const second = await store.grant(lease({ subnet: parseCidr('10.244.8.0/24') }), later(10));
    expect(second).toEqual({ granted: false, conflicts: ['instance-has-lease'] });
    expect(await store.getBySubnet(parseCidr('10.244.8.0/24'))).toBeUndefined();
  });

  it('refuses a lease on a new subnet when every place of the capacity is held, and writes nothing', async () => {
    const store = await newStore(1);
    await store.grant(lease(), T0);
    const second = await store.grant(
      lease({ subnet: parseCidr('10.244.8.0/24'), instanceId: 'i-0000000000000000b' }),
      later(10),
    );
    expect(second).toEqual({
      granted: false,
      conflicts: ['no-capacity'],
      capacity: { used: 1, capacity: 1 },
    });
    expect(await store.getBySubnet(parseCidr('10.244.8.0/24'))).toBeUndefined();
    expect(await store.getByInstance('i-0000000000000000b')).toBeUndefined();
    expect(await store.capacity.usage()).toEqual({ used: 1, capacity: 1 });
  });

  it('lets an expired lease be taken over atomically, keeping the place it held', async () => {
    const store = await newStore(1);
    await store.grant(lease({ expiresAt: later(60) }), T0);
    const takeover = await store.grant(
      lease({ instanceId: 'i-0000000000000000b', expiresAt: later(7200) }),
      later(61),
    );
    expect(takeover.granted).toBe(true);
    expect((await store.getBySubnet(parseCidr('10.244.7.0/24')))?.instanceId).toBe('i-0000000000000000b');
    // the old holder's claim no longer resolves to a lease
    expect(await store.getByInstance('i-0000000000000000a')).toBeUndefined();
    expect(await store.capacity.usage()).toEqual({ used: 1, capacity: 1 });
  });

  it('never gives an expired lease’s place to another subnet: that lease must be reclaimed first', async () => {
    const store = await newStore(1);
    await store.grant(lease({ expiresAt: later(60) }), T0);
    const other = await store.grant(
      lease({ subnet: parseCidr('10.244.8.0/24'), instanceId: 'i-0000000000000000b' }),
      later(61),
    );
    expect(other).toEqual({ granted: false, conflicts: ['no-capacity'], capacity: { used: 1, capacity: 1 } });
  });

  it('renews only while both items are still the holder’s', async () => {
    const store = await newStore();
    const granted = await store.grant(lease({ expiresAt: later(60) }), T0);
    if (!granted.granted) throw new Error('grant failed');
    const renewed = await store.renew(granted.lease, later(7200));
    expect(renewed?.expiresAt.toISOString()).toBe(later(7200).toISOString());
    expect((await store.getBySubnet(parseCidr('10.244.7.0/24')))?.expiresAt.toISOString()).toBe(
      later(7200).toISOString(),
    );

    // Lost to a takeover after expiry: renewing the old lease must fail and change nothing.
    const expired = await store.grant(
      lease({
        subnet: parseCidr('10.244.9.0/24'),
        instanceId: 'i-0000000000000000c',
        expiresAt: later(60),
      }),
      T0,
    );
    if (!expired.granted) throw new Error('grant failed');
    await store.grant(
      lease({ subnet: parseCidr('10.244.9.0/24'), instanceId: 'i-0000000000000000d' }),
      later(61),
    );
    expect(await store.renew(expired.lease, later(9999))).toBeUndefined();
    expect((await store.getBySubnet(parseCidr('10.244.9.0/24')))?.instanceId).toBe('i-0000000000000000d');
  });

  it('deletes a lease only for its holder, and a reclaim only while it is still expired', async () => {
    const store = await newStore(1);
    const granted = await store.grant(lease({ expiresAt: later(60) }), T0);
    if (!granted.granted) throw new Error('grant failed');
    expect(await store.delete(granted.lease, { onlyIfExpiredAt: later(30) })).toBe(false);
    expect(await store.delete({ ...granted.lease, instanceId: 'i-0000000000000000f' })).toBe(false);
    expect(await store.getBySubnet(parseCidr('10.244.7.0/24'))).toBeDefined();
    expect(await store.delete(granted.lease, { onlyIfExpiredAt: later(61) })).toBe(true);
    expect(await store.getBySubnet(parseCidr('10.244.7.0/24'))).toBeUndefined();
    expect(await store.getByInstance('i-0000000000000000a')).toBeUndefined();
    // subnet, instance and the place are all free again
    expect(await store.capacity.usage()).toEqual({ used: 0, capacity: 1 });
    const again = await store.grant(
      lease({ subnet: parseCidr('10.244.8.0/24'), instanceId: 'i-0000000000000000a' }),
      later(62),
    );
    expect(again.granted).toBe(true);
  });

  it('reports occupancy: live and expired subnets, of the whole table or of some subnets', async () => {
    const store = await newStore();
    await store.grant(lease({ expiresAt: later(60) }), T0);
    await store.grant(lease({ subnet: parseCidr('10.244.8.0/24'), instanceId: 'i-0000000000000000b' }), T0);
    const occupancy = await store.occupancy(later(61));
    expect([...occupancy.subnets].sort()).toEqual(['10.244.7.0/24', '10.244.8.0/24']);
    expect([...occupancy.expiredSubnets]).toEqual(['10.244.7.0/24']);
    const some = await store.occupancyOf(
      ['10.244.7.0/24', '10.244.9.0/24', '10.244.10.0/24'].map(parseCidr),
      later(61),
    );
    expect(some).toEqual({ subnets: new Set(['10.244.7.0/24']), expiredSubnets: new Set(['10.244.7.0/24']) });
  });

  it('publishes the config with optimistic concurrency, and the capacity with it', async () => {
    const store = await newStore();
    const config = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' } });
    const first = await store.putConfig(config, undefined, T0, 40);
    expect(first.version).toBe(1);
    await expect(store.putConfig(config, undefined, T0, 30)).rejects.toMatchObject({ code: 'Conflict' });
    await expect(store.putConfig(config, 7, T0, 30)).rejects.toMatchObject({ code: 'Conflict' });
    expect(await store.capacity.usage()).toEqual({ used: 0, capacity: 40 });
    const second = await store.putConfig(config, 1, T0, 48);
    expect(second.version).toBe(2);
    const read = await store.getConfig();
    expect(read?.version).toBe(2);
    expect(read?.config.subnetLen).toBe(24);
    expect(await store.capacity.usage()).toEqual({ used: 0, capacity: 48 });
  });

  it('refuses a publish whose capacity is below the places held, and changes neither config nor capacity', async () => {
    const store = await newStore();
    const config = parseNetworkConfig({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteLimit: 50 },
    });
    await store.putConfig(config, undefined, T0, 10);
    await store.grant(lease(), T0);
    await store.grant(lease({ subnet: parseCidr('10.244.8.0/24'), instanceId: 'i-0000000000000000b' }), T0);
    const lower = parseNetworkConfig({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteLimit: 3 },
    });

    await expect(store.putConfig(lower, 1, T0, 1)).rejects.toMatchObject({
      name: 'CapacityBelowUseError',
      status: 409,
      used: 2,
      capacity: 1,
    });
    expect((await store.getConfig())?.version).toBe(1);
    expect(await store.capacity.usage()).toEqual({ used: 2, capacity: 10 });
    expect((await store.putConfig(lower, 1, T0, 2)).version).toBe(2);
  });

  it('under 50 simultaneous grants for one subnet, exactly one wins', async () => {
    const store = await newStore();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.grant(lease({ instanceId: `i-${String(i).padStart(17, '0')}` }), T0),
      ),
    );
    expect(results.filter((r) => r.granted)).toHaveLength(1);
    expect(await store.capacity.usage()).toEqual({ used: 1, capacity: 10 });
  });
});

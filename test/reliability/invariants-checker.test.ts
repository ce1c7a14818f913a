/**
 * The invariant checker of the reliability suites must be able to fail: each violation
 * DESIGN.md forbids, built by hand as raw items and route tables, is reported; a
 * consistent state is not.
 */
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../shared/network-config.js';
import {
  findViolations,
  foreignRoutesOf,
  type ObservedState,
  type ObservedTable,
  type RawItem,
} from '../support/invariants.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const LIVE = NOW.getTime() + 3600_000;
const EXPIRED = NOW.getTime() - 1;
const config = parseNetworkConfig({
  Network: '10.244.0.0/16',
  Backend: { Type: 'aws-vpc', RouteTableID: ['rtb-0aaaaaaaaaaaaaaaa'], RouteLimit: 6 },
});

function lease(subnet: string, instanceId: string, slot: number, expiresAt = LIVE): RawItem[] {
  const eni = `eni-${instanceId.slice(2)}`;
  const routes = [{ routeTableId: 'rtb-0aaaaaaaaaaaaaaaa', state: 'active' }];
  return [
    { pk: `SUBNET#${subnet}`, subnet, instanceId, networkInterfaceId: eni, expiresAt, slot, routes },
    { pk: `INSTANCE#${instanceId}`, subnet, instanceId, expiresAt, slot },
    { pk: `SLOT#${slot}`, subnet, instanceId, expiresAt },
  ];
}

const foreign = [
  { destination: '10.0.0.0/16', otherTarget: 'local', state: 'active', origin: 'CreateRouteTable' },
  { destination: '0.0.0.0/0', otherTarget: 'igw-1', state: 'active', origin: 'CreateRoute' },
  { destination: '10.244.0.0/24', otherTarget: 'pcx-1', state: 'active', origin: 'CreateRoute' },
];
const route = (subnet: string, instanceId: string) => ({
  destination: subnet,
  networkInterfaceId: `eni-${instanceId.slice(2)}`,
  state: 'active',
  origin: 'CreateRoute',
});
const table = (...owned: ReturnType<typeof route>[]): ObservedTable => ({
  routeTableId: 'rtb-0aaaaaaaaaaaaaaaa',
  inScope: true,
  routes: [...foreign, ...owned],
});
const instance = (instanceId: string, state = 'running') => ({
  instanceId,
  state,
  networkInterfaces: [{ networkInterfaceId: `eni-${instanceId.slice(2)}`, sourceDestCheck: false }],
});

const A = 'i-0000000000000000a';
const B = 'i-0000000000000000b';
const good: ObservedState = {
  items: [...lease('10.244.1.0/24', A, 0), ...lease('10.244.2.0/24', B, 1)],
  tables: [table(route('10.244.1.0/24', A), route('10.244.2.0/24', B))],
  instances: [instance(A), instance(B)],
};
const foreignBefore = foreignRoutesOf(config, good.tables);
const violations = (state: Partial<ObservedState>, settled = false) =>
  findViolations({ ...good, ...state }, { config, now: NOW, foreignBefore, settled });

describe('checkInvariants (findViolations on hand-made states)', () => {
  it('finds nothing wrong with a consistent state, settled or not', () => {
    expect(violations({})).toEqual([]);
    expect(violations({}, true)).toEqual([]);
  });

  it('ignores expired items, which may disagree with anything', () => {
    const stale = lease('10.244.3.0/24', A, 5, EXPIRED).map((i) => ({ ...i, pk: i.pk.replace(A, 'i-old') }));
    expect(violations({ items: [...good.items, ...stale] })).toEqual([]);
  });

  it('1: reports a live SLOT or INSTANCE item that no live lease names back', () => {
    const orphanSlot = { pk: 'SLOT#2', subnet: '10.244.9.0/24', instanceId: A, expiresAt: LIVE };
    expect(violations({ items: [...good.items, orphanSlot] })).toEqual([
      expect.stringMatching(/^1: live SLOT#2 claims 10\.244\.9\.0\/24/),
    ]);
    const noInstance = good.items.filter((i) => i.pk !== `INSTANCE#${B}`);
    expect(violations({ items: noInstance })).toEqual([
      expect.stringMatching(/^1: live lease 10\.244\.2\.0\/24 .* no live INSTANCE/),
    ]);
  });

  it('1: reports overlapping live leases and a subnet outside the leasable range', () => {
    const overlap = lease('10.244.2.0/23', 'i-0000000000000000c', 2);
    expect(violations({ items: [...good.items, ...overlap] })).toContainEqual(
      expect.stringMatching(/^1: .* overlap/),
    );
    const outside = lease('10.245.0.0/24', 'i-0000000000000000d', 3);
    expect(violations({ items: [...good.items, ...outside] })).toContainEqual(
      expect.stringMatching(/not a leasable subnet/),
    );
  });

  it('2: reports an instance holding two live leases', () => {
    const second = lease('10.244.3.0/24', A, 2).filter((i) => !i.pk.startsWith('INSTANCE#'));
    expect(violations({ items: [...good.items, ...second] })).toContainEqual(
      expect.stringMatching(/^2: .* holds 2 live leases/),
    );
  });

  it('3: reports more live leases than RouteLimit minus foreign routes, and slots beyond the capacity', () => {
    // capacity = 6 - 3 foreign = 3
    const more = [
      ...lease('10.244.3.0/24', 'i-0000000000000000c', 2),
      ...lease('10.244.4.0/24', 'i-0000000000000000d', 7),
    ];
    const found = violations({ items: [...good.items, ...more] });
    expect(found).toContainEqual(expect.stringMatching(/^3: 4 live leases but rtb-0a+ admits 3/));
    expect(found).toContainEqual(expect.stringMatching(/^3: live SLOT#7 is outside the capacity 0-2/));
  });

  it('3: accepts tombstones above the capacity, reports malformed slot items and, settled, tombstones below it', () => {
    const above = { pk: 'SLOT#5', blocked: true };
    expect(violations({ items: [...good.items, above] }, true)).toEqual([]);
    const below = { pk: 'SLOT#2', blocked: true };
    expect(violations({ items: [...good.items, below] })).toEqual([]);
    expect(violations({ items: [...good.items, below] }, true)).toEqual([
      expect.stringMatching(/^settled: SLOT#2 is blocked below the capacity 3/),
    ]);
    const forever = { pk: 'SLOT#2', subnet: '10.244.9.0/24', instanceId: A };
    expect(violations({ items: [...good.items, forever] })).toEqual([
      expect.stringMatching(/^3: SLOT#2 is neither a lease's claim nor a tombstone/),
    ]);
  });

  it('4: reports a foreign route changed, removed or added, in any table', () => {
    const changed: ObservedTable = {
      ...good.tables[0]!,
      routes: good.tables[0]!.routes.map((r) =>
        r.destination === '0.0.0.0/0' ? { ...r, otherTarget: 'igw-2' } : r,
      ),
    };
    expect(violations({ tables: [changed] })).toEqual([
      expect.stringMatching(/^4: foreign routes of rtb-0a+ changed or removed: 0\.0\.0\.0\/0 -> igw-1/),
      expect.stringMatching(/^4: routes vpc-lease does not own appeared in rtb-0a+: 0\.0\.0\.0\/0 -> igw-2/),
    ]);
    const outOfScope: ObservedTable = {
      routeTableId: 'rtb-0bbbbbbbbbbbbbbbb',
      inScope: false,
      routes: [route('10.244.5.0/24', A)],
    };
    const before = foreignRoutesOf(config, [...good.tables, outOfScope]);
    const touched = findViolations(
      { ...good, tables: [...good.tables, { ...outOfScope, routes: [] }] },
      { config, now: NOW, foreignBefore: before },
    );
    expect(touched).toEqual([
      expect.stringMatching(/^4: foreign routes of rtb-0b+ changed or removed: 10\.244\.5\.0\/24/),
    ]);
  });

  it('settled: reports a missing route, a route to the wrong ENI, an orphan route and a dead holder', () => {
    expect(violations({ tables: [table(route('10.244.1.0/24', A))] }, true)).toContainEqual(
      expect.stringMatching(/live lease 10\.244\.2\.0\/24 .* no active route/),
    );
    expect(
      violations({ tables: [table(route('10.244.1.0/24', A), route('10.244.2.0/24', A))] }, true),
    ).toContainEqual(
      expect.stringMatching(/^4: rtb-0a+: 10\.244\.2\.0\/24 -> eni-.*a \[active\] does not target/),
    );
    expect(
      violations(
        { tables: [table(route('10.244.1.0/24', A), route('10.244.2.0/24', B), route('10.244.9.0/24', B))] },
        true,
      ),
    ).toEqual([expect.stringMatching(/^4: rtb-0a+: 10\.244\.9\.0\/24 .* no live lease holds it/)]);
    expect(violations({ instances: [instance(A), instance(B, 'terminated')] }, true)).toEqual([
      expect.stringMatching(/held by i-0+b, which is terminated/),
    ]);
  });
});

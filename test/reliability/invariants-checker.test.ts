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

function lease(subnet: string, instanceId: string, expiresAt = LIVE): RawItem[] {
  const eni = `eni-${instanceId.slice(2)}`;
  const routes = [{ routeTableId: 'rtb-0aaaaaaaaaaaaaaaa', state: 'active' }];
  return [
    { pk: `SUBNET#${subnet}`, subnet, instanceId, networkInterfaceId: eni, expiresAt, routes },
    { pk: `INSTANCE#${instanceId}`, subnet, instanceId, expiresAt },
  ];
}

/** The capacity ledger as the store keeps it: one place per lease item; capacity 6 - 3 foreign. */
const ledgerFor = (items: readonly RawItem[]): RawItem => ({
  pk: 'CAPACITY',
  used: items.filter((i) => i.pk.startsWith('SUBNET#')).length,
  capacity: 3,
  routeLimit: 6,
});

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
const GOOD_LEASES = [...lease('10.244.1.0/24', A), ...lease('10.244.2.0/24', B)];
const good: ObservedState = {
  items: [...GOOD_LEASES, ledgerFor(GOOD_LEASES)],
  tables: [table(route('10.244.1.0/24', A), route('10.244.2.0/24', B))],
  instances: [instance(A), instance(B)],
};
const foreignBefore = foreignRoutesOf(config, good.tables);
/** The violations of `good` changed by `state`; its ledger, where left in, counts the items given. */
const violations = (state: Partial<ObservedState>, settled = false) => {
  const given = state.items ?? good.items;
  const items = given.map((i) => (i === good.items.at(-1) ? ledgerFor(given) : i));
  return findViolations({ ...good, ...state, items }, { config, now: NOW, foreignBefore, settled });
};

describe('checkInvariants (findViolations on hand-made states)', () => {
  it('finds nothing wrong with a consistent state, settled or not', () => {
    expect(violations({})).toEqual([]);
    expect(violations({}, true)).toEqual([]);
  });

  it('ignores expired items, which may disagree with anything', () => {
    const stale = lease('10.244.3.0/24', A, EXPIRED).map((i) => ({ ...i, pk: i.pk.replace(A, 'i-old') }));
    expect(violations({ items: [...good.items, ...stale] })).toEqual([]);
  });

  it('1: reports a live INSTANCE item that no live lease names back, and a lease without one', () => {
    const orphan = {
      pk: 'INSTANCE#i-0000000000000000c',
      subnet: '10.244.9.0/24',
      instanceId: 'i-0000000000000000c',
      expiresAt: LIVE,
    };
    expect(violations({ items: [...good.items, orphan] })).toEqual([
      expect.stringMatching(/^1: live INSTANCE#i-0+c claims 10\.244\.9\.0\/24/),
    ]);
    const noInstance = good.items.filter((i) => i.pk !== `INSTANCE#${B}`);
    expect(violations({ items: noInstance })).toEqual([
      expect.stringMatching(/^1: live lease 10\.244\.2\.0\/24 .* no live INSTANCE/),
    ]);
  });

  it('1: reports overlapping live leases and a subnet outside the leasable range', () => {
    const overlap = lease('10.244.2.0/23', 'i-0000000000000000c');
    expect(violations({ items: [...good.items, ...overlap] })).toContainEqual(
      expect.stringMatching(/^1: .* overlap/),
    );
    const outside = lease('10.245.0.0/24', 'i-0000000000000000d');
    expect(violations({ items: [...good.items, ...outside] })).toContainEqual(
      expect.stringMatching(/not a leasable subnet/),
    );
  });

  it('2: reports an instance holding two live leases', () => {
    const second = lease('10.244.3.0/24', A).filter((i) => !i.pk.startsWith('INSTANCE#'));
    expect(violations({ items: [...good.items, ...second] })).toContainEqual(
      expect.stringMatching(/^2: .* holds 2 live leases/),
    );
  });

  it('3: reports more live leases than RouteLimit minus foreign routes', () => {
    // capacity = 6 - 3 foreign = 3
    const more = [
      ...lease('10.244.3.0/24', 'i-0000000000000000c'),
      ...lease('10.244.4.0/24', 'i-0000000000000000d'),
    ];
    expect(violations({ items: [...good.items, ...more] })).toContainEqual(
      expect.stringMatching(/^3: 4 live leases but rtb-0a+ admits 3/),
    );
  });

  it('3: reports a ledger that does not count every lease item, or admits more than RouteLimit', () => {
    const expired = lease('10.244.3.0/24', 'i-0000000000000000c', EXPIRED);
    const undercount = { pk: 'CAPACITY', used: 2, capacity: 3, routeLimit: 6 };
    const leases = good.items.filter((i) => i.pk !== 'CAPACITY');
    expect(violations({ items: [...leases, ...expired, undercount] })).toEqual([
      expect.stringMatching(/^3: CAPACITY counts 2 places but the table holds 3 lease items/),
    ]);
    const beyond = { pk: 'CAPACITY', used: 2, capacity: 7, routeLimit: 6 };
    expect(violations({ items: [...leases, beyond] })).toEqual([
      expect.stringMatching(/^3: CAPACITY admits 7, more than RouteLimit 6/),
    ]);
  });

  it('settled: reports a ledger whose capacity is not the one the tables leave', () => {
    const stale = { pk: 'CAPACITY', used: 2, capacity: 2, routeLimit: 6 };
    const leases = good.items.filter((i) => i.pk !== 'CAPACITY');
    expect(violations({ items: [...leases, stale] })).toEqual([]);
    expect(violations({ items: [...leases, stale] }, true)).toEqual([
      expect.stringMatching(/^settled: CAPACITY admits 2 but the tables leave 3/),
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

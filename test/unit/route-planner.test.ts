import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contains, formatCidr, parseCidr } from '../../shared/cidr.js';
import type { Lease } from '../../shared/lease.js';
import { parseNetworkConfig } from '../../shared/network-config.js';
import type { InstanceInfo, RouteEntry, RouteTable } from '../../shared/ports.js';
import { capacity, routeTableSnapshot, routeUsage } from '../../shared/route-capacity.js';
import {
  applyRouteChanges,
  type DeadHolders,
  findDeadHolders,
  isTakenByForeign,
  leaseRouteStates,
  NO_DEAD_HOLDERS,
  planRoutes,
  type RouteChange,
} from '../../shared/route-planner.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const LATER = new Date(NOW.getTime() + 3600_000);
const EARLIER = new Date(NOW.getTime() - 3600_000);

const config = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 50 } });

const hex = (n: number) => n.toString(16).padStart(17, '0');
const instanceId = (n: number) => `i-${hex(n)}`;
const eniId = (n: number) => `eni-${hex(n)}`;

function lease(n: number, options: { expiresAt?: Date; subnet?: string } = {}): Lease {
  return {
    subnet: parseCidr(options.subnet ?? `10.244.${n}.0/24`),
    instanceId: instanceId(n),
    privateIp: `10.0.0.${n}`,
    networkInterfaceId: eniId(n),
    expiresAt: options.expiresAt ?? LATER,
    routes: [],
  };
}

const FOREIGN: RouteEntry[] = [
  { destination: '10.0.0.0/16', otherTarget: 'local', state: 'active', origin: 'CreateRouteTable' },
  { destination: '0.0.0.0/0', otherTarget: 'igw-0123456789abcdef0', state: 'active', origin: 'CreateRoute' },
  {
    destination: '192.168.0.0/16',
    otherTarget: 'pcx-0123456789abcdef0',
    state: 'active',
    origin: 'CreateRoute',
  },
  // an ENI route outside Network: the target kind is ours, the destination is not
  { destination: '172.16.0.0/12', networkInterfaceId: eniId(999), state: 'active', origin: 'CreateRoute' },
  // a blackhole outside Network: still someone else's to clean up
  { destination: '10.245.0.0/24', networkInterfaceId: eniId(998), state: 'blackhole', origin: 'CreateRoute' },
  {
    destination: 'pl-0123456789abcdef0',
    otherTarget: 'vgw-0123456789abcdef0',
    state: 'active',
    origin: 'CreateRoute',
  },
];

const eniRoute = (destination: string, eni: string, state: RouteEntry['state'] = 'active'): RouteEntry => ({
  destination,
  networkInterfaceId: eni,
  state,
  origin: 'CreateRoute',
});

const table = (routeTableId: string, routes: RouteEntry[] = []): RouteTable => ({
  routeTableId,
  vpcId: 'vpc-0123456789abcdef0',
  routes: [...FOREIGN, ...routes],
});

const plan = (tables: RouteTable[], leases: Lease[], dead: DeadHolders = NO_DEAD_HOLDERS) =>
  planRoutes({ config, tables, leases, dead, now: NOW });

const summary = (changes: readonly RouteChange[]) =>
  changes.map((c) => `${c.action} ${c.routeTableId} ${c.destination}`).sort();

describe('planRoutes', () => {
  it('creates the missing route of a live lease in every table', () => {
    const result = plan([table('rtb-a'), table('rtb-b')], [lease(7)]);
    expect(summary(result.changes)).toEqual(['create rtb-a 10.244.7.0/24', 'create rtb-b 10.244.7.0/24']);
    expect(result.changes[0]).toMatchObject({ networkInterfaceId: eniId(7), instanceId: instanceId(7) });
  });

  it('plans nothing when every live lease has its route to its ENI', () => {
    const tables = [table('rtb-a', [eniRoute('10.244.7.0/24', eniId(7))])];
    expect(plan(tables, [lease(7)]).changes).toEqual([]);
  });

  it('replaces a route to a live lease subnet that points to another ENI (never delete-then-create)', () => {
    const tables = [table('rtb-a', [eniRoute('10.244.7.0/24', eniId(99))])];
    const result = plan(tables, [lease(7)]);
    expect(result.changes).toEqual([
      expect.objectContaining({
        action: 'replace',
        destination: '10.244.7.0/24',
        networkInterfaceId: eniId(7),
        previousTarget: eniId(99),
      }),
    ]);
  });

  it('never replaces a gateway route, even to a leased subnet (invariant 4): the lease goes instead (invariant 5)', () => {
    const gateway: RouteEntry = {
      destination: '10.244.7.0/24',
      otherTarget: 'pcx-0123456789abcdef0',
      state: 'active',
      origin: 'CreateRoute',
    };
    // the lease's route in rtb-b goes with it; the gateway route in rtb-a stays as it is
    const tables = [table('rtb-a', [gateway]), table('rtb-b', [eniRoute('10.244.7.0/24', eniId(7))])];
    const result = plan(tables, [lease(7)]);
    expect(summary(result.changes)).toEqual(['delete rtb-b 10.244.7.0/24']);
    expect(result.changes[0]!.reason).toBe(
      `a foreign route takes 10.244.7.0/24: the lease of ${instanceId(7)} goes`,
    );
    expect(result.reclaims).toEqual([{ lease: lease(7), reason: 'foreign-route' }]);
    expect(result.liveLeases).toEqual([]);
    expect(leaseRouteStates(lease(7), tables)).toEqual([
      { routeTableId: 'rtb-a', state: 'pending' },
      { routeTableId: 'rtb-b', state: 'active' },
    ]);
  });

  it('lets a foreign route inside the lease (a /25 to anything) take it, but not a wider one', () => {
    const part = eniRoute('10.244.3.128/25', eniId(99));
    const wider: RouteEntry = { ...part, destination: '10.244.2.0/23' };
    expect(plan([table('rtb-a', [part])], [lease(3)]).reclaims).toEqual([
      { lease: lease(3), reason: 'foreign-route' },
    ]);
    const kept = plan([table('rtb-a', [wider])], [lease(3)]);
    expect(kept.reclaims).toEqual([]);
    expect(summary(kept.changes)).toEqual(['create rtb-a 10.244.3.0/24']);
    expect(isTakenByForeign(config, [table('rtb-a', [wider])], parseCidr('10.244.3.0/24'))).toBe(false);
    expect(isTakenByForeign(config, [table('rtb-a', [part])], parseCidr('10.244.3.0/24'))).toBe(true);
  });

  it('takes the decision from the caller when it gives one (the reconcile decides over both families)', () => {
    const result = planRoutes({
      config,
      tables: [table('rtb-a')],
      leases: [lease(7)],
      dead: NO_DEAD_HOLDERS,
      now: NOW,
      takenByForeign: () => true,
    });
    expect(result.reclaims).toEqual([{ lease: lease(7), reason: 'foreign-route' }]);
    expect(result.changes).toEqual([]);
  });

  it('replaces a blackhole route to a live lease subnet instead of deleting it', () => {
    const tables = [table('rtb-a', [eniRoute('10.244.7.0/24', eniId(7), 'blackhole')])];
    expect(plan(tables, [lease(7)]).changes).toEqual([
      expect.objectContaining({ action: 'replace', reason: expect.stringContaining('blackhole') }),
    ]);
  });

  it('deletes a blackhole route inside Network that no live lease holds', () => {
    const tables = [table('rtb-a', [eniRoute('10.244.9.0/24', eniId(9), 'blackhole')])];
    expect(plan(tables, []).changes).toEqual([
      expect.objectContaining({
        action: 'delete',
        destination: '10.244.9.0/24',
        reason: expect.stringContaining('blackhole'),
      }),
    ]);
  });

  it('never deletes an ENI route of another prefix length: the hand-made 10.244.0.0/16 and a /25 are foreign', () => {
    const tables = [
      table('rtb-a', [eniRoute('10.244.9.0/25', eniId(9)), eniRoute('10.244.0.0/16', eniId(8))]),
    ];
    expect(plan(tables, []).changes).toEqual([]);
  });

  it('never deletes an ENI route outside SubnetMin..SubnetMax (10.244.0.0/24 is not leasable by default)', () => {
    expect(plan([table('rtb-a', [eniRoute('10.244.0.0/24', eniId(9))])], []).changes).toEqual([]);
  });

  it('deletes an ENI route of lease shape that no lease holds: what a crash or a TTL-deleted lease leaves', () => {
    const tables = [table('rtb-a', [eniRoute('10.244.200.0/24', eniId(9))])];
    expect(summary(plan(tables, []).changes)).toEqual(['delete rtb-a 10.244.200.0/24']);
  });

  it('never touches a route outside Network, whatever its target or state', () => {
    expect(plan([table('rtb-a')], []).changes).toEqual([]);
  });

  it('leaves a gateway or peering route inside Network alone when no lease holds that subnet', () => {
    const route: RouteEntry = {
      destination: '10.244.200.0/24',
      otherTarget: 'tgw-0123456789abcdef0',
      state: 'active',
      origin: 'CreateRoute',
    };
    expect(plan([table('rtb-a', [route])], []).changes).toEqual([]);
  });

  it('reclaims an expired lease: its route goes first, then the lease', () => {
    const expired = lease(7, { expiresAt: EARLIER });
    const result = plan([table('rtb-a', [eniRoute('10.244.7.0/24', eniId(7))])], [expired]);
    expect(result.changes).toEqual([
      expect.objectContaining({
        action: 'delete',
        instanceId: instanceId(7),
        reason: expect.stringContaining('expired'),
      }),
    ]);
    expect(result.reclaims).toEqual([{ lease: expired, reason: 'expired' }]);
    expect(result.liveLeases).toEqual([]);
  });

  it('treats a lease expiring exactly now as expired', () => {
    expect(plan([table('rtb-a')], [lease(7, { expiresAt: NOW })]).reclaims).toHaveLength(1);
  });

  it('reclaims the live lease of a terminated holder and deletes the route to its instance', () => {
    const live = lease(7);
    const dead = findDeadHolders([live], [instance(7, 'terminated')]);
    const result = plan([table('rtb-a', [eniRoute('10.244.7.0/24', eniId(7))])], [live], dead);
    expect(result.changes).toEqual([
      expect.objectContaining({ action: 'delete', reason: expect.stringContaining('terminated or gone') }),
    ]);
    expect(result.reclaims).toEqual([{ lease: live, reason: 'holder-gone' }]);
  });

  it('deletes a route whose target is a dead ENI when no live lease holds its subnet', () => {
    const dead: DeadHolders = { instanceIds: new Set(), networkInterfaceIds: new Set([eniId(5)]) };
    const result = plan([table('rtb-a', [eniRoute('10.244.5.0/24', eniId(5))])], [], dead);
    expect(result.changes).toEqual([
      expect.objectContaining({ action: 'delete', reason: expect.stringContaining('terminated') }),
    ]);
  });

  it('writes no route for a live lease whose subnet lies outside Network (after a config change), nor reclaims it', () => {
    const outside = lease(7, { subnet: '10.250.7.0/24' });
    const result = plan([table('rtb-a')], [outside]);
    expect(result.changes).toEqual([]);
    expect(result.reclaims).toEqual([]);
  });

  it('routes every table independently: one repair per table that needs it', () => {
    const tables = [
      table('rtb-a', [eniRoute('10.244.7.0/24', eniId(7))]),
      table('rtb-b', [eniRoute('10.244.7.0/24', eniId(3))]),
      table('rtb-c', []),
    ];
    expect(summary(plan(tables, [lease(7)]).changes)).toEqual([
      'create rtb-c 10.244.7.0/24',
      'replace rtb-b 10.244.7.0/24',
    ]);
  });
});

describe('findDeadHolders', () => {
  it('counts gone, shutting-down and terminated instances as dead, and stopped ones as alive', () => {
    const leases = [lease(1), lease(2), lease(3), lease(4), lease(5)];
    const dead = findDeadHolders(leases, [
      instance(2, 'shutting-down'),
      instance(3, 'terminated'),
      instance(4, 'stopped'),
      instance(5, 'running'),
    ]);
    expect([...dead.instanceIds].sort()).toEqual([instanceId(1), instanceId(2), instanceId(3)]);
    expect(dead.networkInterfaceIds.has(eniId(4))).toBe(false);
  });

  it('counts a lease ENI no longer attached to its running instance as dead', () => {
    const running: InstanceInfo = { ...instance(6, 'running'), networkInterfaces: [] };
    const dead = findDeadHolders([lease(6)], [running]);
    expect(dead.instanceIds.size).toBe(0);
    expect([...dead.networkInterfaceIds]).toEqual([eniId(6)]);
  });
});

describe('leaseRouteStates', () => {
  it('is active where the route points to the lease ENI and pending elsewhere', () => {
    const tables = [
      table('rtb-a', [eniRoute('10.244.7.0/24', eniId(7))]),
      table('rtb-b', [eniRoute('10.244.7.0/24', eniId(8))]),
      table('rtb-c', [eniRoute('10.244.7.0/24', eniId(7), 'blackhole')]),
      table('rtb-d'),
    ];
    expect(leaseRouteStates(lease(7), tables)).toEqual([
      { routeTableId: 'rtb-a', state: 'active' },
      { routeTableId: 'rtb-b', state: 'pending' },
      { routeTableId: 'rtb-c', state: 'pending' },
      { routeTableId: 'rtb-d', state: 'pending' },
    ]);
  });
});

describe('routeUsage and capacity', () => {
  it('counts owned, foreign and blackhole routes of a table and the leases it still admits', () => {
    const routes = [eniRoute('10.244.1.0/24', eniId(1)), eniRoute('10.244.2.0/24', eniId(2), 'blackhole')];
    const usage = routeUsage(
      config,
      table('rtb-a', routes),
      [lease(1), lease(3, { expiresAt: EARLIER })],
      NOW,
    );
    expect(usage).toEqual({
      routeTableId: 'rtb-a',
      limit: 50,
      used: FOREIGN.length + 2,
      owned: 2,
      foreign: FOREIGN.length,
      blackholes: 2,
      free: 50 - FOREIGN.length - 1,
    });
  });

  it('does not count propagated routes against the quota', () => {
    const propagated: RouteEntry = {
      destination: '10.50.0.0/16',
      otherTarget: 'vgw-0123456789abcdef0',
      state: 'active',
      origin: 'EnableVgwRoutePropagation',
    };
    expect(routeUsage(config, table('rtb-a', [propagated]), []).foreign).toBe(FOREIGN.length);
  });

  it('is RouteLimit minus the foreign routes of the fullest table', () => {
    const busy = table('rtb-b', [{ ...FOREIGN[1]!, destination: '8.8.8.0/24' }]);
    const snapshot = routeTableSnapshot(config, [table('rtb-a'), busy], NOW);
    expect(snapshot.tables).toEqual([
      { routeTableId: 'rtb-a', foreignRoutes: FOREIGN.length },
      { routeTableId: 'rtb-b', foreignRoutes: FOREIGN.length + 1 },
    ]);
    expect(capacity(config, snapshot)).toBe(50 - FOREIGN.length - 1);
  });

  it('is never negative, and is RouteLimit when no table is in scope', () => {
    const small = parseNetworkConfig({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteLimit: 3 },
    });
    expect(capacity(small, routeTableSnapshot(small, [table('rtb-a')], NOW))).toBe(0);
    expect(capacity(small, { tables: [], refreshedAt: NOW })).toBe(3);
  });
});

// ---------------------------------------------------------------- properties

/** Subnet numbers 1..12 of 10.244.0.0/16; holders 1..12; some of them dead. */
const worldArbitrary = fc
  .record({
    leases: fc.uniqueArray(
      fc.record({
        n: fc.integer({ min: 1, max: 12 }),
        live: fc.boolean(),
        holder: fc.integer({ min: 1, max: 12 }),
      }),
      { selector: (l) => l.n, maxLength: 10 },
    ),
    deadHolders: fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 4 }),
    tables: fc.array(
      fc.uniqueArray(
        fc.record({
          // 1..12: a /24 that may be leased; 13: the whole Network; 14: a /25 inside it
          n: fc.integer({ min: 1, max: 14 }),
          target: fc.oneof(
            fc.integer({ min: 1, max: 14 }).map((t) => ({ eni: eniId(t) })),
            fc.constant({ other: 'pcx-0123456789abcdef0' }),
            fc.constant({ instance: instanceId(3) }),
          ),
          blackhole: fc.boolean(),
        }),
        { selector: (r) => r.n, maxLength: 10 },
      ),
      { minLength: 1, maxLength: 3 },
    ),
  })
  .map(({ leases, deadHolders, tables }) => {
    // Invariant 2 of the store: one lease per instance; the holder number picks an instance.
    const seen = new Set<number>();
    const leaseList = leases
      .filter((l) => !seen.has(l.holder) && seen.add(l.holder))
      .map((l) => ({
        ...lease(l.holder, { expiresAt: l.live ? LATER : EARLIER, subnet: `10.244.${l.n}.0/24` }),
      }));
    const destinationOf = (n: number) =>
      n <= 12 ? `10.244.${n}.0/24` : n === 13 ? '10.244.0.0/16' : '10.244.3.128/25';
    const routeTables = tables.map((routes, i) =>
      table(
        `rtb-${i}`,
        routes.map((r) => ({
          destination: destinationOf(r.n),
          ...('eni' in r.target ? { networkInterfaceId: r.target.eni } : {}),
          ...('instance' in r.target ? { instanceId: r.target.instance } : {}),
          ...('other' in r.target ? { otherTarget: r.target.other } : {}),
          state: r.blackhole ? ('blackhole' as const) : ('active' as const),
          origin: 'CreateRoute',
        })),
      ),
    );
    const dead: DeadHolders = {
      instanceIds: new Set(deadHolders.map(instanceId)),
      networkInterfaceIds: new Set(deadHolders.map(eniId)),
    };
    return { leases: leaseList, tables: routeTables, dead };
  });

/** DESIGN.md invariant 4, spelt out for this config: 10.244.N.0/24 with N >= 1, to an ENI/instance or gone. */
const ownedShape = (r: RouteEntry): boolean => {
  const match = /^10\.244\.(\d{1,3})\.0\/24$/.exec(r.destination);
  return match !== null && Number(match[1]) >= 1 && (r.state === 'blackhole' || r.otherTarget === undefined);
};

/**
 * DESIGN.md invariant 5 for a lease that already holds its subnet, spelt out: a route not of the
 * owned shape to its very /24 or to a part of it (the /25); a wider one (the /16) takes nothing.
 */
const takenByForeignRoute = (tables: readonly RouteTable[], l: Lease): boolean =>
  tables.some((t) =>
    t.routes.some(
      (r) =>
        !ownedShape(r) &&
        inside(r.destination) &&
        (r.destination === formatCidr(l.subnet) ||
          (r.destination === '10.244.3.128/25' && l.subnet.base === parseCidr('10.244.3.0/24').base)),
    ),
  );

const network = parseCidr('10.244.0.0/16');
const inside = (destination: string) => {
  try {
    return contains(network, parseCidr(destination));
  } catch {
    return false;
  }
};

describe('planRoutes, for any tables and leases', () => {
  it('never plans a change to a route outside Network', () => {
    fc.assert(
      fc.property(worldArbitrary, ({ leases, tables, dead }) => {
        const { changes } = planRoutes({ config, tables, leases, dead, now: NOW });
        for (const change of changes) expect(inside(change.destination)).toBe(true);
      }),
    );
  });

  it('yields, once applied, exactly one route per healthy live lease per table, to its ENI, and nothing else of ours', () => {
    fc.assert(
      fc.property(worldArbitrary, ({ leases, tables, dead }) => {
        const result = planRoutes({ config, tables, leases, dead, now: NOW });
        const after = applyRouteChanges(tables, result.changes);
        const healthy = leases.filter(
          (l) =>
            l.expiresAt > NOW &&
            !dead.instanceIds.has(l.instanceId) &&
            !dead.networkInterfaceIds.has(l.networkInterfaceId) &&
            !takenByForeignRoute(tables, l),
        );
        expect(result.liveLeases.map((l) => formatCidr(l.subnet)).sort()).toEqual(
          healthy.map((l) => formatCidr(l.subnet)).sort(),
        );
        for (const [i, t] of after.entries()) {
          const before = tables[i]!;
          // foreign routes (invariant 4) untouched, in content: whatever is not exactly a leasable
          // /24 (SubnetMin 10.244.1.0 up) to an ENI/instance or a blackhole
          expect(t.routes.filter((r) => !ownedShape(r))).toEqual(before.routes.filter((r) => !ownedShape(r)));
          // a lease whose destination a foreign route holds is not healthy: it goes (invariant 5)
          const routed = healthy;
          // every healthy lease: exactly one route. A working route to its holder (its ENI, or
          // its instance) stays as it was; anything else becomes the lease's own route to its ENI.
          for (const l of routed) {
            const destination = formatCidr(l.subnet);
            const was = before.routes.find((r) => r.destination === destination);
            const working =
              was?.state === 'active' &&
              (was.networkInterfaceId === l.networkInterfaceId || was.instanceId === l.instanceId);
            expect(t.routes.filter((r) => r.destination === destination)).toEqual([
              working
                ? was
                : {
                    destination,
                    networkInterfaceId: l.networkInterfaceId,
                    instanceId: l.instanceId,
                    state: 'active',
                    origin: 'CreateRoute',
                  },
            ]);
          }
          // no other owned route
          expect(t.routes.filter(ownedShape)).toHaveLength(routed.length);
        }
      }),
    );
  });

  it('has nothing left to change on the tables it produced (applying a plan converges in one step)', () => {
    fc.assert(
      fc.property(worldArbitrary, ({ leases, tables, dead }) => {
        const first = planRoutes({ config, tables, leases, dead, now: NOW });
        const after = applyRouteChanges(tables, first.changes);
        expect(planRoutes({ config, tables: after, leases, dead, now: NOW }).changes).toEqual([]);
      }),
    );
  });

  it('reclaims exactly the expired leases, those of dead holders and those a foreign route takes, and no other', () => {
    fc.assert(
      fc.property(worldArbitrary, ({ leases, tables, dead }) => {
        const { reclaims } = planRoutes({ config, tables, leases, dead, now: NOW });
        const expected = leases.filter(
          (l) =>
            l.expiresAt <= NOW ||
            dead.instanceIds.has(l.instanceId) ||
            dead.networkInterfaceIds.has(l.networkInterfaceId) ||
            takenByForeignRoute(tables, l),
        );
        expect(reclaims.map((r) => r.lease)).toEqual(expected);
      }),
    );
  });

  it('never plans two changes to the same route', () => {
    fc.assert(
      fc.property(worldArbitrary, ({ leases, tables, dead }) => {
        const { changes } = planRoutes({ config, tables, leases, dead, now: NOW });
        const keys = changes.map((c) => `${c.routeTableId} ${c.destination}`);
        expect(new Set(keys).size).toBe(keys.length);
      }),
    );
  });
});

function instance(n: number, state: InstanceInfo['state']): InstanceInfo {
  return {
    instanceId: instanceId(n),
    state,
    vpcId: 'vpc-0123456789abcdef0',
    networkInterfaces: [
      { networkInterfaceId: eniId(n), privateIps: [`10.0.0.${n}`], sourceDestCheck: false },
    ],
  };
}

/**
 * Property: under random interleavings of what hosts, EC2 and operators do — acquire,
 * renew, release, revoke, expiry, stop/start, termination, duplicated and reordered
 * state-change events, reconcile, RouteLimit changes by an operator — across eight hosts, with faults injected at the SDK
 * level at every step (DynamoDB transaction conflicts and throttling, EC2 throttling,
 * 5xx, timeouts, EC2's RouteLimitExceeded; before the request or after it took effect),
 * the README's invariants 1-5 hold after every step, every answer is one a client can act
 * on (never a 500), and one fault-free reconcile settles the state: every live lease has
 * its route in every table, nothing else of ours is left, and late events change nothing.
 *
 * State lives in moto: the VPC and its hosts are built once and put back before each run (the
 * routes the run added go, terminated hosts are replaced), each run has its own lease table.
 * A run is deterministic from its seed: faults are
 * drawn per SDK attempt from it, and concurrent steps take turns per SDK call in an order
 * drawn from it (test/support/faults.ts, Turnstile). VPCLEASE_SOAK=1 runs many more.
 */
import { StartInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { InstanceStateEvent } from '../../functions/instance-state.js';
import { exponentialBackoffWithJitter } from '../../shared/adapters/aws-clients.js';
import { formatCidr } from '../../shared/cidr.js';
import { VpcLeaseError } from '../../shared/errors.js';
import type { LeaseJson } from '../../shared/http/contract.js';
import { leasableCount } from '../../shared/network-config.js';
import { useMotoEc2 } from '../support/ec2-fixtures.js';
import { type InjectedFault, type InjectedFaultKind, seededFaults, seededRandom } from '../support/faults.js';
import {
  type Answer,
  createFaultyNetwork,
  createFaultyPlane,
  type FaultyNetwork,
  type FaultyPlane,
  FOREIGN_IN_FULLEST,
  resetFaultyNetwork,
  stateChange,
} from '../support/faulty-plane.js';
import { isOwned, type ObservedState, scanItems } from '../support/invariants.js';

const SOAK = process.env.VPCLEASE_SOAK === '1';
/**
 * VPCLEASE_RUNS overrides the number of runs: 100 by default (~1 s a run on a loaded two-core
 * machine, nearly all of it moto calls: a step that wrote nothing is checked on the state the
 * previous check read, a step's own checks use the state its invariant check reads, and the
 * SDK's backoff is shortened). VPCLEASE_SEED (+ VPCLEASE_PATH)
 * replays a failure fast-check reported; VPCLEASE_SHRINK=1 shrinks a failure (slow);
 * VPCLEASE_TALLY=1 prints the faults injected and the answers seen (always printed in a soak).
 */
const RUNS = Number(process.env.VPCLEASE_RUNS ?? (SOAK ? 150 : 100));
const REPLAY = process.env.VPCLEASE_SEED
  ? {
      seed: Number(process.env.VPCLEASE_SEED),
      ...(process.env.VPCLEASE_PATH ? { path: process.env.VPCLEASE_PATH } : {}),
    }
  : {};
const MAX_STEPS = SOAK ? 40 : 14;
const HOSTS = 8;
const TTL_SECONDS = 3600;

const ALL_KINDS: readonly InjectedFaultKind[] = [
  'InjectedTransactionConflict',
  'InjectedThroughputExceeded',
  'InjectedRequestLimitExceeded',
  'InjectedInternalError',
  'InjectedUnavailable',
  'InjectedTimeout',
  'InjectedRouteLimitExceeded',
];

// ---------------------------------------------------------------- the steps

type SimpleStep =
  | { op: 'acquire'; host: number; previous: number | undefined }
  | { op: 'release'; host: number }
  | { op: 'revoke'; pick: number }
  | { op: 'publish'; capacity: number }
  | { op: 'advance'; seconds: number }
  | { op: 'terminate'; host: number }
  | { op: 'stop'; host: number }
  | { op: 'start'; host: number }
  | { op: 'deliver'; pick: number; duplicate: boolean }
  | { op: 'reconcile' }
  | { op: 'impersonate'; host: number; method: 'PUT' | 'DELETE'; identity: number }
  | { op: 'foreign'; n: number };
type Step = SimpleStep | { op: 'together'; steps: SimpleStep[] };

const host = fc.nat({ max: HOSTS - 1 });

/** Sessions naming a host's instance that are not its instance profile's (the test handlers trust account 123456789012's vpc-lease-host). */
const IMPERSONATORS: readonly ((instanceId: string) => string)[] = [
  (id) => `arn:aws:sts::999999999999:assumed-role/vpc-lease-host/${id}`,
  (id) => `arn:aws:sts::123456789012:assumed-role/ci-deploy/${id}`,
  (id) => `arn:aws:sts::123456789012:assumed-role/team/vpc-lease-host/${id}`,
];
const simpleStep: fc.Arbitrary<SimpleStep> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      host,
      // 0-6: leasable in both networks; 7-8: outside the narrow one
      previous: fc.option(fc.nat({ max: 8 }), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), host }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('revoke' as const), pick: fc.nat({ max: 99 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('publish' as const), capacity: fc.integer({ min: 1, max: 8 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      seconds: fc.integer({ min: 60, max: Math.round(TTL_SECONDS * 1.5) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('terminate' as const), host }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('stop' as const), host }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('start' as const), host }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('deliver' as const),
      pick: fc.nat({ max: 99 }),
      duplicate: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'reconcile' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('impersonate' as const),
      host,
      method: fc.constantFrom('PUT' as const, 'DELETE' as const),
      identity: fc.nat({ max: IMPERSONATORS.length - 1 }),
    }),
  },
  // a subnet number as in `previous`: the foreign route lands where hosts ask to be
  { weight: 1, arbitrary: fc.record({ op: fc.constant('foreign' as const), n: fc.nat({ max: 8 }) }) },
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: simpleStep },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('together' as const),
      steps: fc.array(simpleStep, { minLength: 2, maxLength: 4 }),
    }),
  },
);

const runSettings = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  rate: fc.constantFrom(0.05, 0.15, 0.3),
  kinds: fc.subarray([...ALL_KINDS], { minLength: 1 }),
  afterShare: fc.constantFrom(0.3, 0.7),
  /** 1: isolated faults, the SDK's retry hides most; 4: bursts that outlast the retries */
  burst: fc.constantFrom(1, 4),
  /** wide: /16, 255 subnets, room for 2-8 leases; narrow: /21, 7 subnets for 8 hosts, room for 45 */
  network: fc.oneof(
    fc.record({ kind: fc.constant('wide' as const), capacity: fc.integer({ min: 2, max: 8 }) }),
    fc.constant({ kind: 'narrow' as const, capacity: 45 }),
  ),
});
type RunSettings = typeof runSettings extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------- the world of one run

const aws = useMotoEc2();

interface World extends FaultyPlane {
  /** state-change notifications EC2 has emitted and EventBridge not yet delivered */
  events: InstanceStateEvent[];
}

/** The VPC, its tables and hosts: built once per file, put back before each run (no moto reset). */
let network: FaultyNetwork | undefined;

async function createWorld(settings: RunSettings): Promise<World> {
  if (network) await resetFaultyNetwork(aws, network);
  else network = await createFaultyNetwork(aws, { hosts: HOSTS });
  const plane = await createFaultyPlane(aws, {
    network,
    hosts: HOSTS,
    seed: settings.seed,
    leaseTtlSeconds: TTL_SECONDS,
    // The SDK's backoff at a twentieth (<= 50 ms after a throttle instead of 1 s), drawn from
    // the seed: the attempts and their order are the same, the runs spend less time asleep.
    retryBackoff: exponentialBackoffWithJitter(
      (
        (r) => () =>
          r() / 20
      )(seededRandom(settings.seed ^ 0xbac0)),
    ),
    config: (routeTableIds) =>
      settings.network.kind === 'wide'
        ? {
            Network: '10.244.0.0/16',
            Backend: {
              Type: 'aws-vpc',
              RouteTableID: [...routeTableIds],
              RouteLimit: FOREIGN_IN_FULLEST + settings.network.capacity,
            },
          }
        : { Network: '10.244.0.0/21', Backend: { Type: 'aws-vpc', RouteTableID: [...routeTableIds] } },
  });
  // Faults from here on: the setup used the clean clients.
  plane.faults.policy = seededFaults({
    seed: settings.seed,
    rate: settings.rate,
    kinds: settings.kinds,
    afterShare: settings.afterShare,
    burst: settings.burst,
  });
  return Object.assign(plane, { events: [] as InstanceStateEvent[] });
}

// ---------------------------------------------------------------- running a step

/** What every run adds up, to show the faults were real (and to report). */
const tally = {
  runs: 0,
  steps: 0,
  injected: [] as InjectedFault[],
  statuses: new Map<string, number>(),
};
/** VPCLEASE_TRACE=1: each step, what it was answered and the faults it met (to read a replayed failure). */
const TRACE = process.env.VPCLEASE_TRACE === '1';
const count = (key: string) => {
  tally.statuses.set(key, (tally.statuses.get(key) ?? 0) + 1);
  if (TRACE) console.info(`    -> ${key}`);
};

/** Throws unless `error` is an error a caller can act on: a domain error that is not a bug (5xx other than 503). */
function expectActionable(error: unknown, what: string): void {
  if (error instanceof VpcLeaseError && error.expose) {
    count(`${what} ${error.status} ${error.code}`);
    return;
  }
  throw new Error(`${what} failed with an unexpected error: ${String((error as Error)?.stack ?? error)}`);
}

function expectErrorBody(res: Answer, what: string): void {
  expect(res.body?.error?.code, `${what}: error code`).toEqual(expect.any(String));
  expect(res.body?.error?.message, `${what}: error message`).toEqual(expect.any(String));
  if (res.statusCode === 503) expect(res.headers['retry-after'], `${what}: Retry-After`).toMatch(/^\d+$/);
}

/** The fixture's tables (in scope) as the step's check read them. */
const leaseTables = (world: World, state: ObservedState) =>
  state.tables.filter((t) => world.routeTableIds.includes(t.routeTableId));

/** Per table in scope, the ENI its route to `subnet` targets. */
function routeTargets(world: World, state: ObservedState, subnet: string): Map<string, string | undefined> {
  return new Map(
    leaseTables(world, state).map((t) => [
      t.routeTableId,
      t.routes.find((r) => r.destination === subnet)?.networkInterfaceId,
    ]),
  );
}

function enisRoutedIn(world: World, state: ObservedState): Set<string> {
  return new Set(
    leaseTables(world, state).flatMap((t) => t.routes.flatMap((r) => r.networkInterfaceId ?? [])),
  );
}

/**
 * A 409 must be true: RouteLimitExceeded only when every place of the capacity is held (by
 * a live lease, or an expired one whose route could not be reclaimed), SubnetsExhausted only
 * when every leasable subnet is.
 */
function expectTruthfulRefusal(world: World, state: ObservedState, code: string | undefined): void {
  const { items } = state;
  if (code === 'RouteLimitExceeded') {
    // The capacity the tables leave: RouteLimit minus the foreign routes of the fullest table
    // in scope (FOREIGN_IN_FULLEST at the start, more once a foreign step wrote a route).
    const limit = world.config.backend.routeLimit;
    const capacity = Math.min(
      ...state.tables
        .filter((t) => t.inScope)
        .map(
          (t) =>
            limit -
            t.routes.filter((r) => r.origin !== 'EnableVgwRoutePropagation' && !isOwned(world.config, t, r))
              .length,
        ),
    );
    const held = items.filter((i) => i.pk.startsWith('SUBNET#')).length;
    expect(held, `RouteLimitExceeded with ${held} of ${capacity} places held`).toBe(capacity);
  } else {
    const held = items.filter((i) => i.pk.startsWith('SUBNET#'));
    expect(
      held.length,
      `SubnetsExhausted with ${held.length} of ${leasableCount(world.config)} subnets held`,
    ).toBe(leasableCount(world.config));
  }
}

/**
 * What a step asks of the check that follows it: `unchanged` = it wrote nothing (no item, no
 * route; at most the clock moved), so the state the previous check read is the state now and
 * the invariants are checked on it again at the new time, without reading it again; a function
 * = checks of what the step answered, run on the state the invariant check reads right after
 * the step (nothing runs in between, so it is the state the step left).
 */
type AfterStep = 'unchanged' | ((state: ObservedState) => void) | undefined;

/**
 * Runs one step. `alone` = no other step runs meanwhile: then what the step answered can
 * be checked against the state it left, and `before` (the state the previous step's check
 * read, if any) is the state the step starts from.
 */
async function runStep(
  world: World,
  s: SimpleStep,
  alone: boolean,
  before?: ObservedState,
): Promise<AfterStep> {
  switch (s.op) {
    case 'acquire': {
      const h = world.hosts[s.host]!;
      const previous = s.previous === undefined ? undefined : `10.244.${s.previous + 1}.0/24`;
      const injectedBefore = world.faults.injected.length;
      const claimedBefore = new Set(world.foreignClaims);
      const res = await world.turnstile.run(`acquire#${s.host}`, () =>
        world.putLease(h, { privateIp: h.privateIp, ...(previous ? { previousSubnet: previous } : {}) }),
      );
      count(`PUT ${res.statusCode}${res.body?.error ? ` ${res.body.error.code}` : ''}`);
      expect([200, 403, 409, 503], `PUT /v1/lease answered ${JSON.stringify(res.body)}`).toContain(
        res.statusCode,
      );
      if (res.statusCode !== 200) expectErrorBody(res, 'PUT /v1/lease');
      const error = res.body?.error;
      if (res.statusCode === 403)
        expect(h.state, `403 for a running host: ${error?.message}`).not.toBe('running');
      if (res.statusCode === 409)
        expect(['RouteLimitExceeded', 'SubnetsExhausted', 'ForeignRoute']).toContain(error?.code);
      const ec2SaidFull = world.faults.injected
        .slice(injectedBefore)
        .some((f) => f.kind === 'InjectedRouteLimitExceeded');
      if (res.statusCode === 409 && alone && !ec2SaidFull)
        return (state) => expectTruthfulRefusal(world, state, error?.code);
      const lease = res.statusCode === 200 ? (res.body as LeaseJson) : undefined;
      if (lease) {
        expect(lease.instanceId).toBe(h.instanceId);
        expect(lease.networkInterfaceId).toBe(h.networkInterfaceId);
        // Invariant 5 on the answer: a subnet a foreign route claims is never served as working.
        // Allocation skips the claims the grant knows (the route-table snapshot); one written since
        // the last snapshot, or beside this grant, is found by CreateRoute (RouteAlreadyExists ->
        // another subnet). Only when that CreateRoute fails (an injected 503 or timeout) can the
        // grant not see it: then it calls the route pending, never active (also when the host
        // renews it later), and the reconcile reclaims the lease (the settled check holds
        // invariant 5 there).
        if (world.foreignClaims.has(lease.subnet)) {
          expect(
            lease.routes.some((r) => r.state !== 'active'),
            `lease on ${lease.subnet}, claimed by a foreign route${claimedBefore.has(lease.subnet) ? ' before the grant' : ' beside the grant'}, called active`,
          ).toBe(true);
        }
        if (alone && lease.routes.every((r) => r.state === 'active')) {
          // The agent writes subnet.env on this answer: every route it calls active must exist.
          return (state) => {
            const targets = routeTargets(world, state, lease.subnet);
            for (const tableId of world.routeTableIds) {
              expect(
                targets.get(tableId),
                `route to ${lease.subnet} in ${tableId} after a 200 saying active`,
              ).toBe(h.networkInterfaceId);
            }
          };
        }
      }
      return undefined;
    }
    case 'release': {
      const h = world.hosts[s.host]!;
      const res = await world.turnstile.run(`release#${s.host}`, () => world.deleteLease(h));
      count(`DELETE ${res.statusCode}${res.body?.error ? ` ${res.body.error.code}` : ''}`);
      expect([204, 503], `DELETE /v1/lease answered ${JSON.stringify(res.body)}`).toContain(res.statusCode);
      if (res.statusCode !== 204) expectErrorBody(res, 'DELETE /v1/lease');
      if (res.statusCode === 204 && alone) {
        // 204 means released: no lease of the host is left, and no route to its ENI.
        return (state) => {
          const held = state.items.filter((i) => i.pk.startsWith('SUBNET#') && i.instanceId === h.instanceId);
          expect(
            held.map((i) => i.pk),
            `lease of ${h.instanceId} after DELETE answered 204`,
          ).toEqual([]);
          expect(enisRoutedIn(world, state)).not.toContain(h.networkInterfaceId);
        };
      }
      return undefined;
    }
    case 'revoke': {
      const all = await world.cleanStore.list();
      if (all.length === 0) return 'unchanged';
      const target = all[s.pick % all.length]!;
      const subnet = formatCidr(target.subnet);
      const res = await world.turnstile.run('revoke', () => world.revokeLease(subnet));
      count(`revoke ${res.statusCode}${res.body?.error ? ` ${res.body.error.code}` : ''}`);
      // 404: the lease went meanwhile (another step released or reclaimed it)
      expect([200, 503, ...(alone ? [] : [404])], `revoke answered ${JSON.stringify(res.body)}`).toContain(
        res.statusCode,
      );
      if (res.statusCode !== 200) expectErrorBody(res, 'revoke');
      if (res.statusCode === 200 && alone) {
        return (state) => {
          const now = state.items.find((i) => i.pk === `SUBNET#${subnet}`);
          expect(now?.instanceId, `lease on ${subnet} after its revoke`).not.toBe(target.instanceId);
          for (const [tableId, eni] of routeTargets(world, state, subnet)) {
            expect(eni, `route of the revoked lease in ${tableId}`).not.toBe(target.networkInterfaceId);
          }
        };
      }
      return undefined;
    }
    case 'publish': {
      // An operator changes RouteLimit while hosts join: a limit below what is in use is refused (409).
      const res = await world.turnstile.run('publish', () =>
        world.publishRouteLimit(FOREIGN_IN_FULLEST + s.capacity),
      );
      count(`publish ${res.statusCode}${res.body?.error ? ` ${res.body.error.code}` : ''}`);
      expect([200, 409, 503], `PUT /v1/admin/config answered ${JSON.stringify(res.body)}`).toContain(
        res.statusCode,
      );
      if (res.statusCode !== 200) expectErrorBody(res, 'PUT /v1/admin/config');
      if (res.statusCode === 409) expect(res.body?.error?.code).toBe('Conflict');
      await world.syncConfig();
      return undefined;
    }
    case 'advance':
      world.clock.advance(s.seconds);
      return 'unchanged';
    case 'terminate': {
      const h = world.hosts[s.host]!;
      if (h.state === 'terminated') return 'unchanged';
      await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: [h.instanceId] }));
      h.state = 'terminated';
      world.events.push(stateChange(h.instanceId, 'shutting-down'), stateChange(h.instanceId, 'terminated'));
      return undefined;
    }
    case 'stop': {
      const h = world.hosts[s.host]!;
      if (h.state !== 'running') return 'unchanged';
      await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [h.instanceId] }));
      h.state = 'stopped';
      world.events.push(stateChange(h.instanceId, 'stopping'), stateChange(h.instanceId, 'stopped'));
      return undefined;
    }
    case 'start': {
      const h = world.hosts[s.host]!;
      if (h.state !== 'stopped') return 'unchanged';
      await aws.ec2.send(new StartInstancesCommand({ InstanceIds: [h.instanceId] }));
      h.state = 'running';
      world.events.push(stateChange(h.instanceId, 'pending'), stateChange(h.instanceId, 'running'));
      return undefined;
    }
    case 'deliver': {
      if (world.events.length === 0) return 'unchanged';
      const index = s.pick % world.events.length;
      const event = world.events[index]!;
      if (!s.duplicate) world.events.splice(index, 1); // else: delivered again later (at least once)
      try {
        await world.turnstile.run(`event#${event.detail.state}`, () => world.stateEvent(event));
        count('event ok');
      } catch (error) {
        expectActionable(error, 'instanceState');
        world.events.push(event); // Lambda retries a failed asynchronous invocation
      }
      return undefined;
    }
    case 'impersonate': {
      const h = world.hosts[s.host]!;
      // The items before: those the previous check read (nothing ran since), else read now.
      const items = !alone
        ? undefined
        : (before?.items ?? (await scanItems({ client: aws.dynamo, tableName: world.tableName })));
      const res = await world.impersonate(h, s.method, IMPERSONATORS[s.identity]!(h.instanceId));
      count(`impersonated ${s.method} ${res.statusCode}`);
      expect(res.statusCode, `${s.method} as ${h.instanceId} from an impostor`).toBe(403);
      return items && ((state) => expect(state.items, 'the lease table after an impostor').toEqual(items));
    }
    case 'foreign': {
      // Only in the narrow network, whose RouteLimit leaves room: in the wide one every foreign
      // route takes a lease's place, and shrinking capacity under live leases is the operator's
      // doing (the reconcile reports it), not a grant breaking invariant 3.
      if (world.config.backend.routeLimit - FOREIGN_IN_FULLEST < 40) return 'unchanged';
      // Only where no lease item is: a lease granted afterwards on it breaks invariant 5.
      const destination = `10.244.${s.n + 1}.0/24`;
      const held = (await world.cleanStore.list()).some((l) => formatCidr(l.subnet) === destination);
      if (held) return 'unchanged';
      count(`foreign route ${(await world.writeForeignRoute(destination)) ? 'written' : 'taken'}`);
      return undefined;
    }
    case 'reconcile': {
      try {
        await world.turnstile.run('reconcile', () => world.reconciler.reconcile(world.config));
        count('reconcile ok');
      } catch (error) {
        expectActionable(error, 'reconcile');
      }
      return undefined;
    }
  }
}

/**
 * Steps that run side by side, less a publish beside a foreign route: the foreign route's
 * check that the RouteLimit leaves room would read the config before that publish lowered it,
 * and the route would then shrink the capacity under live leases (an operator's doing, which
 * the reconcile reports, not a grant breaking invariant 3).
 */
/**
 * Requests that write nothing (EC2's Describe*, DynamoDB's reads). The faulty clients count
 * every attempt that reaches moto, retries included; any other command counts as a write.
 */
const READ_ONLY = /^(EC2\.Describe|DynamoDB\.(Get|BatchGet|TransactGet|Scan|Query))/;
const writesSent = (world: World): number =>
  [...world.counter.calls].reduce((n, [key, calls]) => (READ_ONLY.test(key) ? n : n + calls), 0);
/** Steps that write through the test's own clean clients, which the counter does not see. */
const WRITES_BESIDE_THE_PLANE: ReadonlySet<SimpleStep['op']> = new Set([
  'terminate',
  'stop',
  'start',
  'foreign',
]);

const together = (steps: readonly SimpleStep[]): readonly SimpleStep[] =>
  steps.some((s) => s.op === 'foreign') ? steps.filter((s) => s.op !== 'publish') : steps;

async function runScenario(settings: RunSettings, steps: readonly Step[]): Promise<void> {
  const world = await createWorld(settings);
  try {
    tally.runs++;
    /** the state the last check read: the state now, until the next step writes */
    let state: ObservedState | undefined;
    for (const s of steps) {
      tally.steps++;
      const injected = world.faults.injected.length;
      if (TRACE) console.info(`step ${JSON.stringify(s)}`);
      let after: AfterStep;
      const writesBefore = writesSent(world);
      try {
        if (s.op === 'together')
          await Promise.all(together(s.steps).map((one) => runStep(world, one, false)));
        else after = await runStep(world, s, true, state);
      } finally {
        if (TRACE) {
          for (const f of world.faults.injected.slice(injected))
            console.info(`    fault ${f.operation ?? '-'} ${f.service} ${f.command} ${f.kind} ${f.timing}`);
        }
      }
      // The invariants after every step: on the state read again, or on the state the
      // previous check read when the step wrote nothing (no item, no route: the state is the
      // one read then; only the clock may have moved, so they are checked at its time now).
      const wroteNothing =
        after === 'unchanged' ||
        (s.op !== 'together' && !WRITES_BESIDE_THE_PLANE.has(s.op) && writesSent(world) === writesBefore);
      if (!(wroteNothing && state)) state = await world.check();
      else world.checkState(state);
      if (typeof after === 'function') after(state);
    }

    // Faults off. One reconcile settles everything; a second finds nothing left to do.
    world.faults.policy = undefined;
    const report = await world.cleanReconciler.reconcile(world.config);
    expect(report.errors, 'errors of the fault-free reconcile').toEqual([]);
    await world.check(true);
    const again = await world.cleanReconciler.reconcile(world.config);
    expect({ changes: again.changes, errors: again.errors }, 'a second reconcile').toEqual({
      changes: [],
      errors: [],
    });

    // Late and duplicated notifications, delivered now, change nothing that matters.
    for (const event of world.events.splice(0)) await world.stateEvent(event);
    await world.check(true);
  } finally {
    tally.injected.push(...world.faults.injected);
    world.dispose();
  }
}

// ---------------------------------------------------------------- the property

describe('random interleavings with injected faults (fast-check, moto)', () => {
  afterAll(() => {
    if (!SOAK && process.env.VPCLEASE_TALLY !== '1') return;
    const byKind = new Map<string, number>();
    for (const f of tally.injected) {
      const key = `${f.service} ${f.command} ${f.kind} ${f.timing}`;
      byKind.set(key, (byKind.get(key) ?? 0) + 1);
    }
    console.info(
      `interleavings: ${tally.runs} runs, ${tally.steps} steps, ${tally.injected.length} faults injected\n` +
        [...byKind]
          .sort()
          .map(([k, n]) => `  ${n}\t${k}`)
          .join('\n') +
        `\noutcomes:\n${[...tally.statuses]
          .sort()
          .map(([k, n]) => `  ${n}\t${k}`)
          .join('\n')}`,
    );
  });

  it(
    'keeps invariants 1-5 after every step, answers nothing but 2xx/403/409/503, and settles with one fault-free reconcile',
    async () => {
      await fc.assert(
        fc.asyncProperty(runSettings, fc.array(step, { minLength: 4, maxLength: MAX_STEPS }), runScenario),
        { numRuns: RUNS, endOnFailure: process.env.VPCLEASE_SHRINK !== '1', verbose: 1, ...REPLAY },
      );
      // The faults were real: both timings happened (with enough runs to be sure of it).
      if (RUNS >= 10) expect(tally.injected.some((f) => f.timing === 'after')).toBe(true);
      if (RUNS >= 10) expect(tally.injected.some((f) => f.timing === 'before')).toBe(true);
    },
    SOAK ? 3_600_000 : 240_000,
  );
});

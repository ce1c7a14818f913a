/**
 * The lease storm: N freshly launched hosts ask for a lease at the same moment. Each
 * joiner calls the real LeaseService.acquire (real DynamoDB store, real EC2 adapters, on
 * moto) with the allocation strategy under test; a joiner answered 503 waits as the agent
 * does (exponential backoff with full jitter, Retry-After as a floor) and asks again.
 *
 * In AWS every PUT /v1/lease is its own Lambda invocation, all running in parallel; here
 * the joiners run in this process, at most `concurrency` of them in flight at once (the
 * SDK's default socket pool is 50 per client). moto handles one request at a time, so
 * the wall time is moto's, not DynamoDB's: the request counts are the figures to read.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Backoff } from '../../agent/backoff.js';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import type { AllocationStrategy } from '../../shared/allocator.js';
import { formatCidr } from '../../shared/cidr.js';
import { VpcLeaseError } from '../../shared/errors.js';
import { LeaseService } from '../../shared/lease-service.js';
import type { GrantConflict, LeaseStore } from '../../shared/ports.js';
import type { BenchAws } from './aws.js';
import type { Scene } from './scene.js';
import { percentile } from './stats.js';
import { verifyLeasesAndRoutes } from './verify.js';

export interface StormResult {
  readonly strategy: string;
  readonly n: number;
  readonly concurrency: number;
  readonly tables: number;
  /** a dual-stack network: an IPv4 and an IPv6 route per table and lease */
  readonly dualStack: boolean;
  /** leases granted: n, or fewer when the time box stopped the run */
  readonly granted: number;
  /** stopped by the time box before every host had a lease */
  readonly cut: boolean;
  readonly wallMs: number;
  /** per host: first PUT to lease in hand, 503 waits included */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly distinctSubnets: number;
  readonly routesCorrect: number;
  readonly routesExpected: number;
  /** every DynamoDB request, retries included, per granted lease */
  readonly dynamoPerLease: number;
  /** TransactWriteItems requests per lease: grant attempts (and their conflict retries) + the route-state update */
  readonly transactionsPerLease: number;
  /** store.grant calls per lease (a lost race is one more) */
  readonly grantAttemptsPerLease: number;
  /** full occupancy scans per lease (only when no candidate is left: a nearly full network or capacity) */
  readonly scansPerLease: number;
  /** bounded re-reads per lease: the occupancy of a block of candidates, one BatchGetItem after a lost race */
  readonly blockReadsPerLease: number;
  readonly ec2PerLease: number;
  /** the most EC2 requests one granting PUT made, against DESIGN.md's budget of #tables + 2 */
  readonly ec2MaxPerGrantingPut: number;
  readonly ec2Budget: number;
  readonly conflicts: Readonly<Record<GrantConflict, number>>;
  /** 503 answers the joiners had to wait out */
  readonly rejections: number;
  /** 429 answers (the instance's grant interval) the joiners had to wait out */
  readonly tooSoon: number;
  readonly calls: Readonly<Record<string, number>>;
  readonly problems: readonly string[];
}

class TimeBoxExpired extends Error {
  constructor() {
    super('time box expired');
    this.name = 'TimeBoxExpired';
  }
}

/**
 * Counts what the lease service asks of the store, without changing any answer; once
 * `expired()` it refuses reads and grants, so that requests under way stop before they
 * claim anything (a grant already won still gets its routes).
 */
function instrumentStore<S extends LeaseStore>(store: S, expired: () => boolean) {
  const tally = {
    grants: 0,
    scans: 0,
    blockReads: 0,
    conflicts: { 'subnet-taken': 0, 'instance-has-lease': 0, 'no-capacity': 0 } as Record<
      GrantConflict,
      number
    >,
  };
  const guarded = new Set<PropertyKey>(['getLeaseContext', 'occupancy', 'occupancyOf', 'grant']);
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const method = value.bind(target) as (...args: unknown[]) => Promise<unknown>;
      if (!guarded.has(property)) return method;
      return async (...args: unknown[]) => {
        if (expired()) throw new TimeBoxExpired();
        if (property === 'occupancy') tally.scans++;
        if (property === 'occupancyOf') tally.blockReads++;
        if (property !== 'grant') return method(...args);
        tally.grants++;
        const result = (await method(...args)) as Awaited<ReturnType<LeaseStore['grant']>>;
        if (!result.granted) for (const c of result.conflicts) tally.conflicts[c]++;
        return result;
      };
    },
  });
  return { store: proxy, tally };
}

/** EC2 requests made within one PUT, attempts included (AsyncLocalStorage follows the request). */
const putTally = new AsyncLocalStorage<{ ec2: number }>();

function tallyEc2PerPut(client: BenchAws['ec2']): void {
  client.middlewareStack.add(
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's generic middleware signature
    (next: any) => async (args: unknown) => {
      const tally = putTally.getStore();
      if (tally) tally.ec2++;
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'benchEc2PerPut', override: true },
  );
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runStorm(input: {
  aws: BenchAws;
  scene: Scene;
  strategyName: string;
  strategy: AllocationStrategy;
  concurrency: number;
  /** seconds after which no new attempt starts; undefined = until every host has a lease */
  timeBoxSeconds?: number;
}): Promise<StormResult> {
  const { aws, scene, strategy } = input;
  const { deps } = scene;
  const started = performance.now();
  const expired = () =>
    input.timeBoxSeconds !== undefined && performance.now() - started > input.timeBoxSeconds * 1000;
  const { store, tally } = instrumentStore(deps.store, expired);
  const leases = new LeaseService({
    store,
    instances: deps.instances,
    routes: deps.routes,
    clock: deps.clock,
    vpcId: scene.vpcId,
    leaseTtlSeconds: scene.leaseTtlSeconds,
    ...(deps.environment.grantIntervalSeconds !== undefined
      ? { grantIntervalSeconds: deps.environment.grantIntervalSeconds }
      : {}),
    strategy,
  });
  tallyEc2PerPut(aws.ec2);
  let rejections = 0;
  let tooSoon = 0;
  let ec2MaxPerGrantingPut = 0;

  const join = async (host: LaunchedInstance) => {
    const backoff = new Backoff();
    const joined = performance.now();
    for (;;) {
      if (expired()) return undefined;
      const put = { ec2: 0 };
      try {
        const { lease } = await putTally.run(put, () =>
          leases.acquire(host.instanceId, { privateIp: host.privateIp }),
        );
        ec2MaxPerGrantingPut = Math.max(ec2MaxPerGrantingPut, put.ec2);
        return { host, subnet: formatCidr(lease.subnet), latencyMs: performance.now() - joined };
      } catch (error) {
        if (error instanceof TimeBoxExpired) return undefined;
        // 503 (come back later) and 429 (this instance's grant interval, after a grant turn taken
        // by an attempt that then lost its races) are waited out, as the agent does.
        const retryable = error instanceof VpcLeaseError && (error.status === 503 || error.status === 429);
        if (!retryable) throw error;
        if (error.status === 429) tooSoon++;
        else rejections++;
        const retryAfter = (error as { retryAfterSeconds?: number }).retryAfterSeconds;
        await sleep(backoff.next(retryAfter));
      }
    }
  };

  aws.counter.reset();
  const outcomes = await pool(scene.hosts, input.concurrency, join);
  const wallMs = performance.now() - started;
  const calls = Object.fromEntries(aws.counter.calls);
  const ec2Calls = aws.counter.total('EC2.');
  const dynamoCalls = aws.counter.total('DynamoDB.');
  const joined = outcomes.filter((o) => o !== undefined);
  const granted = joined.length;
  const cut = granted < scene.hosts.length;

  const verdict = await verifyLeasesAndRoutes({
    store: deps.store,
    ec2: aws.setup.ec2,
    config: scene.config,
    routeTableIds: scene.routeTableIds,
    hosts: joined.map((j) => j.host),
  });
  const problems = [...verdict.problems];
  const answered = new Set(joined.map((j) => j.subnet));
  if (answered.size !== granted) problems.push(`${granted - answered.size} subnet(s) granted twice`);
  for (const j of joined) {
    const held = verdict.byInstance.get(j.host.instanceId);
    if (held && formatCidr(held.subnet) !== j.subnet)
      problems.push(`${j.host.instanceId} was told another subnet`);
  }
  if (verdict.distinctSubnets !== granted)
    problems.push(`${verdict.distinctSubnets} distinct subnets for ${granted} granted leases`);
  // DESIGN.md "Routes": a new lease costs #tables + 2 EC2 calls, one more per table in dual stack
  const dualStack = scene.config.ipv6 !== undefined;
  const ec2Budget = scene.routeTableIds.length * (dualStack ? 2 : 1) + 2;
  if (ec2MaxPerGrantingPut > ec2Budget)
    problems.push(`a granting PUT made ${ec2MaxPerGrantingPut} EC2 requests; budget ${ec2Budget}`);
  const perLease = (count: number) => count / Math.max(1, granted);
  const latencies = joined.map((j) => j.latencyMs);
  return {
    strategy: input.strategyName,
    n: scene.hosts.length,
    concurrency: Math.min(input.concurrency, scene.hosts.length),
    tables: scene.routeTableIds.length,
    dualStack,
    granted,
    cut,
    wallMs,
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    distinctSubnets: verdict.distinctSubnets,
    routesCorrect: verdict.routesCorrect,
    routesExpected: verdict.routesExpected,
    dynamoPerLease: perLease(dynamoCalls),
    transactionsPerLease: perLease(calls['DynamoDB.TransactWriteItems'] ?? 0),
    grantAttemptsPerLease: perLease(tally.grants),
    scansPerLease: perLease(tally.scans),
    blockReadsPerLease: perLease(tally.blockReads),
    ec2PerLease: perLease(ec2Calls),
    ec2MaxPerGrantingPut,
    ec2Budget,
    conflicts: { ...tally.conflicts },
    rejections,
    tooSoon,
    calls,
    problems,
  };
}

/**
 * Throttled convergence: N new hosts run the real host agent (agent/agent.ts, `--once`)
 * against the real lease function, in-process, while EC2 throttles the account with its
 * documented token buckets (ec2-throttle.ts). Measured: the time until every route of
 * every lease exists, and until the last agent wrote its subnet.env, against the floor
 * the CreateRoute bucket sets: max(0, N x tables - burst) / refill seconds.
 *
 * Agents retry PUT /v1/lease on 503 as the real one does (exponential backoff with full
 * jitter, Retry-After as a floor); the reconcile runs on its 5-minute schedule. Time is
 * scaled (`timeScale`): the buckets refill, the agents sleep, the SDK retries and the
 * reconcile fires on an AWS clock that runs timeScale times faster than the wall clock.
 * moto's own speed is not scaled: its queueing weighs timeScale times more in AWS seconds,
 * which is why the moto latency is reported next to the times.
 */
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_OK, HostAgent } from '../../agent/agent.js';
import { Backoff } from '../../agent/backoff.js';
import { type Clock, systemClock } from '../../agent/clock.js';
import { checkLease, type LeaseApi } from '../../agent/lease-api.js';
import type { Logger as AgentLogger } from '../../agent/log.js';
import { readSubnetEnv } from '../../agent/subnet-env.js';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import { formatCidr } from '../../shared/cidr.js';
import { ApiError } from '../../shared/http/api-client.js';
import { HOST_PATHS } from '../../shared/http/contract.js';
import type { BenchAws } from './aws.js';
import {
  EC2_MUTATING,
  type Ec2Throttle,
  ec2Throttle,
  type ScaledClock,
  scaledClock,
} from './ec2-throttle.js';
import { hostArn, httpEvent } from './http-events.js';
import { FUNCTION_TIMEOUT_SECONDS, lambdaFleet } from './lambda-fleet.js';
import type { Scene } from './scene.js';
import { percentile } from './stats.js';
import { verifyLeasesAndRoutes } from './verify.js';

export interface ConvergenceResult {
  readonly n: number;
  readonly tables: number;
  readonly timeScale: number;
  /** max(0, N x tables - 50) / 5: the CreateRoute bucket alone, in AWS seconds */
  readonly floorSeconds: number;
  /** AWS seconds from the first PUT until the last route needed was written */
  readonly routesCompleteSeconds: number;
  /** AWS seconds until the last agent wrote subnet.env */
  readonly agentsDoneSeconds: number;
  readonly wallMs: number;
  /** HTTP answers the agents got, by status */
  readonly answers: Readonly<Record<string, number>>;
  /** 5xx other than 503 (which carries Retry-After and is the designed "come back later") */
  readonly unexpected5xx: number;
  readonly leasesLost: number;
  readonly distinctSubnets: number;
  readonly routesCorrect: number;
  readonly routesExpected: number;
  /** EC2 requests let through / refused by the buckets, per action */
  readonly ec2Allowed: Readonly<Record<string, number>>;
  readonly ec2Throttled: Readonly<Record<string, number>>;
  /** CreateRoute requests EC2 let through per route needed (1 = no token wasted) */
  readonly createRouteTokensPerRoute: number;
  readonly lambdaEnvironments: number;
  /** PUT invocations: duration in AWS seconds, and how many ran into the function timeout */
  readonly invocations: number;
  readonly invocationP50Seconds: number;
  readonly invocationP99Seconds: number;
  readonly invocationMaxSeconds: number;
  /** invocations whose SDK retry delays alone reach the function timeout (they would time out in AWS) */
  readonly timedOut: number;
  /** the longest SDK retry delay within one invocation, AWS seconds */
  readonly maxRetryDelaySeconds: number;
  /** the slowest invocation's time in SDK calls and in the SDK's retry delays, AWS seconds */
  readonly slowest: {
    readonly ec2Seconds: number;
    readonly dynamoSeconds: number;
    readonly retryDelaySeconds: number;
  };
  readonly reconcileRuns: number;
  /** p50 ms of a request that reached moto: far above ~10 ms means moto's queue, not EC2's buckets, set the pace */
  readonly engineP50Ms: { readonly dynamo: number; readonly ec2: number };
  /** findings that would matter in AWS but did not fail this run */
  readonly warnings: readonly string[];
  readonly problems: readonly string[];
}

const silentAgentLog: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** The agent's clock on AWS time: sleeps are timeScale times shorter on the wall clock. */
function agentClock(clock: ScaledClock): Clock {
  const epoch = Date.now();
  return {
    now: () => epoch + clock.seconds() * 1000,
    sleep: (ms, signal) => systemClock.sleep(Math.max(0, ms) / clock.timeScale, signal),
  };
}

/** Records when each route write succeeded (AWS seconds), keyed table + destination. */
function routeWriteRecorder(clock: ScaledClock) {
  const written = new Map<string, number>();
  const attach = (client: { middlewareStack: { add(m: unknown, o: unknown): void } }) =>
    client.middlewareStack.add(
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's generic middleware signature
      (next: any, context: any) => async (args: any) => {
        const result = await next(args);
        const command = String(context.commandName ?? '');
        if (command === 'CreateRouteCommand' || command === 'ReplaceRouteCommand') {
          const input = args.input as { RouteTableId?: string; DestinationCidrBlock?: string };
          const key = `${input.RouteTableId} ${input.DestinationCidrBlock}`;
          if (!written.has(key)) written.set(key, clock.seconds());
        }
        return result;
      },
      { step: 'initialize', priority: 'high', name: 'benchRouteWriteRecorder', override: true },
    );
  return { written, attach };
}

export async function runConvergence(input: {
  aws: BenchAws;
  scene: Scene;
  timeScale: number;
  /** AWS seconds before the run is declared stuck */
  deadlineSeconds: number;
  reconcileEverySeconds?: number;
}): Promise<ConvergenceResult> {
  const { aws, scene } = input;
  const tables = scene.routeTableIds.length;
  const n = scene.hosts.length;
  const clock = scaledClock(input.timeScale);
  const throttle: Ec2Throttle = ec2Throttle(clock);
  const recorder = routeWriteRecorder(clock);
  const fleet = lambdaFleet({
    aws,
    scene,
    throttle,
    timeScale: input.timeScale,
    onEc2Client: recorder.attach,
  });
  const answers: Record<string, number> = {};
  const dir = await mkdtemp(join(tmpdir(), 'vpc-lease-bench-agents-'));
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per waiting agent
  const agentTime = agentClock(clock);
  const doneAt = new Map<string, number>();
  let reconcileRuns = 0;

  const api = (host: LaunchedInstance): LeaseApi => ({
    async acquire(request) {
      const event = httpEvent({
        method: 'PUT',
        path: HOST_PATHS.lease,
        userArn: hostArn(host.instanceId),
        body: request,
      });
      const result = await fleet.invoke((env) => env.lease(event));
      const status = result.statusCode ?? 200;
      answers[status] = (answers[status] ?? 0) + 1;
      const body = result.body ? JSON.parse(result.body) : undefined;
      if (status === 200) return checkLease(body);
      const retryAfter = Number(result.headers?.['retry-after']);
      throw new ApiError(status, body?.error?.code ?? 'Unknown', body?.error?.message ?? `HTTP ${status}`, {
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
      });
    },
    async release() {},
  });

  const reconcileEvery = input.reconcileEverySeconds ?? 300;
  const reconciler = setInterval(
    () => {
      reconcileRuns++;
      void fleet
        .invoke((env) => env.deps.reconciler.reconcile(scene.config))
        .catch(() => undefined /* a throttled sweep is retried by the next one */);
    },
    (reconcileEvery * 1000) / input.timeScale,
  );
  const deadline = setTimeout(() => abort.abort(), (input.deadlineSeconds * 1000) / input.timeScale);

  const started = performance.now();
  let exits: number[];
  try {
    exits = await Promise.all(
      scene.hosts.map(async (host) => {
        const agent = new HostAgent({
          api: api(host),
          privateIp: host.privateIp,
          subnetFile: join(dir, `${host.instanceId}.env`),
          mtu: 8951,
          ipMasq: true,
          renewMarginMs: 3_600_000,
          once: true,
          releaseOnExit: false,
          log: silentAgentLog,
          signal: abort.signal,
          clock: agentTime,
          backoff: new Backoff(),
        });
        const code = await agent.run();
        if (code === EXIT_OK && !abort.signal.aborted) doneAt.set(host.instanceId, clock.seconds());
        return code;
      }),
    );
  } finally {
    clearInterval(reconciler);
    clearTimeout(deadline);
  }
  const wallMs = performance.now() - started;

  const problems: string[] = [];
  if (abort.signal.aborted) problems.push(`not converged within ${input.deadlineSeconds} AWS seconds`);
  const failedAgents = exits.filter((code) => code !== EXIT_OK).length;
  if (failedAgents > 0) problems.push(`${failedAgents} agent(s) exited with an error`);

  const verdict = await verifyLeasesAndRoutes({
    store: scene.deps.store,
    ec2: aws.setup.ec2,
    config: scene.config,
    routeTableIds: scene.routeTableIds,
    hosts: scene.hosts,
  });
  problems.push(...verdict.problems);
  // A lease is lost when a host has none, or its subnet.env names a subnet it does not hold.
  let leasesLost = 0;
  for (const host of scene.hosts) {
    const lease = verdict.byInstance.get(host.instanceId);
    const file = await readSubnetEnv(join(dir, `${host.instanceId}.env`));
    const written = file.status === 'read' ? file.env.subnet : undefined;
    if (!lease || written !== formatCidr(lease.subnet)) leasesLost++;
  }
  if (leasesLost > 0) problems.push(`${leasesLost} lease(s) lost`);
  await rm(dir, { recursive: true, force: true });

  let routesCompleteSeconds = 0;
  for (const [instanceId, lease] of verdict.byInstance) {
    for (const table of scene.routeTableIds) {
      const at = recorder.written.get(`${table} ${formatCidr(lease.subnet)}`);
      if (at === undefined) problems.push(`no route write seen for ${instanceId} in ${table}`);
      else routesCompleteSeconds = Math.max(routesCompleteSeconds, at);
    }
  }
  const unexpected5xx = Object.entries(answers)
    .filter(([status]) => Number(status) >= 500 && Number(status) !== 503)
    .reduce((sum, [, count]) => sum + count, 0);
  if (unexpected5xx > 0) problems.push(`${unexpected5xx} answer(s) 5xx other than 503`);

  const k = input.timeScale;
  const invocations = fleet.invocations.filter((i) => i.durationMs > 0);
  const durations = invocations.map((i) => (i.durationMs * k) / 1000);
  const slowest = invocations.reduce<(typeof invocations)[number] | undefined>(
    (worst, i) => (!worst || i.durationMs > worst.durationMs ? i : worst),
    undefined,
  );
  const routesNeeded = verdict.leases * tables;
  const warnings: string[] = [];
  const wouldTimeOut = invocations.filter(
    (i) => (i.retryDelayMs * k) / 1000 >= FUNCTION_TIMEOUT_SECONDS,
  ).length;
  if (wouldTimeOut > 0) {
    warnings.push(
      `${wouldTimeOut} invocation(s) spent ${FUNCTION_TIMEOUT_SECONDS} s or more in SDK retry delays alone: in AWS they would hit the function timeout`,
    );
  }
  return {
    n,
    tables,
    timeScale: input.timeScale,
    floorSeconds: Math.max(0, n * tables - EC2_MUTATING.burst) / EC2_MUTATING.refillPerSecond,
    routesCompleteSeconds,
    agentsDoneSeconds: Math.max(0, ...doneAt.values()),
    wallMs,
    answers,
    unexpected5xx,
    leasesLost,
    distinctSubnets: verdict.distinctSubnets,
    routesCorrect: verdict.routesCorrect,
    routesExpected: verdict.routesExpected,
    ec2Allowed: Object.fromEntries(throttle.allowed),
    ec2Throttled: Object.fromEntries(throttle.refused),
    createRouteTokensPerRoute: (throttle.allowed.get('CreateRoute') ?? 0) / Math.max(1, routesNeeded),
    lambdaEnvironments: fleet.size,
    invocations: invocations.length,
    invocationP50Seconds: percentile(durations, 50),
    invocationP99Seconds: percentile(durations, 99),
    invocationMaxSeconds: Math.max(0, ...durations),
    timedOut: wouldTimeOut,
    maxRetryDelaySeconds: Math.max(0, ...invocations.map((i) => (i.retryDelayMs * k) / 1000)),
    slowest: {
      ec2Seconds: ((slowest?.sdkMs.EC2 ?? 0) * k) / 1000,
      dynamoSeconds: ((slowest?.sdkMs.DynamoDB ?? 0) * k) / 1000,
      retryDelaySeconds: ((slowest?.retryDelayMs ?? 0) * k) / 1000,
    },
    reconcileRuns,
    engineP50Ms: {
      dynamo: percentile(fleet.engineLatencies.DynamoDB, 50),
      ec2: percentile(fleet.engineLatencies.EC2, 50),
    },
    warnings,
    problems,
  };
}

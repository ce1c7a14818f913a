/**
 * docs/benchmarks.md, and the same tables on the console: the figures of one run, what
 * each means and what it does not.
 */
import type { ColdStartRow } from './cold-start.js';
import type { ConvergenceResult } from './convergence.js';
import { EC2_DESCRIBE, EC2_MUTATING } from './ec2-throttle.js';
import type { Machine } from './machine.js';
import { ratio } from './stats.js';
import type { StormResult } from './storm.js';
import { fixed, kib, markdownTable, seconds, times } from './table.js';

export interface BenchPlan {
  readonly quick: boolean;
  readonly stormNs: readonly number[];
  readonly strategies: readonly string[];
  readonly concurrency: number;
  readonly timeBoxSeconds: number;
  /** storms up to this N run every strategy to the end */
  readonly untimedUpTo: number;
  readonly oursLimitSeconds: number;
  readonly storm: { readonly network: string; readonly subnetLen: number; readonly routeLimit: number };
  readonly convergence: {
    readonly ns: readonly number[];
    readonly tables: number;
    readonly timeScale: number;
  };
  readonly coldRuns: number;
}

export interface BenchResults {
  readonly machine: Machine;
  readonly startedAt: Date;
  readonly totalMs: number;
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly storm: readonly StormResult[];
  readonly convergence: readonly ConvergenceResult[];
  readonly coldStart: readonly ColdStartRow[];
}

export const STRATEGY_LABELS: Record<string, string> = {
  random: 'random (ours)',
  lowest: 'lowest free (naive)',
  flannel: 'flannel (random in first 100 free)',
};

// ---------------------------------------------------------------- tables

export function stormTable(results: readonly StormResult[]): string {
  return markdownTable(
    [
      'N',
      'strategy',
      'granted',
      'wall s',
      'p50 s',
      'p99 s',
      'DynamoDB req/lease',
      'TransactWriteItems/lease',
      'grant attempts/lease',
      'scans/lease',
      'block reads/lease',
      'EC2 req/lease',
      'max EC2 req/PUT (budget)',
      '503s',
      'distinct subnets',
    ],
    results.map((r) => [
      String(r.n),
      STRATEGY_LABELS[r.strategy] ?? r.strategy,
      r.cut ? `${r.granted} (time box)` : String(r.granted),
      seconds(r.wallMs),
      seconds(r.latencyP50Ms),
      seconds(r.latencyP99Ms),
      fixed(r.dynamoPerLease),
      fixed(r.transactionsPerLease),
      fixed(r.grantAttemptsPerLease),
      fixed(r.scansPerLease),
      fixed(r.blockReadsPerLease),
      fixed(r.ec2PerLease),
      `${r.ec2MaxPerGrantingPut} (${r.ec2Budget})`,
      String(r.rejections),
      `${r.distinctSubnets}${r.distinctSubnets === r.granted ? ' ✓' : ' ✗'}`,
    ]),
  );
}

export function stormRatioTable(results: readonly StormResult[]): string {
  const rows: string[][] = [];
  for (const ours of results.filter((r) => r.strategy === 'random')) {
    for (const other of results.filter((r) => r.n === ours.n && r.strategy !== 'random')) {
      // A run stopped by its time box granted the cheap early leases only: its true cost is higher.
      const atLeast = other.cut;
      const wallPerLease = (r: StormResult) => r.wallMs / Math.max(1, r.granted);
      rows.push([
        String(ours.n),
        `${other.strategy} / ours`,
        times(ratio(other.transactionsPerLease, ours.transactionsPerLease), atLeast),
        times(ratio(other.grantAttemptsPerLease, ours.grantAttemptsPerLease), atLeast),
        times(ratio(other.dynamoPerLease, ours.dynamoPerLease), atLeast),
        // Times of a cut run cover its cheap early leases only: no bound worth printing.
        other.cut ? '-' : times(ratio(wallPerLease(other), wallPerLease(ours))),
        other.cut ? '-' : times(ratio(other.latencyP99Ms, ours.latencyP99Ms)),
      ]);
    }
  }
  return markdownTable(
    [
      'N',
      'ratio',
      'TransactWriteItems/lease',
      'grant attempts/lease',
      'DynamoDB req/lease',
      'wall/lease',
      'p99',
    ],
    rows,
  );
}

export function convergenceTable(results: readonly ConvergenceResult[]): string {
  return markdownTable(
    [
      'N',
      'tables',
      'floor s',
      'every route s',
      'last agent s',
      'vs floor',
      'answers 200 / 503 / other 5xx',
      'leases lost',
      'CreateRoute tokens/route',
      'max SDK retry delay in one PUT s',
      'moto p50 ms (DynamoDB / EC2)',
      'wall s',
    ],
    results.map((r) => [
      String(r.n),
      String(r.tables),
      fixed(r.floorSeconds, 0),
      fixed(r.routesCompleteSeconds, 1),
      fixed(r.agentsDoneSeconds, 1),
      times(ratio(r.routesCompleteSeconds, r.floorSeconds)),
      `${r.answers['200'] ?? 0} / ${r.answers['503'] ?? 0} / ${r.unexpected5xx}`,
      String(r.leasesLost),
      fixed(r.createRouteTokensPerRoute),
      fixed(r.maxRetryDelaySeconds, 1),
      `${fixed(r.engineP50Ms.dynamo, 0)} / ${fixed(r.engineP50Ms.ec2, 0)}`,
      seconds(r.wallMs),
    ]),
  );
}

export function coldStartTable(rows: readonly ColdStartRow[]): string {
  const baseline = (packaging: string) =>
    rows.find((r) => r.name === 'baseline' && r.packaging === packaging);
  return markdownTable(
    [
      'function',
      'SDK',
      'bundle',
      'gzip',
      'import ms',
      'first invocation ms',
      'import + invocation ms',
      'vs baseline',
      'process ms',
    ],
    rows.map((r) => [
      r.name,
      r.packaging === 'sdk-bundled' ? 'bundled' : 'external',
      kib(r.bytes),
      kib(r.gzipBytes),
      fixed(r.importMs, 0),
      fixed(r.invokeMs, 0),
      fixed(r.totalMs, 0),
      r.name === 'baseline' ? '1×' : times(ratio(r.totalMs, baseline(r.packaging)?.totalMs ?? Number.NaN)),
      fixed(r.processMs, 0),
    ]),
  );
}

export function packagingTable(rows: readonly ColdStartRow[]): string {
  const names = [...new Set(rows.map((r) => r.name))];
  return markdownTable(
    [
      'function',
      'import: external / bundled',
      'import + invocation: external / bundled',
      'gzip: bundled / external',
    ],
    names.map((name) => {
      const bundled = rows.find((r) => r.name === name && r.packaging === 'sdk-bundled');
      const external = rows.find((r) => r.name === name && r.packaging === 'sdk-external');
      if (!bundled || !external) return [name, '-', '-', '-'];
      return [
        name,
        times(ratio(external.importMs, bundled.importMs)),
        times(ratio(external.totalMs, bundled.totalMs)),
        times(ratio(bundled.gzipBytes, external.gzipBytes)),
      ];
    }),
  );
}

export function headline(results: BenchResults): string {
  const lines: string[] = [];
  const ours = (n: number) => results.storm.find((r) => r.n === n && r.strategy === 'random');
  for (const other of results.storm.filter((r) => r.strategy !== 'random')) {
    const base = ours(other.n);
    if (!base) continue;
    lines.push(
      `- Storm N = ${other.n}, ${STRATEGY_LABELS[other.strategy] ?? other.strategy} over ours: ` +
        `${times(ratio(other.transactionsPerLease, base.transactionsPerLease), other.cut)} TransactWriteItems per lease ` +
        `(${fixed(other.transactionsPerLease)} vs ${fixed(base.transactionsPerLease)}), ` +
        `${times(ratio(other.grantAttemptsPerLease, base.grantAttemptsPerLease), other.cut)} grant attempts` +
        (other.cut ? ` (stopped by the time box at ${other.granted} of ${other.n} leases)` : '') +
        '.',
    );
  }
  for (const r of results.convergence) {
    lines.push(
      `- Throttled convergence N = ${r.n} × ${r.tables} tables: every route after ${fixed(r.routesCompleteSeconds, 0)} s ` +
        `(${times(ratio(r.routesCompleteSeconds, r.floorSeconds))} the ${fixed(r.floorSeconds, 0)} s floor), ` +
        `${r.leasesLost} leases lost; the agents got ${r.answers['503'] ?? 0} answers 503 (Retry-After; retried) and ` +
        `${r.unexpected5xx} other 5xx; ${r.timedOut} invocations spent 15 s or more in SDK retry delays ` +
        '(the function timeout in AWS).',
    );
  }
  const cold = (name: string, packaging: string) =>
    results.coldStart.find((r) => r.name === name && r.packaging === packaging);
  const bundled = cold('lease', 'sdk-bundled');
  const external = cold('lease', 'sdk-external');
  const baseline = cold('baseline', 'sdk-bundled');
  if (bundled && external && baseline) {
    lines.push(
      `- Cold start of the lease function: ${fixed(bundled.totalMs, 0)} ms to import and serve a first grant with the SDK ` +
        `bundled (${times(ratio(bundled.totalMs, baseline.totalMs))} the bare-SDK baseline), ` +
        `${fixed(external.totalMs, 0)} ms with the SDK external (${times(ratio(external.totalMs, bundled.totalMs))}).`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- checks

export function collectProblems(results: BenchResults): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const r of results.storm) {
    for (const p of r.problems) problems.push(`storm N=${r.n} ${r.strategy}: ${p}`);
    if (r.strategy === 'random' && r.cut)
      problems.push(`storm N=${r.n} ours: only ${r.granted} of ${r.n} hosts got a lease in time`);
  }
  for (const r of results.convergence) {
    for (const p of r.problems) problems.push(`convergence N=${r.n}: ${p}`);
    for (const w of r.warnings) warnings.push(`convergence N=${r.n}: ${w}`);
  }
  return { problems, warnings };
}

// ---------------------------------------------------------------- the document

export function renderReport(plan: BenchPlan, results: BenchResults): string {
  const { machine } = results;
  const { problems, warnings } = collectProblems(results);
  const date = results.startedAt.toISOString().replace(/\.\d+Z$/, 'Z');
  const minutes = results.totalMs / 60_000;
  const capacity = plan.storm.routeLimit - 2;
  const subnets = 2 ** (plan.storm.subnetLen - Number(plan.storm.network.split('/')[1])) - 1;
  const conv = plan.convergence;
  const stormNs = plan.stormNs.join(', ');

  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts) on ${date}; the whole run took
**${fixed(minutes, 1)} minutes** on this machine (the budget is ten).${plan.quick ? ' **Quick (smoke) run: not the full figures.**' : ''}

## Headline

${headline(results)}

## Machine

| | |
| --- | --- |
| CPU | ${machine.cpu}, ${machine.cores} cores (\`os.cpus()\`) |
| memory | ${machine.memoryGiB} GiB |
| load average (1 min) | ${fixed(results.loadBefore, 1)} at the start, ${fixed(results.loadAfter, 1)} at the end — the machine is shared with other test runs |
| Node | ${machine.node} |
| moto | ${machine.moto} (two \`moto_server\`s started by the bench: one for DynamoDB, one for EC2) |
| esbuild | ${machine.esbuild} |
| AWS SDK | @aws-sdk/client-ec2 ${machine.awsSdk} (lock file) |
| commit | ${machine.commit} (plus uncommitted work of that moment) |

## How to rerun

\`\`\`sh
npm run bench                 # everything, ~${Math.max(1, Math.ceil(minutes))} min; rewrites docs/benchmarks.md
BENCH_QUICK=1 npm run bench   # smoke run (under a minute): small N, one cold start each; prints, writes nothing
\`\`\`

Knobs (environment): \`BENCH_STORM_N=50,200,990\` (storm sizes), \`BENCH_CONCURRENCY\` (joins in flight,
default 50), \`BENCH_TIME_BOX\` (seconds for each comparison strategy, default 25), \`BENCH_CONVERGENCE_N\`,
\`BENCH_TIME_SCALE\`, \`BENCH_COLD_RUNS\`, \`BENCH_OUTPUT\` (where to write the report; \`-\` for nowhere).
moto must be installed (\`npm run setup:moto\`); the bench starts it on free loopback ports and
stops it at the end, on error and on Ctrl-C. \`npm test\` runs a smoke storm (test/bench/bench-smoke.test.ts)
that checks the invariants, never the timings.

## Read this first

- **moto serialises.** Each moto_server handles one request at a time (scripts/lib/moto_serialized.py),
  so no two transactions ever overlap and DynamoDB's \`TransactionConflict\` never happens here. moto
  ${machine.moto}'s own \`TransactWriteItems\` deep-copies the whole table once per item for its rollback; the
  launcher replaces that with a copy of the items written (scripts/lib/moto_dynamodb_fast_tx.py), so a
  grant no longer costs moto time in proportion to the table. A \`Scan\` of a few thousand items still takes
  it about a second. Wall times and latencies below are moto's and this machine's, not AWS's: they are
  useful only next to each other, in the same run.
- **Request counts are the figures.** Every SDK request is counted (retries included) by the same
  middleware the tests use (shared/adapters/aws-clients.ts). Those counts do not depend on moto's speed
  and are what DynamoDB and EC2 would bill and throttle.
- Medians where a figure was repeated (cold starts: ${plan.coldRuns} runs each); the storm and convergence runs
  are single runs (each takes up to minutes on moto) — their counts vary by a few percent between runs, the
  wall times by more, with the machine's load.

## Lease storm

N freshly launched moto instances ask for a lease at the same moment. Each joiner calls the real
\`LeaseService.acquire\` (real DynamoDB store, real EC2 adapters) with the strategy under test; a joiner
answered 503 waits as the agent does (exponential backoff, full jitter, \`Retry-After\` as a floor) and asks
again. Every strategy runs on a fresh moto (new VPC, hosts, route table, lease table).

- Network \`${plan.storm.network}\`, SubnetLen ${plan.storm.subnetLen}: ${subnets} leasable subnets.
  \`RouteLimit\` ${plan.storm.routeLimit} (AWS's maximum), one route table holding the local route and
  0.0.0.0/0: capacity ${capacity} leases.
- **N = ${stormNs}.** Not 1000: one route table holds at most 1000 routes, the local route included, so
  1000 leases never fit one table; 990 is about the most aws-vpc can ever serve. Route capacity is one
  counter item (\`CAPACITY\`, docs/design.md): a grant fails on it only when every place is held, so the
  last joiners have no capacity slot to guess. A lost race re-reads the occupancy of 20 candidate subnets
  (one \`BatchGetItem\`, *block reads*), not the table (*scans*: only when no candidate is left).
- **In flight: ${plan.concurrency} joins at a time** (in-process; the SDK's default socket pool). In AWS each
  PUT is its own Lambda invocation and all N would run in parallel: collisions there are more frequent
  than here, so the naive strategies' figures below are, if anything, kind to them.
- **Time box.** Above N = ${plan.untimedUpTo}, the comparison strategies stop starting new attempts after
  ${plan.timeBoxSeconds} s (moto time); a run cut that way shows \`granted\` < N, and its per-lease figures cover the early, cheaper leases
  only, so its ratios are lower bounds (≥). Ours must finish (within ${plan.oursLimitSeconds} s) or the
  bench fails.

${stormTable(results.storm)}

Ratios (the comparison strategy over ours, same N):

${stormRatioTable(results.storm)}

What the columns mean:

- *granted*: leases granted; *distinct subnets* must equal it (✓) and every lease must have its route,
  to the lease's ENI, in the table — the bench fails otherwise.
- *wall*: first PUT to last lease; *p50/p99*: per host, from its first PUT to its lease, 503 waits
  included. Moto time (see above).
- *DynamoDB req/lease*: every DynamoDB request of the storm / leases granted (wasted attempts included).
- *TransactWriteItems/lease*: the grant transactions (a lost race is one more; a \`TransactionConflict\`
  retried by the store is one more) plus one route-state update per lease — 2.00 is the minimum.
- *grant attempts/lease*: \`store.grant\` calls; *block reads/lease*: occupancy reads of 20 candidates (one
  \`BatchGetItem\` after a lost race); *scans/lease*: full occupancy scans (a nearly full network or capacity).
- *EC2 req/lease* and *max EC2 req/PUT*: the design's budget for a new lease is #tables + 2
  (DescribeInstances, the source/destination check, one CreateRoute per table); a PUT refused with 503
  before granting costs one DescribeInstances.
- *503s*: answers "too many hosts are joining at once" (12 lost races in one request) the joiners waited out.

What they do not mean: the wall times are not what AWS would take (DynamoDB serves these requests in
parallel, in milliseconds); they do not include API Gateway or Lambda start-up.

## Throttled convergence

N new hosts run the real host agent (agent/agent.ts with \`--once\`: PUT /v1/lease until the lease's
routes exist, then write subnet.env) against the real lease function (middy chain, in-process), while
EC2 throttles: a token bucket per API action in front of every EC2 client, as an SDK middleware at the
\`finalizeRequest\` step (below the SDK's retry), answering \`RequestLimitExceeded\` (HTTP 503) when empty —
mutating actions ${EC2_MUTATING.burst} burst / ${EC2_MUTATING.refillPerSecond} per s, Describe* ${EC2_DESCRIBE.burst} / ${EC2_DESCRIBE.refillPerSecond} per s, as
AWS's "Request throttling for the Amazon EC2 API" gives them. Every invocation runs in a simulated Lambda
environment (an idle one is reused, otherwise a new one starts with its own SDK clients and retry
quota). The reconcile runs on its 5-minute schedule. ${conv.tables} route tables in scope.

- **Time scale ${conv.timeScale}×.** The buckets refill, the agents sleep, the SDK's retry delays and the
  reconcile schedule all run on an AWS clock ${conv.timeScale}× faster than the wall clock; times below are
  in AWS seconds. moto's speed is not scaled: its queueing counts ${conv.timeScale}× in AWS seconds.
- **Floor** = max(0, N·tables − ${EC2_MUTATING.burst}) / ${EC2_MUTATING.refillPerSecond} s: the CreateRoute bucket alone, if every token
  went to a needed route and nothing else were slow.
- The function timeout (15 s) is not enforced here (moto's queue is not AWS latency); what would count
  against it in AWS, the SDK's own retry delays within one invocation, is reported.

${convergenceTable(results.convergence)}

- *every route*: AWS seconds from the first PUT until the last needed route was first written
  (\`CreateRoute\` answered OK); *last agent*: until the last agent wrote its subnet.env.
- *answers*: what the agents got. 503 (with \`Retry-After\`) is the API's designed "come back later" — the
  lease is kept and the agent retries; any other 5xx fails the bench. *leases lost*: hosts without a lease,
  or whose subnet.env names a subnet they do not hold — must be 0.
- *CreateRoute tokens/route*: CreateRoute requests EC2 let through per route needed; above 1 means tokens
  went to routes that already existed (a retried PUT rewrites every table, not only the pending ones).
- *moto p50*: the median time a request that reached moto took. Far above ~10 ms it is moto's queue, not
  EC2's buckets, that set the pace — then *vs floor* measures moto as much as the design.

## Cold start

Each function (functions/*.ts) bundled with esbuild's API as serverless.yml does (ESM, minified,
node22, \`mainFields\` module first, the \`createRequire\` banner; no source maps), once with the AWS SDK
inside and once with \`@aws-sdk/*\` external (resolved from node_modules, as from the runtime's own copy).
Each bundle is started ${plan.coldRuns}× in a fresh \`node\` process that imports it and invokes the handler once
against moto (\`TABLE_NAME\`, \`VPC_ID\`, \`AWS_ENDPOINT_URL*\` set); medians. The baseline bundle holds only
the same SDK clients (DynamoDB document client, EC2) and sends one request on each.

${coldStartTable(results.coldStart)}

External SDK over bundled SDK (same function):

${packagingTable(results.coldStart)}

- *import*: \`await import(bundle)\`; *first invocation*: the handler's first call, dependencies built,
  credentials and endpoints resolved, the requests to moto included; *process*: spawn to exit, Node's own
  start-up included. The invocations differ in the requests they make (column "invocation" below), so
  compare *import* across functions and *import + invocation* against the baseline.
- Not measured: Lambda's own sandbox start, the runtime's copy of the SDK (here: the lock file's, from
  local disk), source maps (\`NODE_OPTIONS=--enable-source-maps\` in serverless.yml adds to start-up).

${markdownTable(
  ['function', 'invocation'],
  [...new Map(results.coldStart.map((r) => [r.name, r.invocation]))].map(([name, invocation]) => [
    name,
    invocation,
  ]),
)}

## Checks

${problems.length === 0 ? 'All invariants held: every storm gave distinct subnets equal to the leases granted, each with its route; ours granted every N; no granting PUT exceeded the EC2 budget; no lease lost and no 5xx other than 503 in the convergence runs.' : `**Failed:**\n\n${problems.map((p) => `- ${p}`).join('\n')}`}
${warnings.length === 0 ? '' : `\nWarnings (do not fail the run; matter in AWS):\n\n${warnings.map((w) => `- ${w}`).join('\n')}\n`}`;
}

/**
 * `npm run bench`: the lease storm, throttled convergence and cold starts against
 * moto_servers started here (and stopped at the end, on error and on Ctrl-C); prints the
 * tables and writes docs/benchmarks.md. BENCH_QUICK=1 is a smoke run that writes nothing.
 * The last line printed is `BENCH_SUMMARY ` + one JSON object (bench/lib/summary.ts).
 * Exit status 1 when an invariant failed (the report and the summary are still written).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type MotoServer, startMoto } from '../scripts/lib/moto.js';
import { STRATEGIES } from '../shared/allocator.js';
import { benchAws, useFakeCredentials } from './lib/aws.js';
import { REPO_ROOT } from './lib/cold-start.js';
import { runColdStarts } from './lib/cold-start-suite.js';
import { type ConvergenceResult, runConvergence } from './lib/convergence.js';
import { describeMachine, loadAverage } from './lib/machine.js';
import {
  type BenchPlan,
  type BenchResults,
  coldStartTable,
  collectProblems,
  convergenceTable,
  packagingTable,
  renderReport,
  stormRatioTable,
  stormTable,
  strategyLabel,
} from './lib/report.js';
import { freshScene } from './lib/scene.js';
import { runStorm, type StormResult } from './lib/storm.js';
import { benchSummary, summaryLine } from './lib/summary.js';
import { seconds } from './lib/table.js';

const numbers = (text: string | undefined, fallback: readonly number[]): number[] =>
  text ? text.split(',').map((n) => Number(n.trim())) : [...fallback];
const number = (text: string | undefined, fallback: number): number => (text ? Number(text) : fallback);

const SECTIONS = ['storm', 'convergence', 'cold'] as const;

function planFromEnvironment(env: NodeJS.ProcessEnv): BenchPlan {
  const quick = env.BENCH_QUICK === '1';
  const sections = (env.BENCH_SECTIONS ?? SECTIONS.join(',')).split(',').map((s) => s.trim());
  for (const section of sections) {
    if (!(SECTIONS as readonly string[]).includes(section))
      throw new Error(`BENCH_SECTIONS: "${section}" is not one of ${SECTIONS.join(', ')}.`);
  }
  const plan: BenchPlan = {
    quick,
    sections,
    stormNs: numbers(env.BENCH_STORM_N, quick ? [20] : [50, 200, 990]),
    dualStack: env.BENCH_DUAL_STACK === '1',
    dualStackNs: env.BENCH_DUAL_STACK_N === '0' ? [] : numbers(env.BENCH_DUAL_STACK_N, quick ? [20] : [200]),
    strategies: ['random', 'lowest', 'flannel'],
    concurrency: number(env.BENCH_CONCURRENCY, 50),
    timeBoxSeconds: number(env.BENCH_TIME_BOX, quick ? 15 : 25),
    untimedUpTo: 50,
    oursLimitSeconds: number(env.BENCH_OURS_LIMIT, quick ? 120 : 480),
    storm: { network: '10.128.0.0/12', subnetLen: 24, routeLimit: 1000 },
    convergence: {
      ns: numbers(env.BENCH_CONVERGENCE_N, quick ? [30] : [100, 300]),
      tables: 2,
      timeScale: number(env.BENCH_TIME_SCALE, 2),
    },
    coldRuns: number(env.BENCH_COLD_RUNS, quick ? 1 : 5),
  };
  const capacity = plan.storm.routeLimit - 2;
  for (const n of [...plan.stormNs, ...plan.dualStackNs, ...plan.convergence.ns]) {
    if (!Number.isInteger(n) || n < 1 || n > capacity)
      throw new Error(`N=${n}: each N must be a whole number from 1 to ${capacity} (the route capacity).`);
  }
  return plan;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

/**
 * BENCH_DUAL_STACK=1: every storm on a dual-stack network (flannel's EnableIPv6), so that a
 * lease's EC2 calls are tables x 2 + 2 (one route per table and family). Without it, only
 * vpc-lease's own strategy storms a dual-stack network, at BENCH_DUAL_STACK_N (default 200;
 * 0 skips it). The IPv6 range is as
 * large as the IPv4 one needs (a lease pairs the subnets of one index).
 */
const DUAL_STACK = { EnableIPv6: true, IPv6Network: 'fd00:10:128::/48', IPv6SubnetLen: 64 } as const;

async function main(): Promise<number> {
  useFakeCredentials();
  const plan = planFromEnvironment(process.env);
  const startedAt = new Date();
  const started = performance.now();
  const loadBefore = loadAverage();
  const servers: MotoServer[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () => (stopping ??= Promise.all(servers.map((s) => s.stop())).then(() => undefined));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\n${signal}: stopping moto`);
      void stopAll().finally(() => process.exit(130));
    });
  }

  try {
    servers.push(...(await Promise.all([startMoto(), startMoto()])));
    const [dynamoServer, ec2Server] = servers as [MotoServer, MotoServer];
    const aws = benchAws({ dynamo: dynamoServer.endpoint, ec2: ec2Server.endpoint });
    try {
      const storm: StormResult[] = [];
      // Every strategy at every N; then vpc-lease's own once more on a dual-stack network, so the
      // second family's cost (tables x 2 + 2 EC2 calls per lease) shows beside the IPv4 figures.
      const storms = [
        ...plan.stormNs.flatMap((n) =>
          plan.strategies.map((name) => ({ n, name, dualStack: plan.dualStack })),
        ),
        ...(plan.dualStack ? [] : plan.dualStackNs.map((n) => ({ n, name: 'random', dualStack: true }))),
      ];
      for (const { n, name, dualStack } of plan.sections.includes('storm') ? storms : []) {
        {
          const scene = await freshScene(aws, {
            hosts: n,
            // The storm measures allocation: a retry after a 503 (12 lost races, which the naive
            // strategies meet) is not held back by the instance's grant interval here.
            grantIntervalSeconds: 0,
            network: {
              Network: plan.storm.network,
              SubnetLen: plan.storm.subnetLen,
              RouteLimit: plan.storm.routeLimit,
              ...(dualStack ? DUAL_STACK : {}),
            },
          });
          const ours = name === 'random';
          const result = await runStorm({
            aws,
            scene,
            strategyName: name,
            strategy: STRATEGIES[name as keyof typeof STRATEGIES],
            concurrency: plan.concurrency,
            // Small storms run to the end for every strategy, so their ratios are exact.
            timeBoxSeconds: ours || n <= plan.untimedUpTo ? plan.oursLimitSeconds : plan.timeBoxSeconds,
          });
          storm.push(result);
          log(
            `storm N=${n} ${strategyLabel(result)}: ${result.granted}/${n} leases in ${seconds(result.wallMs)} s, ` +
              `${result.transactionsPerLease.toFixed(2)} TransactWriteItems/lease${result.problems.length ? ` — ${result.problems.join('; ')}` : ''}`,
          );
        }
      }

      const convergence: ConvergenceResult[] = [];
      for (const n of plan.sections.includes('convergence') ? plan.convergence.ns : []) {
        const scene = await freshScene(aws, {
          hosts: n,
          tables: plan.convergence.tables,
          network: {
            Network: plan.storm.network,
            SubnetLen: plan.storm.subnetLen,
            RouteLimit: plan.storm.routeLimit,
          },
        });
        const result = await runConvergence({
          aws,
          scene,
          timeScale: plan.convergence.timeScale,
          deadlineSeconds: 3600,
        });
        convergence.push(result);
        log(
          `convergence N=${n}: every route after ${result.routesCompleteSeconds.toFixed(1)} s (floor ${result.floorSeconds} s), ` +
            `${seconds(result.wallMs)} s on the wall clock${result.problems.length ? ` — ${result.problems.join('; ')}` : ''}`,
        );
      }

      let coldStart: Awaited<ReturnType<typeof runColdStarts>> = [];
      if (plan.sections.includes('cold')) {
        log('cold starts...');
        coldStart = await runColdStarts(aws, plan.coldRuns);
      }

      const results: BenchResults = {
        machine: describeMachine(),
        startedAt,
        totalMs: performance.now() - started,
        loadBefore,
        loadAfter: loadAverage(),
        storm,
        convergence,
        coldStart,
      };
      log(`\n## Lease storm\n\n${stormTable(storm)}\n\n${stormRatioTable(storm)}`);
      log(`\n## Throttled convergence (AWS seconds)\n\n${convergenceTable(convergence)}`);
      log(`\n## Cold start (medians)\n\n${coldStartTable(coldStart)}\n\n${packagingTable(coldStart)}`);
      const { problems, warnings } = collectProblems(results);
      for (const w of warnings) log(`warning: ${w}`);
      for (const p of problems) log(`FAILED: ${p}`);
      log(`\nTotal: ${(results.totalMs / 60_000).toFixed(1)} min`);

      // docs/benchmarks.md only from a full run; a partial one writes where BENCH_OUTPUT says
      const partial = plan.quick || plan.sections.length < SECTIONS.length;
      const output = process.env.BENCH_OUTPUT ?? (partial ? '-' : join(REPO_ROOT, 'docs', 'benchmarks.md'));
      if (output !== '-') {
        await writeFile(output, renderReport(plan, results));
        log(`wrote ${output}`);
      }
      log(summaryLine(benchSummary({ storm, convergence, coldStart, strategyLabel })));
      return problems.length === 0 ? 0 : 1;
    } finally {
      aws.destroy();
    }
  } finally {
    await stopAll();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);

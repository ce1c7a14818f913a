/**
 * A small lease storm through the benchmark's own code (bench/lib/storm.ts), so that
 * `npm test` catches a broken bench and the invariants the bench reports: N hosts joining
 * at once get N distinct subnets, each with its route, within DESIGN.md's EC2 budget.
 * Then the whole bench, small (`BENCH_QUICK=1`), as `npm run bench` runs it: its last line is
 * the summary, in the shape the design notes fix, and its invariants hold.
 * Timings are the bench's business, never asserted here.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchAws, useFakeCredentials } from '../../bench/lib/aws.js';
import { freshScene, type Scene } from '../../bench/lib/scene.js';
import { runStorm, type StormResult } from '../../bench/lib/storm.js';
import { SUMMARY_PREFIX } from '../../bench/lib/summary.js';
import { type MotoServer, startMoto } from '../../scripts/lib/moto.js';
import { STRATEGIES } from '../../shared/allocator.js';

const N = 20;

describe('bench smoke: a storm of 20 simultaneous joins with our allocation strategy (moto)', () => {
  let moto: MotoServer;
  let aws: ReturnType<typeof benchAws>;
  let result: StormResult;
  let usage: Awaited<ReturnType<Scene['deps']['store']['capacity']['usage']>>;

  beforeAll(async () => {
    useFakeCredentials();
    moto = await startMoto();
    aws = benchAws({ dynamo: moto.endpoint, ec2: moto.endpoint });
    const scene = await freshScene(aws, {
      hosts: N,
      network: { Network: '10.128.0.0/12', SubnetLen: 24, RouteLimit: 1000 },
    });
    result = await runStorm({
      aws,
      scene,
      strategyName: 'random',
      strategy: STRATEGIES.random,
      concurrency: N,
    });
    usage = await scene.deps.store.capacity.usage();
  }, 120_000);

  afterAll(async () => {
    aws?.destroy();
    await moto?.stop();
  });

  it('grants every host a lease, no subnet twice, and reports no problem', () => {
    expect(result.problems).toEqual([]);
    expect(result.granted).toBe(N);
    expect(result.distinctSubnets).toBe(N);
  });

  it('counts one place of the route capacity per lease (RouteLimit 1000 - 2 foreign routes)', () => {
    expect(usage).toEqual({ used: N, capacity: 998 });
  });

  it('writes each lease its route, to the lease ENI, before answering', () => {
    expect(result.routesExpected).toBe(N); // one route table
    expect(result.routesCorrect).toBe(result.routesExpected);
  });

  it('spends exactly #tables + 2 EC2 requests per lease: one Describe, one source/dest check, one route per table', () => {
    // the scene has one route table in scope, and every host's ENI starts with the check on
    expect(result.tables).toBe(1);
    expect(result.rejections).toBe(0);
    expect(result.ec2Budget).toBe(3);
    expect(result.ec2MaxPerGrantingPut).toBe(3);
    expect(result.calls['EC2.DescribeInstances']).toBe(N);
    expect(result.calls['EC2.ModifyNetworkInterfaceAttribute']).toBe(N);
    expect(result.calls['EC2.CreateRoute']).toBe(N);
    expect(result.ec2PerLease).toBe(3);
  });

  it('writes DynamoDB one transaction per grant attempt plus one per lease for its route states', () => {
    // how many grant attempts lose a race depends on the draws; each costs one transaction
    expect(result.transactionsPerLease).toBeCloseTo(result.grantAttemptsPerLease + 1, 9);
  });
});

describe('bench smoke: the quick bench run as npm run bench runs it (moto)', () => {
  const STORM_N = 20;
  const CONVERGENCE_N = 30;
  let exitCode: number | null;
  let lines: string[];

  beforeAll(async () => {
    const output = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
        env: {
          ...process.env,
          BENCH_QUICK: '1',
          BENCH_STORM_N: String(STORM_N),
          BENCH_CONVERGENCE_N: String(CONVERGENCE_N),
          BENCH_OUTPUT: '-',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout }));
    });
    exitCode = output.code;
    lines = output.stdout.trimEnd().split('\n');
  }, 300_000);

  const summary = () => {
    const last = lines.at(-1) ?? '';
    expect(last.startsWith(SUMMARY_PREFIX)).toBe(true);
    return JSON.parse(last.slice(SUMMARY_PREFIX.length));
  };

  it('exits 0: every invariant the bench checks held (distinct subnets, routes, budgets, timeouts)', () => {
    expect(exitCode).toBe(0);
  });

  it('ends with BENCH_SUMMARY and one JSON object of exactly storm, convergence and coldStart', () => {
    expect(Object.keys(summary()).sort()).toEqual(['coldStart', 'convergence', 'storm']);
  });

  it('summarises each storm: ours by a name containing "ours", every host granted, once more in dual stack', () => {
    const { storm } = summary();
    expect(storm.length).toBe(4); // ours, naive, flannel, and ours on a dual-stack network
    for (const row of storm) {
      expect(Object.keys(row).sort()).toEqual(
        ['dynamodbRequestsPerLease', 'grantAttemptsPerLease', 'granted', 'n', 'strategy'].sort(),
      );
      expect(row.n).toBe(STORM_N);
      expect(typeof row.grantAttemptsPerLease).toBe('number');
      expect(typeof row.dynamodbRequestsPerLease).toBe('number');
    }
    const ours = storm.filter((row: { strategy: string }) => row.strategy.includes('ours'));
    expect(ours.map((row: { strategy: string }) => row.strategy.includes('dual stack'))).toEqual([
      false,
      true,
    ]);
    // (exit 0 above says the bench's own checks held, in dual stack too: each lease records its
    // paired IPv6 subnet, and both routes target its ENI in every table)
    for (const row of ours) expect(row.granted).toBe(STORM_N);
  });

  it('summarises the convergence run: no lease lost, no invocation over the function timeout', () => {
    const { convergence } = summary();
    expect(convergence).toHaveLength(1);
    const [run] = convergence;
    expect(Object.keys(run).sort()).toEqual(
      ['invocationsOverTimeout', 'leasesLost', 'motoP50Ms', 'n', 'tables', 'vsFloor'].sort(),
    );
    expect(run).toMatchObject({ n: CONVERGENCE_N, tables: 2, leasesLost: 0, invocationsOverTimeout: 0 });
    expect(Object.keys(run.motoP50Ms).sort()).toEqual(['dynamodb', 'ec2']);
  });

  it('summarises the cold start of every function, with the SDK bundled and external', () => {
    const { coldStart } = summary();
    const seen = coldStart
      .map((row: { function: string; sdk: string }) => `${row.function}/${row.sdk}`)
      .sort();
    expect(seen).toEqual(
      ['admin', 'instance-state', 'lease', 'reconcile'].flatMap((f) => [`${f}/bundled`, `${f}/external`]),
    );
    for (const row of coldStart) {
      expect(Object.keys(row).sort()).toEqual(['function', 'sdk', 'vsBaseline']);
      expect(typeof row.vsBaseline).toBe('number');
    }
  });
});

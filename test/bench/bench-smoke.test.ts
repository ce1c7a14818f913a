/**
 * A small lease storm through the benchmark's own code (bench/lib/storm.ts), so that
 * `npm test` catches a broken bench and the invariants the bench reports: N hosts joining
 * at once get N distinct subnets, each with its route, within DESIGN.md's EC2 budget.
 * Timings are the bench's business, never asserted here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchAws, useFakeCredentials } from '../../bench/lib/aws.js';
import { freshScene, type Scene } from '../../bench/lib/scene.js';
import { runStorm, type StormResult } from '../../bench/lib/storm.js';
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

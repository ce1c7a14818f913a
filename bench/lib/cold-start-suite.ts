/**
 * The cold-start section: bundles every function and both baselines both ways, then starts each bundle
 * `runs` times in a fresh Node process against moto (round-robin, so that load from
 * elsewhere on the machine spreads evenly), and reports medians.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateRouteTableCommand } from '@aws-sdk/client-ec2';
import { HOST_PATHS } from '../../shared/http/contract.js';
import { BENCH_REGION, type BenchAws } from './aws.js';
import {
  type Bundle,
  bundleFunction,
  type ColdStartRow,
  type ColdStartSample,
  coldStartTargets,
  GRANT_BASELINE,
  measureColdStart,
  PACKAGINGS,
} from './cold-start.js';
import {
  hostArn,
  httpEvent,
  instanceStateEvent,
  OPERATOR_ARN,
  scheduledEvent,
  TEST_HOSTS,
} from './http-events.js';
import { freshScene } from './scene.js';
import { median } from './stats.js';

export async function runColdStarts(aws: BenchAws, runs: number): Promise<ColdStartRow[]> {
  const targets = coldStartTargets(existsSync);
  const work = await mkdtemp(join(tmpdir(), 'vpc-lease-bench-cold-'));
  try {
    const bundles = new Map<string, Bundle>();
    for (const target of targets)
      for (const packaging of PACKAGINGS)
        bundles.set(
          `${target.name}/${packaging}`,
          await bundleFunction(target.name, target.entry, packaging, work),
        );

    // Two new hosts per lease run (the cold and the warm invocation), so that every
    // invocation does the same work: a new grant.
    const scene = await freshScene(aws, {
      hosts: runs * PACKAGINGS.length * 2,
      network: { Network: '10.128.0.0/12', SubnetLen: 24, RouteLimit: 1000 },
    });
    // The grant baseline's routes go to a table of their own in the scene's VPC, which no
    // network config names: the functions never see them.
    const baselineTable = await aws.setup.ec2.send(new CreateRouteTableCommand({ VpcId: scene.vpcId }));
    const baselineRouteTableId = baselineTable.RouteTable!.RouteTableId!;
    let nextDestination = 0;
    const grantBaseline = (h: (typeof scene.hosts)[number]) => {
      const k = nextDestination++;
      return {
        instanceId: h.instanceId,
        routeTableId: baselineRouteTableId,
        destination: `172.${16 + Math.floor(k / 256)}.${k % 256}.0/24`,
      };
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: BENCH_REGION,
      AWS_ENDPOINT_URL: aws.endpoints.dynamo,
      AWS_ENDPOINT_URL_DYNAMODB: aws.endpoints.dynamo,
      AWS_ENDPOINT_URL_EC2: aws.endpoints.ec2,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      TABLE_NAME: scene.tableName,
      VPC_ID: scene.vpcId,
      // the identity of test/support/events.ts's hostArn
      ACCOUNT_ID: TEST_HOSTS.accountId,
      HOST_ROLE_NAMES: TEST_HOSTS.hostRoleNames.join(','),
      LEASE_TTL_SECONDS: String(scene.leaseTtlSeconds),
      LOG_LEVEL: 'INFO',
      POWERTOOLS_SERVICE_NAME: 'vpc-lease',
      POWERTOOLS_METRICS_NAMESPACE: 'VpcLease',
    };
    const samples = new Map<string, ColdStartSample[]>();
    let nextHost = 0;
    for (let run = 0; run < runs; run++) {
      for (const packaging of PACKAGINGS) {
        const host = scene.hosts[nextHost++]!;
        const warmHost = scene.hosts[nextHost++]!;
        const grant = (h: typeof host) =>
          httpEvent({
            method: 'PUT',
            path: HOST_PATHS.lease,
            userArn: hostArn(h.instanceId),
            body: { privateIp: h.privateIp },
          });
        const events: Record<string, unknown> = {
          lease: grant(host),
          admin: httpEvent({ method: 'GET', path: '/v1/admin/routes', userArn: OPERATOR_ARN }),
          'instance-state': instanceStateEvent(host.instanceId, 'running'),
          reconcile: scheduledEvent(),
          baseline: {},
          // the same hosts as the lease grants: the same DescribeInstances answers
          [GRANT_BASELINE]: grantBaseline(host),
        };
        // lease first: the instance-state run then finds this host's lease.
        for (const target of targets) {
          const bundle = bundles.get(`${target.name}/${packaging}`)!;
          // the warm invocation repeats the work: another new grant for lease, the same event elsewhere
          const second =
            target.name === 'lease'
              ? grant(warmHost)
              : target.name === GRANT_BASELINE
                ? grantBaseline(warmHost)
                : events[target.name];
          const sample = await measureColdStart(bundle, events[target.name], env, work, second);
          for (const status of [sample.status, sample.warmStatus]) {
            if (status !== 200 && status !== 'ok') {
              throw new Error(`cold start of ${target.name} (${packaging}) answered ${String(status)}`);
            }
          }
          const key = `${target.name}/${packaging}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
        }
      }
    }
    return targets.flatMap((target) =>
      PACKAGINGS.map((packaging) => {
        const key = `${target.name}/${packaging}`;
        const bundle = bundles.get(key)!;
        const taken = samples.get(key) ?? [];
        return {
          name: target.name,
          packaging,
          invocation: target.invocation,
          ...(target.baseline ? { baseline: target.baseline } : {}),
          bytes: bundle.bytes,
          gzipBytes: bundle.gzipBytes,
          runs: taken.length,
          importMs: median(taken.map((s) => s.importMs)),
          invokeMs: median(taken.map((s) => s.invokeMs)),
          totalMs: median(taken.map((s) => s.totalMs)),
          // the warm invocation is not part of the start
          processMs: median(taken.map((s) => s.processMs - (s.warmMs ?? 0))),
          warmMs: median(taken.map((s) => s.warmMs ?? Number.NaN)),
        };
      }),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

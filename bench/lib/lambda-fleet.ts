/**
 * Lambda as the API sees it under a burst: each invocation runs in an execution
 * environment of its own; an idle environment is reused, otherwise a new one starts
 * with its own SDK clients — so its own SDK retry quota, as in AWS. All environments
 * share the account: the moto state, the call counter and, when given, the EC2 throttle.
 * On a scaled clock the SDK's retry delays are scaled too.
 *
 * The lease function's timeout (serverless.yml) holds, on the scaled clock: each
 * invocation gets a Lambda context whose remaining time is the timeout / timeScale, so the
 * product's own deadline (middy's timeoutEarly, the SDK retries bounded by the time left,
 * requests aborted at the deadline: shared/http/middleware.ts) answers in time, as in
 * AWS. An invocation that answered after its timeout anyway is counted (`overTimeout`).
 */
import { readFileSync } from 'node:fs';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { buildLeaseHandler } from '../../functions/lease.js';
import { createDependencies, type Dependencies } from '../../shared/adapters/dependencies.js';
import type { HttpEvent, HttpResult } from '../../shared/http/middleware.js';
import type { Clock } from '../../shared/ports.js';
import type { BenchAws } from './aws.js';
import type { Ec2Throttle } from './ec2-throttle.js';
import { TEST_HOSTS } from './http-events.js';
import type { Scene } from './scene.js';
import { silentLogger } from './scene.js';
import { type InvocationTally, invocationTally, scaledBackoff, tallySdkTime } from './sdk-time.js';

/** BENCH_LOG_LEVEL=ERROR shows what the functions log at that level (silent by default). */
export const quietLogger = new Logger({
  serviceName: 'vpc-lease-bench',
  logLevel: (process.env.BENCH_LOG_LEVEL ?? 'SILENT') as 'SILENT',
});

/**
 * A function's timeout as serverless.yml deploys it (`functions.<name>.timeout`, the
 * default of its `${param:functionTimeout, N}`), else `provider.timeout`.
 */
export function functionTimeoutSeconds(name: string, yaml = readFileSync(SERVERLESS_YML, 'utf8')): number {
  const functions = yaml.slice(yaml.search(/^functions:/m));
  const at = functions.search(new RegExp(`^  ${name}:`, 'm'));
  if (at < 0) throw new Error(`serverless.yml: no function ${name}`);
  const block = functions.slice(at);
  const own = /^ {4}timeout:\s*(.+)$/m.exec(block.split(/\n {2}\S/)[0] ?? '');
  const provider = /^provider:[\s\S]*?^ {2}timeout:\s*(\d+)/m.exec(yaml);
  const text = own?.[1] ?? provider?.[1] ?? '';
  const seconds = Number(/(\d+)\s*\}?\s*$/.exec(text)?.[1]);
  if (!Number.isInteger(seconds) || seconds <= 0)
    throw new Error(`serverless.yml: no timeout found for function ${name}`);
  return seconds;
}
const SERVERLESS_YML = new URL('../../serverless.yml', import.meta.url);

/** The lease function's timeout in AWS seconds (serverless.yml). */
export const FUNCTION_TIMEOUT_SECONDS = functionTimeoutSeconds('lease');

/** The lease function's reserved concurrency as deployed: serverless.yml's `leaseReservedConcurrency` default. */
export function leaseReservedConcurrency(yaml = readFileSync(SERVERLESS_YML, 'utf8')): number {
  const value = Number(/^ {4}leaseReservedConcurrency:\s*(\d+)/m.exec(yaml)?.[1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error('serverless.yml: no leaseReservedConcurrency');
  return value;
}

/**
 * Lambda refused an invocation: the function's reserved concurrency was in use. API Gateway
 * answers the caller with a 5xx of its own (no function code ran, nothing changed).
 */
export class LambdaThrottled extends Error {
  constructor(readonly concurrency: number) {
    super(`Rate exceeded: the lease function's ${concurrency} reserved concurrent executions are busy.`);
    this.name = 'LambdaThrottled';
  }
}

export interface LambdaEnvironment {
  readonly deps: Dependencies;
  readonly lease: (event: HttpEvent) => Promise<HttpResult>;
}

export interface Invocation extends InvocationTally {
  /** `lease` for a PUT through the lease function; other work (the reconcile) is named by the caller */
  readonly function: string;
  readonly durationMs: number;
  /** answered after the function's timeout (wall ms on the scaled clock): what AWS would have cut off */
  readonly overTimeout: boolean;
}

export interface LambdaFleet {
  /** one invocation of `functionName` (default `lease`) in an idle or a new environment */
  invoke<R>(work: (env: LambdaEnvironment) => Promise<R>, functionName?: string): Promise<R>;
  /** environments started so far (cold starts) */
  readonly size: number;
  /** lease invocations Lambda refused (reserved concurrency in use) */
  readonly throttled: number;
  readonly invocations: readonly Invocation[];
  /** ms per request that reached moto (throttled attempts never do), by service: moto's queue shows here */
  readonly engineLatencies: Readonly<Record<'EC2' | 'DynamoDB', number[]>>;
}

export function lambdaFleet(input: {
  aws: BenchAws;
  scene: Scene;
  throttle?: Ec2Throttle;
  timeScale?: number;
  /** extra middleware for each environment's EC2 client (e.g. to see which routes were written) */
  onEc2Client?: (client: ReturnType<BenchAws['newEc2']>) => void;
  /** the functions' clock (default: the wall clock); on a scaled run the scaled one, so that the grant interval and lease times run on AWS time */
  clock?: Clock;
  /** at most this many lease invocations at once (the function's reserved concurrency); more are refused with LambdaThrottled */
  reservedConcurrency?: number;
}): LambdaFleet {
  const { aws, scene } = input;
  const timeScale = input.timeScale ?? 1;
  const idle: LambdaEnvironment[] = [];
  const invocations: Invocation[] = [];
  const engineLatencies: Record<'EC2' | 'DynamoDB', number[]> = { EC2: [], DynamoDB: [] };
  let size = 0;
  let running = 0;
  let throttled = 0;
  const start = (): LambdaEnvironment => {
    size++;
    const ec2 = aws.newEc2({ retryBackoff: scaledBackoff(timeScale) });
    const dynamo = aws.newDynamo({ retryBackoff: scaledBackoff(timeScale) });
    input.throttle?.attach(ec2);
    input.onEc2Client?.(ec2);
    for (const [client, service] of [
      [ec2, 'EC2'],
      [dynamo, 'DynamoDB'],
    ] as const) {
      tallySdkTime(client, service);
      (client.middlewareStack as { add(middleware: unknown, options: unknown): void }).add(
        // biome-ignore lint/suspicious/noExplicitAny: the SDK's generic middleware signature
        (next: any) => async (args: unknown) => {
          const sent = performance.now();
          try {
            return await next(args);
          } finally {
            engineLatencies[service].push(performance.now() - sent);
          }
        },
        { step: 'finalizeRequest', priority: 'low', name: 'benchEngineLatency', override: true },
      );
    }
    const deps = createDependencies({
      environment: { tableName: scene.tableName, vpcId: scene.vpcId, leaseTtlSeconds: scene.leaseTtlSeconds },
      dynamo,
      ec2,
      logger: silentLogger,
      ...(input.clock ? { clock: input.clock } : {}),
    });
    const handler = buildLeaseHandler({ leases: deps.leases, hosts: TEST_HOSTS, logger: quietLogger });
    return { deps, lease: (event) => handler(event, lambdaContext(timeoutMs / 1000)) };
  };
  /** the lease function's timeout on the wall clock */
  const timeoutMs = (FUNCTION_TIMEOUT_SECONDS * 1000) / timeScale;
  return {
    async invoke(work, functionName = 'lease') {
      const lease = functionName === 'lease';
      if (lease && input.reservedConcurrency !== undefined && running >= input.reservedConcurrency) {
        throttled++;
        throw new LambdaThrottled(input.reservedConcurrency);
      }
      if (lease) running++;
      const env = idle.pop() ?? start();
      const tally: InvocationTally = { sdkMs: {}, retryDelayMs: 0 };
      const started = performance.now();
      try {
        return await invocationTally.run(tally, () => work(env));
      } finally {
        const durationMs = performance.now() - started;
        invocations.push({
          ...tally,
          function: functionName,
          durationMs,
          overTimeout: lease && durationMs > timeoutMs,
        });
        if (lease) running--;
        idle.push(env);
      }
    },
    get size() {
      return size;
    },
    get throttled() {
      return throttled;
    },
    invocations,
    engineLatencies,
  };
}

/** The Lambda context middy and Powertools read (remaining time on the wall clock); middy ends the invocation at its timeout. */
export const lambdaContext = (timeoutSeconds = FUNCTION_TIMEOUT_SECONDS): Context => {
  const deadline = performance.now() + timeoutSeconds * 1000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'vpc-lease-bench-lease',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:vpc-lease-bench-lease',
    memoryLimitInMB: '1024',
    awsRequestId: `bench-${Math.random().toString(36).slice(2)}`,
    logGroupName: '/aws/lambda/vpc-lease-bench-lease',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => Math.max(0, deadline - performance.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  } as Context;
};

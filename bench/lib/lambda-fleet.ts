/**
 * Lambda as the API sees it under a burst: each invocation runs in an execution
 * environment of its own; an idle environment is reused, otherwise a new one starts
 * with its own SDK clients — so its own SDK retry quota, as in AWS. All environments
 * share the account: the moto state, the call counter and, when given, the EC2 throttle.
 * On a scaled clock the SDK's retry delays are scaled too.
 *
 * The function timeout (15 s) is not enforced: moto serves one request at a time, so under
 * a burst a request waits seconds in moto's queue that it would not wait in AWS. What
 * would count against the timeout in AWS is the SDK's retry delays, reported per invocation.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { buildLeaseHandler } from '../../functions/lease.js';
import { createDependencies, type Dependencies } from '../../shared/adapters/dependencies.js';
import type { HttpEvent, HttpResult } from '../../shared/http/middleware.js';
import type { BenchAws } from './aws.js';
import type { Ec2Throttle } from './ec2-throttle.js';
import { TEST_HOSTS } from './http-events.js';
import type { Scene } from './scene.js';
import { silentLogger } from './scene.js';
import { type InvocationTally, invocationTally, scaleSdkRetryDelays, tallySdkTime } from './sdk-time.js';

/** BENCH_LOG_LEVEL=ERROR shows what the functions log at that level (silent by default). */
export const quietLogger = new Logger({
  serviceName: 'vpc-lease-bench',
  logLevel: (process.env.BENCH_LOG_LEVEL ?? 'SILENT') as 'SILENT',
});

/** serverless.yml: provider.timeout */
export const FUNCTION_TIMEOUT_SECONDS = 15;
/** Lambda's maximum, handed to middy so that it never cuts an invocation short here */
const UNENFORCED_TIMEOUT_SECONDS = 900;

export interface LambdaEnvironment {
  readonly deps: Dependencies;
  readonly lease: (event: HttpEvent) => Promise<HttpResult>;
}

export interface Invocation extends InvocationTally {
  readonly durationMs: number;
}

export interface LambdaFleet {
  invoke<R>(work: (env: LambdaEnvironment) => Promise<R>): Promise<R>;
  /** environments started so far (cold starts) */
  readonly size: number;
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
}): LambdaFleet {
  const { aws, scene } = input;
  const timeScale = input.timeScale ?? 1;
  const idle: LambdaEnvironment[] = [];
  const invocations: Invocation[] = [];
  const engineLatencies: Record<'EC2' | 'DynamoDB', number[]> = { EC2: [], DynamoDB: [] };
  let size = 0;
  const start = (): LambdaEnvironment => {
    size++;
    const ec2 = aws.newEc2();
    const dynamo = aws.newDynamo();
    input.throttle?.attach(ec2);
    input.onEc2Client?.(ec2);
    for (const [client, service] of [
      [ec2, 'EC2'],
      [dynamo, 'DynamoDB'],
    ] as const) {
      scaleSdkRetryDelays(client, timeScale);
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
    });
    const handler = buildLeaseHandler({ leases: deps.leases, hosts: TEST_HOSTS, logger: quietLogger });
    return { deps, lease: (event) => handler(event, lambdaContext(UNENFORCED_TIMEOUT_SECONDS)) };
  };
  return {
    async invoke(work) {
      const env = idle.pop() ?? start();
      const tally: InvocationTally = { sdkMs: {}, retryDelayMs: 0 };
      const started = performance.now();
      try {
        return await invocationTally.run(tally, () => work(env));
      } finally {
        invocations.push({ ...tally, durationMs: performance.now() - started });
        idle.push(env);
      }
    },
    get size() {
      return size;
    },
    invocations,
    engineLatencies,
  };
}

/** The Lambda context middy and Powertools read; middy ends the invocation at its timeout. */
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

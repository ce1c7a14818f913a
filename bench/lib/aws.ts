/**
 * SDK clients for the benchmarks, pointed at the bench's moto_servers (one for DynamoDB,
 * one for EC2: each moto serves one request at a time, and in AWS the two services do not
 * queue behind each other either). The ones the
 * control plane uses carry the shared call counter (aws-clients.ts), the `setup` ones do
 * not, so seeding and checking never show up in the figures.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StandardRetryBackoffStrategy } from '@smithy/types';
import {
  type CallCounter,
  createCallCounter,
  createDynamoDbClient,
  createEc2Client,
} from '../../shared/adapters/aws-clients.js';

export const BENCH_REGION = 'us-east-1';

/** moto takes any credentials; set them so the SDK never looks for real ones, and keep it quiet on Node 20. */
export function useFakeCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.AWS_REGION = BENCH_REGION;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

export interface Endpoints {
  readonly dynamo: string;
  readonly ec2: string;
}

export interface BenchAws {
  readonly endpoints: Endpoints;
  /** counts every request of the clients below (retries included) */
  readonly counter: CallCounter;
  readonly ec2: EC2Client;
  readonly dynamo: DynamoDBDocumentClient;
  /** uncounted clients for seeding moto and checking results */
  readonly setup: { readonly ec2: EC2Client; readonly dynamo: DynamoDBDocumentClient };
  /** a further counted EC2 client (e.g. one per simulated Lambda environment); `retryBackoff` as in aws-clients.ts */
  newEc2(options?: { retryBackoff?: StandardRetryBackoffStrategy }): EC2Client;
  /** a further counted DynamoDB client */
  newDynamo(options?: { retryBackoff?: StandardRetryBackoffStrategy }): DynamoDBDocumentClient;
  destroy(): void;
}

export function benchAws(endpoints: Endpoints): BenchAws {
  const counter = createCallCounter();
  const created: { destroy(): void }[] = [];
  const track = <T extends { destroy(): void }>(client: T): T => {
    created.push(client);
    return client;
  };
  type Options = { retryBackoff?: StandardRetryBackoffStrategy };
  const newEc2 = (options: Options = {}) =>
    track(createEc2Client({ region: BENCH_REGION, endpoint: endpoints.ec2, counter, ...options }));
  const newDynamo = (options: Options = {}) =>
    track(createDynamoDbClient({ region: BENCH_REGION, endpoint: endpoints.dynamo, counter, ...options }));
  return {
    endpoints,
    counter,
    ec2: newEc2(),
    dynamo: newDynamo(),
    setup: {
      ec2: track(new EC2Client({ region: BENCH_REGION, endpoint: endpoints.ec2, maxAttempts: 3 })),
      dynamo: track(
        createDynamoDbClient({ region: BENCH_REGION, endpoint: endpoints.dynamo, maxAttempts: 3 }),
      ),
    },
    newEc2,
    newDynamo,
    destroy: () => {
      for (const client of created) client.destroy();
    },
  };
}

/**
 * SDK client construction in one place: region, retry policy, and an optional
 * per-command counter (tests and benchmarks assert EC2/DynamoDB call budgets with it).
 * The endpoint comes from the SDK's own AWS_ENDPOINT_URL handling (moto locally).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface CallCounter {
  /** every request sent, retries included, keyed `Service.Command` */
  readonly calls: Map<string, number>;
  record(key: string): void;
  total(prefix?: string): number;
  reset(): void;
}

export function createCallCounter(): CallCounter {
  const calls = new Map<string, number>();
  return {
    calls,
    record(key) {
      calls.set(key, (calls.get(key) ?? 0) + 1);
    },
    total(prefix) {
      let sum = 0;
      for (const [key, n] of calls) if (!prefix || key.startsWith(prefix)) sum += n;
      return sum;
    },
    reset() {
      calls.clear();
    },
  };
}

export interface ClientOptions {
  region?: string;
  /** overrides AWS_ENDPOINT_URL */
  endpoint?: string;
  /** SDK attempts per call, first included (standard retry mode: exponential backoff with jitter) */
  maxAttempts?: number;
  counter?: CallCounter;
}

/** Anything the SDK clients accept `middlewareStack.add` on. */
interface HasMiddleware {
  middlewareStack: {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's middleware types differ per client
    add(middleware: any, options: any): void;
  };
}

/**
 * Counts at the `finalizeRequest` step after retries are expanded, so a throttled call
 * retried three times counts three: that is what AWS bills and throttles.
 */
export function attachCounter(client: HasMiddleware, service: string, counter: CallCounter): void {
  client.middlewareStack.add(
    // biome-ignore lint/suspicious/noExplicitAny: generic middleware signature
    (next: any, context: any) => async (args: any) => {
      counter.record(`${service}.${String(context.commandName ?? 'Unknown').replace(/Command$/, '')}`);
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'vpcLeaseCallCounter', override: true },
  );
}

const common = (options: ClientOptions) => ({
  ...(options.region ? { region: options.region } : {}),
  ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  maxAttempts: options.maxAttempts ?? 4,
  retryMode: 'standard' as const,
});

export function createEc2Client(options: ClientOptions = {}): EC2Client {
  const client = new EC2Client(common(options));
  if (options.counter) attachCounter(client, 'EC2', options.counter);
  return client;
}

export function createDynamoDbClient(options: ClientOptions = {}): DynamoDBDocumentClient {
  const client = new DynamoDBClient(common(options));
  if (options.counter) attachCounter(client, 'DynamoDB', options.counter);
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

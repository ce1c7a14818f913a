/**
 * Test harness: one moto_server per test file, on a free loopback port, with SDK
 * clients pointed at it and a call counter on each.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { type MotoServer, startMoto } from '../../scripts/lib/moto.js';
import { ensureTable } from '../../scripts/lib/seed.js';
import {
  type CallCounter,
  createCallCounter,
  createDynamoDbClient,
  createEc2Client,
} from '../../shared/adapters/aws-clients.js';

export const TEST_REGION = 'us-east-1';

// moto accepts any credentials; set them so the SDK never looks for real ones.
process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
process.env.AWS_REGION ??= TEST_REGION;
delete process.env.AWS_PROFILE;

export interface MotoContext {
  moto: MotoServer;
  counter: CallCounter;
  ec2: ReturnType<typeof createEc2Client>;
  dynamo: ReturnType<typeof createDynamoDbClient>;
  /** a fresh table with the vpc-lease schema */
  newTable(): Promise<string>;
}

/** Starts moto before the file's tests and stops it after; the returned object is filled in beforeAll. */
export function useMoto(): MotoContext {
  const ctx = {} as MotoContext;
  beforeAll(async () => {
    ctx.moto = await startMoto();
    ctx.counter = createCallCounter();
    const opts = { region: TEST_REGION, endpoint: ctx.moto.endpoint, counter: ctx.counter, maxAttempts: 2 };
    ctx.ec2 = createEc2Client(opts);
    ctx.dynamo = createDynamoDbClient(opts);
    ctx.newTable = async () => {
      const name = `vpc-lease-test-${randomUUID().slice(0, 8)}`;
      await ensureTable(ctx.dynamo, name);
      return name;
    };
  });
  afterAll(async () => {
    ctx.ec2?.destroy();
    ctx.dynamo?.destroy();
    await ctx.moto?.stop();
  });
  return ctx;
}

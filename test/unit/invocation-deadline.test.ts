/**
 * No invocation outlives the function timeout (DESIGN.md "HTTP API"): within an invocation
 * the SDK clients refuse a retry whose delay would end after the deadline and abort a
 * request still under way at it, and the HTTP chain answers 503 + Retry-After in time.
 *
 * EC2's throttling is injected in front of a real client (the only mock here, named so);
 * a request that never gets an answer is a real TCP server on 127.0.0.1 that accepts and
 * stays silent.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { DescribeInstancesCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import type { StandardRetryBackoffStrategy } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type CallCounter,
  createCallCounter,
  createEc2Client,
  deadlineBoundedBackoff,
  exponentialBackoffWithJitter,
  RetryPastDeadline,
} from '../../shared/adapters/aws-clients.js';
import { currentDeadline, withDeadline } from '../../shared/adapters/invocation-deadline.js';
import { httpHandler, json, TIMEOUT_EARLY_MS } from '../../shared/http/middleware.js';
import { quietLogger } from '../support/control-plane.js';
import { hostArn, httpEvent, lambdaContext } from '../support/events.js';

const REGION = 'us-east-1';
// any credentials: no request here reaches AWS
beforeAll(() => {
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'testing');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'testing');
});
afterAll(() => {
  vi.unstubAllEnvs();
});
const fixedBackoff = (ms: number): StandardRetryBackoffStrategy => ({
  setDelayBase() {},
  computeNextBackoffDelay: () => ms,
});

/** EC2's RequestLimitExceeded on every attempt, below the SDK's retry (a mocked throttle). */
function throttleEveryAttempt(client: ReturnType<typeof createEc2Client>): void {
  client.middlewareStack.add(
    () => async () => {
      throw new EC2ServiceException({
        name: 'RequestLimitExceeded',
        $fault: 'client',
        message: 'Request limit exceeded.',
        $metadata: { httpStatusCode: 503 },
      });
    },
    { step: 'finalizeRequest', priority: 'low', name: 'testThrottle', override: true },
  );
}

describe('the deadline-bounded retry backoff', () => {
  it('keeps a delay that ends before the deadline', async () => {
    const backoff = deadlineBoundedBackoff(fixedBackoff(100));
    await withDeadline(60_000, async () => expect(backoff.computeNextBackoffDelay(0)).toBe(100));
  });

  it('refuses a delay that would end after the deadline', async () => {
    const backoff = deadlineBoundedBackoff(fixedBackoff(5_000));
    await withDeadline(1_000, async () =>
      expect(() => backoff.computeNextBackoffDelay(0)).toThrow(RetryPastDeadline),
    );
  });

  it('bounds nothing outside an invocation', () => {
    expect(currentDeadline()).toBeUndefined();
    expect(deadlineBoundedBackoff(fixedBackoff(3_600_000)).computeNextBackoffDelay(9)).toBe(3_600_000);
  });

  it('draws as the SDK does: full jitter up to base x 2^retry, capped at 20 s', () => {
    const top = exponentialBackoffWithJitter(() => 0.999_999);
    top.setDelayBase(1_000);
    expect(top.computeNextBackoffDelay(2)).toBe(3_999);
    expect(top.computeNextBackoffDelay(10)).toBe(19_999);
    expect(exponentialBackoffWithJitter(() => 0).computeNextBackoffDelay(3)).toBe(0);
  });
});

describe('an EC2 client under an injected throttle (mocked RequestLimitExceeded) within an invocation', () => {
  let counter: CallCounter;
  const throttledClient = (delayMs: number) => {
    counter = createCallCounter();
    const client = createEc2Client({
      region: REGION,
      endpoint: 'http://127.0.0.1:9',
      maxAttempts: 10,
      counter,
      retryBackoff: fixedBackoff(delayMs),
    });
    throttleEveryAttempt(client);
    return client;
  };

  it('retries while time is left, then gives up with the throttle itself before the deadline', async () => {
    const client = throttledClient(1_000);
    let signal: AbortSignal | undefined;
    const error = await withDeadline(2_500, async () => {
      signal = currentDeadline()?.signal;
      return client.send(new DescribeInstancesCommand({})).then(
        () => undefined,
        (e: unknown) => e as Error & { $metadata?: { attempts?: number } },
      );
    });
    // the SDK's own error (what the adapters turn into 503 + Retry-After), not an abort
    expect(error?.name).toBe('RequestLimitExceeded');
    expect(signal?.aborted).toBe(false);
    // delays of 1 s fit twice before the 2.5 s deadline, a third would end after it
    expect(counter.total('EC2.DescribeInstances')).toBe(3);
    expect(error?.$metadata?.attempts).toBe(3);
    client.destroy();
  });

  it('retries up to its attempts outside an invocation', async () => {
    const client = throttledClient(0);
    await expect(client.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({
      name: 'RequestLimitExceeded',
    });
    expect(counter.total('EC2.DescribeInstances')).toBe(10);
    client.destroy();
  });
});

describe('a request without an answer (a silent server on 127.0.0.1)', () => {
  let server: Server;
  let endpoint: string;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('no address');
    endpoint = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is aborted at the invocation deadline', async () => {
    const client = createEc2Client({ region: REGION, endpoint, maxAttempts: 1 });
    const error = await withDeadline(200, () => client.send(new DescribeInstancesCommand({}))).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('AbortError');
    expect((error?.cause as Error | undefined)?.name).toBe('InvocationDeadlineExceeded');
    client.destroy();
  });

  it('leaves the HTTP function time to answer 503 with Retry-After before the function timeout', async () => {
    const client = createEc2Client({ region: REGION, endpoint, maxAttempts: 1 });
    const handler = httpHandler({ logger: quietLogger }, async () => {
      await client.send(new DescribeInstancesCommand({}));
      return json(200, {});
    });
    const context = { ...lambdaContext(), getRemainingTimeInMillis: () => TIMEOUT_EARLY_MS + 200 };
    const res = await handler(
      httpEvent({ method: 'GET', path: '/v1/config', userArn: hostArn('i-0123456789abcdef0') }),
      context,
    );
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toBe('5');
    expect(JSON.parse(res.body as string).error.code).toBe('ServiceUnavailable');
    client.destroy();
  });
});

/**
 * Issue 17: an engine stall seen from outside the local stack. Hosts join at once and retry
 * 503/429 after Retry-After, as the agent does, while the stack's own moto_server is paused
 * (SIGSTOP, by the pid of the process this test's stack started) and resumed (SIGCONT).
 *
 * Every answer must be what AWS would give: 200 with a lease, or 503/429 with Retry-After in
 * the project's error shape. Never a 500, a 200 without a lease, or a stack trace. And the
 * control plane must end where it would without the stall: every host with its own subnet,
 * routed to its network interface in every route table.
 *
 * The stack runs with every function's timeout shortened to FUNCTION_TIMEOUT_S (the local
 * stage's knob; the AWS stages keep serverless.yml's figures), so a pause longer than the
 * timeout costs seconds, not minutes.
 */
import { request as httpRequest } from 'node:http';
import { DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLease } from '../../agent/lease-api.js';
import {
  type LocalStack,
  localClients,
  operatorHeaders,
  startLocalStack,
} from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import { type LeaseJson, offlineIdentityHeader } from '../../shared/http/contract.js';

const FUNCTION_TIMEOUT_S = 6;
/**
 * How long one answer may take, and how long a host keeps retrying, before the test gives up
 * on it. Generous on purpose: each simultaneous first request starts a serverless-offline
 * worker thread that loads the function's bundle before the handler (and its clock) starts;
 * that takes ~0.3 s of CPU each, but on a two-core machine shared with other test runs 100
 * of them have taken over five minutes. Waiting longer only costs time on such a machine.
 */
const ANSWER_TIMEOUT_MS = 600_000;
const JOIN_DEADLINE_MS = 900_000;

interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

interface JoinRun {
  host: LaunchedInstance;
  answers: Answer[];
  lease: LeaseJson | undefined;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** A stack trace in any answer body: V8 frames, or serverless-offline's stackTrace/trace fields. */
const STACK_TRACE = /"(stackTrace|trace)"\s*:|\n?\s+at \S.*:\d+:\d+\)?/;

/**
 * What a caller may see: `lease` (200 with a usable lease), `retry` (503 or 429 with a
 * Retry-After in seconds and an {"error":{"code","message"}} body), else `wrong`.
 */
function kindOf(answer: Answer): 'lease' | 'retry' | 'wrong' {
  if (STACK_TRACE.test(answer.text)) return 'wrong';
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return 'wrong';
  }
  if (answer.status === 200) {
    try {
      checkLease(body);
      return 'lease';
    } catch {
      return 'wrong';
    }
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  const shaped = typeof error?.code === 'string' && typeof error.message === 'string';
  const retryAfter = answer.retryAfter !== null && /^\d+$/.test(answer.retryAfter);
  return (answer.status === 503 || answer.status === 429) && shaped && retryAfter ? 'retry' : 'wrong';
}

describe('an engine stall on the local stack (moto paused with SIGSTOP)', () => {
  let stack: LocalStack;
  let ec2: EC2Client;
  let hosts: LaunchedInstance[];
  let paused = false;

  const pauseMoto = () => {
    process.kill(stack.motoPid, 'SIGSTOP');
    paused = true;
  };
  const resumeMoto = () => {
    if (!paused) return;
    process.kill(stack.motoPid, 'SIGCONT');
    paused = false;
  };

  /**
   * One request on a fresh connection: the test sleeps Retry-After (5 s), exactly Node's
   * keep-alive timeout on serverless-offline's side, and a pooled connection closed by the
   * server at that moment would fail the request with ECONNRESET before anyone answered it.
   */
  const ask = (method: string, url: string, headers: Record<string, string>, body?: string) =>
    new Promise<Answer & { functionError: string | null }>((resolve, reject) => {
      const request = httpRequest(
        url,
        { method, headers, agent: false, timeout: ANSWER_TIMEOUT_MS },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('error', reject);
          response.on('end', () => {
            const header = (name: string) => {
              const value = response.headers[name];
              return Array.isArray(value) ? value.join(', ') : (value ?? null);
            };
            resolve({
              status: response.statusCode ?? 0,
              retryAfter: header('retry-after'),
              functionError: header('x-amz-function-error'),
              text,
            });
          });
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer to ${method} ${url} in time`)));
      request.on('error', reject);
      request.end(body);
    });

  /** PUT /v1/lease until a lease comes back, sleeping Retry-After on 503/429 as the agent does. */
  const joinLikeTheAgent = async (host: LaunchedInstance, onAnswer?: () => void): Promise<JoinRun> => {
    const run: JoinRun = { host, answers: [], lease: undefined };
    const deadline = Date.now() + JOIN_DEADLINE_MS;
    while (Date.now() < deadline) {
      const answer = await ask(
        'PUT',
        `${stack.apiUrl}/v1/lease`,
        { 'content-type': 'application/json', ...offlineIdentityHeader(host.instanceId) },
        JSON.stringify({ privateIp: host.privateIp }),
      );
      run.answers.push(answer);
      onAnswer?.();
      const kind = kindOf(answer);
      if (kind === 'lease') {
        run.lease = JSON.parse(answer.text) as LeaseJson;
        return run;
      }
      if (kind !== 'retry') return run; // the assertions name the answer
      await sleep(Number(answer.retryAfter) * 1000);
    }
    return run;
  };

  const wrongAnswers = (runs: readonly JoinRun[]) =>
    runs.flatMap((run) =>
      run.answers
        .filter((answer) => kindOf(answer) === 'wrong')
        .map((answer) => `${run.host.instanceId}: ${answer.status} ${answer.text.slice(0, 300)}`),
    );

  /** Each host holds its own subnet, the lease list agrees, and every route table routes it to the host's ENI. */
  const expectEveryHostRouted = async (runs: readonly JoinRun[]) => {
    expect(runs.filter((run) => run.lease === undefined).map((run) => run.host.instanceId)).toEqual([]);
    const subnets = runs.map((run) => run.lease!.subnet);
    expect(new Set(subnets).size).toBe(runs.length);
    for (const run of runs) expect(run.lease!.instanceId).toBe(run.host.instanceId);

    // An operator's read right after a storm may still meet a busy engine: it gets 503 with
    // Retry-After, and asks again as the CLI tells it to.
    const listDeadline = Date.now() + 300_000;
    let list = await ask('GET', `${stack.apiUrl}/v1/admin/leases?limit=1000`, operatorHeaders());
    while (list.status === 503 && list.retryAfter !== null && Date.now() < listDeadline) {
      await new Promise((resolve) => setTimeout(resolve, Number(list.retryAfter) * 1000));
      list = await ask('GET', `${stack.apiUrl}/v1/admin/leases?limit=1000`, operatorHeaders());
    }
    expect(list.status).toBe(200);
    const held = new Map(
      (JSON.parse(list.text) as { leases: LeaseJson[] }).leases.map((l) => [l.instanceId, l.subnet]),
    );
    expect(runs.map((run) => held.get(run.host.instanceId))).toEqual(subnets);

    const tables = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [stack.vpc.vpcId] }] }),
    );
    const routeTables = tables.RouteTables ?? [];
    expect(routeTables.length).toBe(2); // the VPC's main table and the public subnet's
    const missing = runs.flatMap((run) =>
      routeTables
        .filter(
          (table) =>
            !(table.Routes ?? []).some(
              (route) =>
                route.DestinationCidrBlock === run.lease!.subnet &&
                route.NetworkInterfaceId === run.host.networkInterfaceId,
            ),
        )
        .map((table) => `${run.lease!.subnet} -> ${run.host.networkInterfaceId} in ${table.RouteTableId}`),
    );
    expect(missing).toEqual([]);
  };

  beforeAll(async () => {
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    stack = await startLocalStack({
      apiPort,
      motoPort,
      lambdaPort,
      quiet: true,
      publishConfig: false,
      functionTimeoutSeconds: FUNCTION_TIMEOUT_S,
    });
    // Room for all 140 hosts in both route tables (the default RouteLimit is 50).
    const published = await ask(
      'PUT',
      `${stack.apiUrl}/v1/admin/config`,
      { 'content-type': 'application/json', ...operatorHeaders() },
      JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 300 } }),
    );
    expect(published.status).toBe(200);
    const clients = localClients(stack.motoEndpoint);
    clients.dynamo.destroy();
    ec2 = clients.ec2;
    hosts = await launchInstances(ec2, stack.vpc.subnetId, 140);
  }, 300_000);

  afterAll(async () => {
    if (stack) resumeMoto();
    ec2?.destroy();
    await stack?.stop();
  }, 30_000);

  it('answers 503 with Retry-After while moto is stopped longer than the timeout, then leases every host', async () => {
    const joining = hosts.slice(0, 20);
    let firstAnswers = 0;
    const counted = new Set<string>();
    pauseMoto();
    try {
      const runs = joining.map((host) =>
        joinLikeTheAgent(host, () => {
          if (!counted.has(host.instanceId)) {
            counted.add(host.instanceId);
            firstAnswers += 1;
          }
        }),
      );
      // An operator route and a direct invocation during the same stall.
      const admin = ask('GET', `${stack.apiUrl}/v1/admin/leases`, operatorHeaders());
      const reconcile = ask(
        'POST',
        `${stack.lambdaEndpoint}/2015-03-31/functions/vpc-lease-local-reconcile/invocations`,
        {},
        '{}',
      );

      // Stopped for longer than the timeout, and until every caller has had its first answer:
      // nothing can succeed while moto is stopped, so every first answer is the timeout's.
      const deadline = Date.now() + ANSWER_TIMEOUT_MS;
      await sleep((FUNCTION_TIMEOUT_S + 2) * 1000);
      while (firstAnswers < joining.length && Date.now() < deadline) await sleep(100);
      const [adminAnswer, reconcileAnswer] = await Promise.all([admin, reconcile]);
      resumeMoto();

      expect(kindOf(adminAnswer)).toBe('retry');
      expect(adminAnswer.status).toBe(503);
      // Lambda's Invoke answers 200 for a function error too; the header tells them apart.
      expect(reconcileAnswer.functionError).toBe('Unhandled');

      const done = await Promise.all(runs);
      expect(wrongAnswers(done)).toEqual([]);
      expect(done.map((run) => run.answers[0]!.status)).toEqual(joining.map(() => 503));
      await expectEveryHostRouted(done);
    } finally {
      resumeMoto();
    }
  }, 900_000);

  it('answers only leases and retryable refusals when moto is stopped for less than the timeout', async () => {
    const joining = hosts.slice(20, 40);
    pauseMoto();
    let runs: Promise<JoinRun[]>;
    try {
      runs = Promise.all(joining.map((host) => joinLikeTheAgent(host)));
      await sleep(2000);
    } finally {
      resumeMoto();
    }
    const done = await runs;
    expect(wrongAnswers(done)).toEqual([]);
    await expectEveryHostRouted(done);
  }, 900_000);

  it('answers only leases and retryable refusals to 100 simultaneous joins, and leases every host', async () => {
    const done = await Promise.all(hosts.slice(40, 140).map((host) => joinLikeTheAgent(host)));
    expect(wrongAnswers(done)).toEqual([]);
    await expectEveryHostRouted(done);
  }, 1_000_000);
});

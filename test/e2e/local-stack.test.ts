/**
 * Issue 2's "Done when", against the real local stack: moto_server, the seeded VPC,
 * serverless-offline serving the bundled handlers, the config published through the
 * admin API. Hosts are instances launched in moto's VPC; their identity is the
 * serverless-offline authorizer override header, as DESIGN.md specifies.
 */
import { createServer } from 'node:net';
import { DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  groupAlive,
  type LocalStack,
  localClients,
  operatorHeaders,
  startLocalStack,
} from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import { type ErrorJson, type LeaseJson, offlineIdentityHeader } from '../../shared/http/contract.js';

interface Answer<T = unknown> {
  status: number;
  body: T;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function canBind(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

describe('the local stack (npm start), end to end', () => {
  let stack: LocalStack;
  let ec2: EC2Client;
  let hosts: LaunchedInstance[];

  const call = async <T = unknown>(
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: string } = {},
  ): Promise<Answer<T>> => {
    const response = await fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: options.headers,
      ...(options.body !== undefined ? { body: options.body } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  };
  const asHost = (host: LaunchedInstance) => ({
    'content-type': 'application/json',
    ...offlineIdentityHeader(host.instanceId),
  });
  const acquire = (host: LaunchedInstance, body: unknown = { privateIp: host.privateIp }) =>
    call<LeaseJson>('PUT', '/v1/lease', { headers: asHost(host), body: JSON.stringify(body) });
  const leaseList = async () => {
    const answer = await call<{ leases: LeaseJson[] }>('GET', '/v1/admin/leases', {
      headers: operatorHeaders(),
    });
    expect(answer.status).toBe(200);
    return answer.body.leases.map((l) => `${l.subnet} ${l.instanceId}`).sort();
  };
  const routesTo = async (subnet: string) => {
    const out = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [stack.vpc.vpcId] }] }),
    );
    return (out.RouteTables ?? []).flatMap((t) =>
      (t.Routes ?? [])
        .filter((r) => r.DestinationCidrBlock === subnet)
        .map((r) => ({ routeTableId: t.RouteTableId, networkInterfaceId: r.NetworkInterfaceId })),
    );
  };

  beforeAll(async () => {
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    stack = await startLocalStack({ apiPort, motoPort, lambdaPort, quiet: true });
    const clients = localClients(stack.motoEndpoint);
    clients.dynamo.destroy();
    ec2 = clients.ec2;
    hosts = await launchInstances(ec2, stack.vpc.subnetId, 4);
  }, 180_000);

  afterAll(async () => {
    ec2?.destroy();
    await stack?.stop();
  }, 30_000);

  it('serves the default network config it published through the admin API', async () => {
    const answer = await call<{ Network: string; Backend: { RouteLimit: number } }>('GET', '/v1/config', {
      headers: asHost(hosts[0]!),
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      Backend: { Type: 'aws-vpc', RouteLimit: 50 },
    });
  });

  it('gives three instances three distinct /24s inside 10.244.0.0/16, each routed to its ENI', async () => {
    const answers = await Promise.all(hosts.slice(0, 3).map((host) => acquire(host)));
    for (const [i, answer] of answers.entries()) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body).toMatchObject({
        network: '10.244.0.0/16',
        instanceId: hosts[i]!.instanceId,
        privateIp: hosts[i]!.privateIp,
        networkInterfaceId: hosts[i]!.networkInterfaceId,
      });
      expect(answer.body.subnet).toMatch(/^10\.244\.\d{1,3}\.0\/24$/);
      expect(answer.body.routes.length).toBeGreaterThan(0);
      for (const route of answer.body.routes) expect(route.state).toBe('active');
    }
    const subnets = answers.map((a) => a.body.subnet);
    expect(new Set(subnets).size).toBe(3);

    for (const [i, subnet] of subnets.entries()) {
      const routes = await routesTo(subnet);
      expect(routes.length).toBeGreaterThan(0);
      for (const route of routes) expect(route.networkInterfaceId).toBe(hosts[i]!.networkInterfaceId);
    }
  });

  it('returns the same subnet when an instance asks again', async () => {
    const before = await leaseList();
    const first = await acquire(hosts[0]!);
    const again = await acquire(hosts[0]!);
    expect(again.status).toBe(200);
    expect(again.body.subnet).toBe(first.body.subnet);
    expect(await leaseList()).toEqual(before);
  });

  describe('refuses bad requests with an error code, changing nothing', () => {
    const stranger = () => hosts[3]!;
    const expectRefused = async (answer: Answer<ErrorJson>, status: number, code: string) => {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.body.error.code).toBe(code);
      expect(answer.body.error.message).toEqual(expect.any(String));
    };
    let before: string[];

    beforeAll(async () => {
      before = await leaseList();
      expect(before).toHaveLength(3);
    });

    it("403 for an instance that sends another instance's IP", async () => {
      await expectRefused(
        (await acquire(stranger(), { privateIp: hosts[0]!.privateIp })) as Answer<never>,
        403,
        'Forbidden',
      );
      expect(await leaseList()).toEqual(before);
    });

    it('403 without an identity', async () => {
      const answer = await call<ErrorJson>('PUT', '/v1/lease', {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ privateIp: stranger().privateIp }),
      });
      await expectRefused(answer, 403, 'Forbidden');
      expect(await leaseList()).toEqual(before);
    });

    it('400 for malformed JSON', async () => {
      const answer = await call<ErrorJson>('PUT', '/v1/lease', {
        headers: asHost(stranger()),
        body: `{"privateIp": "${stranger().privateIp}"`,
      });
      await expectRefused(answer, 400, 'ValidationError');
      expect(await leaseList()).toEqual(before);
    });

    it('400 for a privateIp that is not an IP address', async () => {
      await expectRefused(
        (await acquire(stranger(), { privateIp: 'not-an-ip' })) as Answer<never>,
        400,
        'ValidationError',
      );
      expect(await leaseList()).toEqual(before);
    });

    it('413 for a body over 8 KiB', async () => {
      const answer = await call<ErrorJson>('PUT', '/v1/lease', {
        headers: asHost(stranger()),
        body: JSON.stringify({ privateIp: stranger().privateIp, padding: 'x'.repeat(9000) }),
      });
      await expectRefused(answer, 413, 'PayloadTooLarge');
      expect(await leaseList()).toEqual(before);
    });

    it('405 MethodNotAllowed, from the function, for another method on a host path', async () => {
      const answer = await call<ErrorJson>('POST', '/v1/lease', {
        headers: asHost(stranger()),
        body: JSON.stringify({ privateIp: stranger().privateIp }),
      });
      await expectRefused(answer, 405, 'MethodNotAllowed');
      expect(answer.body.error.message).toBe('/v1/lease answers PUT, DELETE, not POST.');
      expect(await leaseList()).toEqual(before);
    });

    it('405 MethodNotAllowed for another method on an admin path with a parameter', async () => {
      const answer = await call<ErrorJson>(
        'PATCH',
        `/v1/admin/leases/${before[0]!.split(' ')[0]!.replace('/', '-')}`,
        {
          headers: { 'content-type': 'application/json', ...operatorHeaders() },
          body: '{}',
        },
      );
      await expectRefused(answer, 405, 'MethodNotAllowed');
      expect(await leaseList()).toEqual(before);
    });
  });

  it('frees the subnet and its routes on DELETE /v1/lease, so another instance can take it', async () => {
    const held = await acquire(hosts[2]!);
    const subnet = held.body.subnet;

    const released = await call('DELETE', '/v1/lease', { headers: asHost(hosts[2]!) });
    expect(released.status).toBe(204);
    expect((await leaseList()).some((l) => l.startsWith(`${subnet} `))).toBe(false);
    const key = subnet.replace('/', '-');
    expect((await call('GET', `/v1/admin/leases/${key}`, { headers: operatorHeaders() })).status).toBe(404);
    expect(await routesTo(subnet)).toEqual([]);

    const taken = await acquire(hosts[3]!, { privateIp: hosts[3]!.privateIp, previousSubnet: subnet });
    expect(taken.status).toBe(200);
    expect(taken.body.subnet).toBe(subnet);
  });

  it('stops every process it started and frees its ports', async () => {
    const { offlinePid, ports } = stack;
    expect(groupAlive(offlinePid)).toBe(true);

    await stack.stop();

    expect(groupAlive(offlinePid)).toBe(false);
    for (const port of [ports.api, ports.lambda, ports.moto]) expect(await canBind(port)).toBe(true);
    await expect(fetch(stack.motoEndpoint, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  }, 30_000);
});

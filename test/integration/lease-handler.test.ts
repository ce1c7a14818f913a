import { DescribeRouteTablesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildLeaseHandler } from '../../functions/lease.js';
import { contains, formatCidr, parseCidr } from '../../shared/cidr.js';
import type { LeaseJson } from '../../shared/http/contract.js';
import { useMoto } from '../support/aws.js';
import { type ControlPlane, createControlPlane, quietLogger } from '../support/control-plane.js';
import { hostArn, httpEvent, lambdaContext, OPERATOR_ARN, TEST_HOSTS } from '../support/events.js';

describe('lease function: PUT/DELETE /v1/lease and GET /v1/config through the middy chain (moto)', () => {
  const aws = useMoto();
  let plane: ControlPlane;
  let invoke: (
    event: ReturnType<typeof httpEvent>,
  ) => Promise<{ statusCode: number; body: any; headers: any }>;

  beforeAll(async () => {
    plane = await createControlPlane(aws, {
      config: { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 100 } },
    });
    const handler = buildLeaseHandler({ leases: plane.leases, hosts: TEST_HOSTS, logger: quietLogger });
    invoke = async (event) => {
      const result = await handler(event, lambdaContext());
      return {
        statusCode: result.statusCode ?? 200,
        headers: result.headers ?? {},
        body: result.body ? JSON.parse(result.body) : undefined,
      };
    };
  });

  const put = (instanceId: string | undefined, body: unknown, headers?: Record<string, string>) =>
    invoke(
      httpEvent({
        method: 'PUT',
        path: '/v1/lease',
        body: typeof body === 'string' ? body : (body as object),
        userArn: instanceId && hostArn(instanceId),
        ...(headers ? { headers } : {}),
      }),
    );

  const routesInTable = async () => {
    const out = await aws.ec2.send(
      new DescribeRouteTablesCommand({ RouteTableIds: [plane.vpc.routeTableId] }),
    );
    return (out.RouteTables?.[0]?.Routes ?? []).filter((r) => r.DestinationCidrBlock?.startsWith('10.244.'));
  };

  const leaseCount = async () => (await plane.store.list()).length;

  it('grants a subnet inside the network with its route to the host ENI in every table of the VPC before answering', async () => {
    const [host] = await plane.launch();
    const tables = await aws.ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [plane.vpc.vpcId] }] }),
    );
    const tableIds = (tables.RouteTables ?? []).map((t) => t.RouteTableId!).sort();
    expect(tableIds).toHaveLength(2); // the VPC's main table and the public one
    aws.counter.reset();

    const res = await put(host!.instanceId, { privateIp: host!.privateIp });

    expect(res.statusCode).toBe(200);
    const lease = res.body as LeaseJson;
    expect(lease).toMatchObject({
      network: '10.244.0.0/16',
      instanceId: host!.instanceId,
      privateIp: host!.privateIp,
      networkInterfaceId: host!.networkInterfaceId,
    });
    expect(lease.routes.map((r) => r.routeTableId).sort()).toEqual(tableIds);
    expect(lease.routes.every((r) => r.state === 'active')).toBe(true);
    expect(contains(parseCidr('10.244.0.0/16'), parseCidr(lease.subnet))).toBe(true);
    expect(Date.parse(lease.expiresAt) - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    // budget for a new lease: at most one call per table + 2 (DescribeInstances, src/dst check)
    expect(aws.counter.total('EC2.')).toBeLessThanOrEqual(tableIds.length + 2);
    for (const tableId of tableIds) {
      const out = await aws.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [tableId] }));
      expect(out.RouteTables?.[0]?.Routes).toContainEqual(
        expect.objectContaining({
          DestinationCidrBlock: lease.subnet,
          NetworkInterfaceId: host!.networkInterfaceId,
        }),
      );
    }
  });

  it('returns the same subnet on a repeated call, renewing it with no EC2 call at all', async () => {
    const [host] = await plane.launch();
    const first = await put(host!.instanceId, { privateIp: host!.privateIp });
    aws.counter.reset();
    const again = await put(host!.instanceId, { privateIp: host!.privateIp });
    expect(again.statusCode).toBe(200);
    expect(again.body.subnet).toBe(first.body.subnet);
    expect(Date.parse(again.body.expiresAt)).toBeGreaterThanOrEqual(Date.parse(first.body.expiresAt));
    expect(aws.counter.total('EC2.')).toBe(0);
  });

  it('gives three instances three distinct subnets', async () => {
    const hosts = await plane.launch(3);
    const subnets = [];
    for (const h of hosts) subnets.push((await put(h.instanceId, { privateIp: h.privateIp })).body.subnet);
    expect(new Set(subnets).size).toBe(3);
  });

  it('gives back the previous subnet of an old subnet.env when it is free', async () => {
    // Earlier tests leased random subnets: pick one nobody holds.
    const held = new Set((await plane.store.list()).map((l) => formatCidr(l.subnet)));
    const previousSubnet = Array.from({ length: 100 }, (_, i) => `10.244.${i + 100}.0/24`).find(
      (c) => !held.has(c),
    )!;
    const [host] = await plane.launch();
    const res = await put(host!.instanceId, { privateIp: host!.privateIp, previousSubnet });
    expect(res.statusCode, JSON.stringify(res.body)).toBe(200);
    expect(res.body.subnet).toBe(previousSubnet);
  });

  it('ignores a previous subnet that another host holds, and grants a free one', async () => {
    const [a, b] = await plane.launch(2);
    await put(a!.instanceId, { privateIp: a!.privateIp, previousSubnet: '10.244.78.0/24' });
    const res = await put(b!.instanceId, { privateIp: b!.privateIp, previousSubnet: '10.244.78.0/24' });
    expect(res.statusCode).toBe(200);
    expect(res.body.subnet).not.toBe('10.244.78.0/24');
  });

  it('refuses with 403 an instance that sends another instance’s IP, and writes nothing', async () => {
    const [a, b] = await plane.launch(2);
    const before = await leaseCount();
    const res = await put(a!.instanceId, { privateIp: b!.privateIp });
    expect(res.statusCode).toBe(403);
    expect(res.body.error.code).toBe('Forbidden');
    expect(res.body.error.message).toContain(b!.privateIp);
    expect(await leaseCount()).toBe(before);
  });

  it('refuses with 403 a caller without an IAM identity, or whose identity is not an instance', async () => {
    const [host] = await plane.launch();
    const before = await leaseCount();
    const anonymous = await put(undefined, { privateIp: host!.privateIp });
    expect(anonymous.statusCode).toBe(403);
    expect(anonymous.body.error.code).toBe('Forbidden');
    const operator = await invoke(
      httpEvent({
        method: 'PUT',
        path: '/v1/lease',
        body: { privateIp: host!.privateIp },
        userArn: OPERATOR_ARN,
      }),
    );
    expect(operator.statusCode).toBe(403);
    expect(operator.body.error.message).toMatch(/vpc-lease-operator is not a host role/);
    expect(await leaseCount()).toBe(before);
  });

  it('refuses with 403 an instance that does not exist or is not running', async () => {
    const unknown = await put('i-0123456789abcdef0', { privateIp: '10.0.0.99' });
    expect(unknown.statusCode).toBe(403);
    expect(unknown.body.error.message).toMatch(/does not exist/);
    const [stopped] = await plane.launch();
    await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped!.instanceId] }));
    const res = await put(stopped!.instanceId, { privateIp: stopped!.privateIp });
    expect(res.statusCode).toBe(403);
    expect(res.body.error.message).toMatch(/stopped|stopping/);
  });

  it.each([
    { name: 'malformed JSON', body: '{"privateIp": ', status: 400, code: 'ValidationError' },
    { name: 'a JSON array', body: '[1,2]', status: 400, code: 'ValidationError' },
    { name: 'a non-IP privateIp', body: { privateIp: 'not-an-ip' }, status: 400, code: 'ValidationError' },
    {
      name: 'an IP with leading zeros',
      body: { privateIp: '10.0.0.010' },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'a number as privateIp', body: { privateIp: 167772161 }, status: 400, code: 'ValidationError' },
    { name: 'a missing privateIp', body: {}, status: 400, code: 'ValidationError' },
    {
      name: 'an unknown field',
      body: { privateIp: '10.0.0.5', subnet: '10.244.1.0/24' },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'a previousSubnet with host bits',
      body: { privateIp: '10.0.0.5', previousSubnet: '10.244.1.1/24' },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'a body over 8 KiB',
      body: { privateIp: '10.0.0.5', pad: 'x'.repeat(9000) },
      status: 413,
      code: 'PayloadTooLarge',
    },
  ])('answers $name with $status $code and writes nothing', async ({ body, status, code }) => {
    const [host] = await plane.launch();
    const before = await leaseCount();
    const res = await put(host!.instanceId, body);
    expect(res.statusCode).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toEqual(expect.any(String));
    expect(await leaseCount()).toBe(before);
  });

  it('refuses a non-JSON content type with 415', async () => {
    const [host] = await plane.launch();
    const res = await put(host!.instanceId, `privateIp=${host!.privateIp}`, { 'content-type': 'text/plain' });
    expect(res.statusCode).toBe(415);
    expect(res.body.error.code).toBe('UnsupportedMediaType');
  });

  it('releases the lease and its route with DELETE, and is idempotent', async () => {
    const [host] = await plane.launch();
    const granted = await put(host!.instanceId, { privateIp: host!.privateIp });
    const subnet = granted.body.subnet as string;
    const del = await invoke(
      httpEvent({ method: 'DELETE', path: '/v1/lease', userArn: hostArn(host!.instanceId) }),
    );
    expect(del.statusCode).toBe(204);
    expect(await plane.store.getBySubnet(parseCidr(subnet))).toBeUndefined();
    expect((await routesInTable()).map((r) => r.DestinationCidrBlock)).not.toContain(subnet);
    const again = await invoke(
      httpEvent({ method: 'DELETE', path: '/v1/lease', userArn: hostArn(host!.instanceId) }),
    );
    expect(again.statusCode).toBe(204);
  });

  it('serves the network config with defaults filled in', async () => {
    const res = await invoke(
      httpEvent({ method: 'GET', path: '/v1/config', userArn: hostArn('i-0123456789abcdef0') }),
    );
    expect(res.statusCode).toBe(200);
    expect(res.body).toEqual({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.244.1.0',
      SubnetMax: '10.244.255.0',
      Backend: { Type: 'aws-vpc', RouteLimit: 100 },
    });
  });

  it('answers an unknown route with 404 NotFound', async () => {
    const res = await invoke(
      httpEvent({ method: 'POST', path: '/v1/leases', userArn: hostArn('i-0123456789abcdef0') }),
    );
    expect(res.statusCode).toBe(404);
    expect(res.body.error.code).toBe('NotFound');
  });

  it('answers another method on a host path, routed by ANY /v1/lease as API Gateway does, with 405', async () => {
    const event = httpEvent({ method: 'POST', path: '/v1/lease', userArn: hostArn('i-0123456789abcdef0') });
    const res = await invoke({ ...event, routeKey: 'ANY /v1/lease' });
    expect(res.statusCode).toBe(405);
    expect(res.body.error).toEqual({
      code: 'MethodNotAllowed',
      message: '/v1/lease answers PUT, DELETE, not POST.',
    });
  });

  it('gives 50 instances acquiring at once 50 distinct subnets', async () => {
    const hosts = await plane.launch(50);
    const results = await Promise.all(hosts.map((h) => put(h.instanceId, { privateIp: h.privateIp })));
    expect(results.filter((r) => r.statusCode !== 200).map((r) => r.body)).toEqual([]);
    const subnets = results.map((r) => r.body.subnet);
    expect(new Set(subnets).size).toBe(50);
    const leases = await plane.store.list();
    const bySubnet = new Map(leases.map((l) => [`${l.instanceId}`, l]));
    for (const h of hosts) expect(bySubnet.get(h.instanceId)).toBeDefined();
  });
});

describe('lease function before any config is published', () => {
  const aws = useMoto();

  it('answers 503 ConfigMissing with what an operator must do', async () => {
    const plane = await createControlPlane(aws);
    await aws.dynamo.send(
      new (await import('@aws-sdk/lib-dynamodb')).DeleteCommand({
        TableName: plane.environment.tableName,
        Key: { pk: 'CONFIG' },
      }),
    );
    const handler = buildLeaseHandler({ leases: plane.leases, hosts: TEST_HOSTS, logger: quietLogger });
    const [host] = await plane.launch();
    const res = await handler(
      httpEvent({
        method: 'PUT',
        path: '/v1/lease',
        body: { privateIp: host!.privateIp },
        userArn: hostArn(host!.instanceId),
      }),
      lambdaContext(),
    );
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body!).error).toMatchObject({
      code: 'ConfigMissing',
      message: expect.stringMatching(/config set/),
    });
  });
});

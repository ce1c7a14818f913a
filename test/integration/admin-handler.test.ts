import {
  DeleteRouteCommand,
  DescribeRouteTablesCommand,
  type RouteTable,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildAdminHandler } from '../../functions/admin.js';
import { formatCidr, parseCidr } from '../../shared/cidr.js';
import type { LeaseJson, ReconcileReportJson, RouteUsageJson } from '../../shared/http/contract.js';
import type { HttpEvent } from '../../shared/http/middleware.js';
import { useMoto } from '../support/aws.js';
import { createControlPlane, quietLogger } from '../support/control-plane.js';
import { httpEvent, lambdaContext, OPERATOR_ARN, TEST_HOSTS } from '../support/events.js';

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: any;
}

const LEASE_ROUTE = '/v1/admin/leases/{subnet}';

/** A control plane with its admin function, and helpers to call it as API Gateway would. */
async function adminPlane(aws: ReturnType<typeof useMoto>, config?: object) {
  const plane = await createControlPlane(aws, {
    config: config ?? { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 20 } },
  });
  const admin = plane.admin;
  const handler = buildAdminHandler({ admin, hosts: TEST_HOSTS, logger: quietLogger });
  const invoke = async (event: HttpEvent): Promise<Answer> => {
    const result = await handler(event, lambdaContext('vpc-lease-admin'));
    return {
      statusCode: result.statusCode ?? 200,
      headers: (result.headers ?? {}) as Record<string, string>,
      body: result.body ? JSON.parse(result.body) : undefined,
    };
  };
  const call = (
    method: string,
    path: string,
    options: Omit<Parameters<typeof httpEvent>[0], 'method' | 'path'> = {},
  ) => invoke(httpEvent({ method, path, userArn: OPERATOR_ARN, ...options }));
  const lease = (method: 'GET' | 'DELETE', key: string) =>
    call(method, `/v1/admin/leases/${key}`, { route: LEASE_ROUTE, pathParameters: { subnet: key } });
  /** launches `count` instances and gives each a lease through the real lease service */
  const grant = async (count: number) => {
    const hosts = await plane.launch(count);
    const leases = [];
    for (const host of hosts) {
      const { lease } = await plane.leases.acquire(host.instanceId, { privateIp: host.privateIp });
      leases.push({ ...host, subnet: formatCidr(lease.subnet) });
    }
    return leases;
  };
  const tables = async (): Promise<RouteTable[]> => {
    const out = await aws.ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [plane.vpc.vpcId] }] }),
    );
    return out.RouteTables ?? [];
  };
  const mainTableId = async () =>
    (await tables()).find((t) => t.Associations?.some((a) => a.Main))!.RouteTableId!;
  const snapshot = async () => ({
    config: (await plane.store.getConfig())!,
    leases: (await plane.store.list()).map((l) => [formatCidr(l.subnet), l.instanceId]),
    routes: (await tables()).map((t) => [
      t.RouteTableId,
      (t.Routes ?? []).map((r) => r.DestinationCidrBlock),
    ]),
  });
  return { plane, invoke, call, lease, grant, tables, mainTableId, snapshot };
}

const key = (subnet: string) => subnet.replace('/', '-');

describe('admin function through the middy chain (moto)', () => {
  const aws = useMoto();

  describe('GET /v1/admin/leases', () => {
    let ctx: Awaited<ReturnType<typeof adminPlane>>;
    let granted: Awaited<ReturnType<typeof ctx.grant>>;

    beforeAll(async () => {
      ctx = await adminPlane(aws);
      granted = await ctx.grant(7);
    });

    it('lists every lease in subnet order with the lease JSON of the contract', async () => {
      const res = await ctx.call('GET', '/v1/admin/leases');
      expect(res.statusCode).toBe(200);
      expect(res.body.nextToken).toBeUndefined();
      const subnets = (res.body.leases as LeaseJson[]).map((l) => l.subnet);
      const expected = granted
        .map((g) => g.subnet)
        .sort((a, b) => Number(parseCidr(a).base - parseCidr(b).base));
      expect(subnets).toEqual(expected);
      const first = granted.find((g) => g.subnet === subnets[0])!;
      expect(res.body.leases[0]).toEqual({
        subnet: first.subnet,
        network: '10.244.0.0/16',
        instanceId: first.instanceId,
        privateIp: first.privateIp,
        networkInterfaceId: first.networkInterfaceId,
        expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        routes: expect.arrayContaining([
          { routeTableId: ctx.plane.vpc.routeTableId, destination: first.subnet, state: 'active' },
        ]),
      });
    });

    it('pages with ?limit= and ?nextToken=, covering every lease exactly once, in order', async () => {
      const all = (await ctx.call('GET', '/v1/admin/leases')).body.leases.map((l: LeaseJson) => l.subnet);
      const seen: string[] = [];
      const sizes: number[] = [];
      let nextToken: string | undefined;
      do {
        const res = await ctx.call('GET', '/v1/admin/leases', {
          queryStringParameters: { limit: '3', ...(nextToken ? { nextToken } : {}) },
        });
        expect(res.statusCode).toBe(200);
        sizes.push(res.body.leases.length);
        seen.push(...res.body.leases.map((l: LeaseJson) => l.subnet));
        nextToken = res.body.nextToken;
      } while (nextToken !== undefined);
      expect(sizes).toEqual([3, 3, 1]);
      expect(seen).toEqual(all);
    });

    it('starts the next page after the last subnet shown even if that lease is revoked meanwhile', async () => {
      const first = await ctx.call('GET', '/v1/admin/leases', { queryStringParameters: { limit: '2' } });
      const page1 = first.body.leases.map((l: LeaseJson) => l.subnet);
      const all = (await ctx.call('GET', '/v1/admin/leases')).body.leases.map((l: LeaseJson) => l.subnet);
      expect((await ctx.lease('DELETE', key(page1[1]))).statusCode).toBe(200);
      const rest = await ctx.call('GET', '/v1/admin/leases', {
        queryStringParameters: { limit: '1000', nextToken: first.body.nextToken },
      });
      expect(rest.body.leases.map((l: LeaseJson) => l.subnet)).toEqual(all.slice(2));
    });

    it('reads the query from rawQueryString where an emulator leaves queryStringParameters null', async () => {
      const event = httpEvent({ method: 'GET', path: '/v1/admin/leases', userArn: OPERATOR_ARN });
      const res = await ctx.invoke({
        ...event,
        rawQueryString: 'limit=1',
        queryStringParameters: null,
      } as never);
      expect(res.statusCode).toBe(200);
      expect(res.body.leases).toHaveLength(1);
      expect(res.body.nextToken).toEqual(expect.any(String));
    });

    it.each([
      ['limit=0', { limit: '0' }],
      ['limit=1001', { limit: '1001' }],
      ['limit=abc', { limit: 'abc' }],
      ['limit=-1', { limit: '-1' }],
      ['limit=2.5', { limit: '2.5' }],
      ['a token of the wrong alphabet', { nextToken: '!!!' }],
      ['a token that decodes to nonsense', { nextToken: Buffer.from('hello').toString('base64url') }],
      [
        'a token of a subnet with host bits',
        { nextToken: Buffer.from('10.244.7.1-24').toString('base64url') },
      ],
      ['an unknown query parameter', { offset: '3' }],
    ])('refuses %s with 400 ValidationError', async (_name, query) => {
      const res = await ctx.call('GET', '/v1/admin/leases', { queryStringParameters: query });
      expect(res.statusCode).toBe(400);
      expect(res.body.error.code).toBe('ValidationError');
      expect(res.body.error.message).toEqual(expect.any(String));
    });
  });

  describe('GET and DELETE /v1/admin/leases/{subnet}', () => {
    let ctx: Awaited<ReturnType<typeof adminPlane>>;

    beforeAll(async () => {
      ctx = await adminPlane(aws);
    });

    it('answers one lease by its flannel key', async () => {
      const [held] = await ctx.grant(1);
      const res = await ctx.lease('GET', key(held!.subnet));
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatchObject({
        subnet: held!.subnet,
        instanceId: held!.instanceId,
        networkInterfaceId: held!.networkInterfaceId,
      });
    });

    it('answers 404 NotFound for a subnet no lease holds', async () => {
      // 10.244.0.0/24 is below flannel's default SubnetMin (the network's second subnet):
      // no grant of this file's random allocations can ever hold it.
      const res = await ctx.lease('GET', '10.244.0.0-24');
      expect(res.statusCode).toBe(404);
      expect(res.body.error).toEqual({ code: 'NotFound', message: 'No lease holds 10.244.0.0/24.' });
      expect((await ctx.lease('DELETE', '10.244.0.0-24')).statusCode).toBe(404);
    });

    it.each([
      'abc',
      '10.244.7.1-24',
      '10.244.7.0-33',
      '10.244.7.0',
      '10.244.7.0%2F24',
      '..%2F..%2Fconfig',
      '..',
      '10.244.7.0-24%00',
      '%E0%A4%A',
    ])('refuses the key %s with 400 and changes nothing', async (bad) => {
      await ctx.grant(1);
      const before = await ctx.snapshot();
      for (const method of ['GET', 'DELETE'] as const) {
        const res = await ctx.lease(method, bad);
        expect(res.statusCode).toBe(400);
        expect(res.body.error.code).toBe('ValidationError');
        expect(res.body.error.message).toMatch(/10\.244\.7\.0-24/);
      }
      expect(await ctx.snapshot()).toEqual(before);
    });

    it('takes a traversal in the raw path (no routeKey, as a local emulator sends it) as a bad subnet, not another route', async () => {
      const event = httpEvent({
        method: 'DELETE',
        path: '/v1/admin/leases/../config',
        userArn: OPERATOR_ARN,
      });
      const res = await ctx.invoke({ ...event, routeKey: '$default' });
      expect(res.statusCode).toBe(400);
      expect(res.body.error.code).toBe('ValidationError');
    });

    it('routes by the raw path where the routeKey is $default', async () => {
      const [held] = await ctx.grant(1);
      const event = httpEvent({
        method: 'GET',
        path: `/v1/admin/leases/${key(held!.subnet)}`,
        userArn: OPERATOR_ARN,
      });
      const res = await ctx.invoke({ ...event, routeKey: '$default' });
      expect(res.statusCode).toBe(200);
      expect(res.body.subnet).toBe(held!.subnet);
    });

    it('revokes: removes the route from every table, then the lease, and answers the revoked lease', async () => {
      const [held, other] = await ctx.grant(2);
      const tablesBefore = await ctx.tables();
      expect(tablesBefore).toHaveLength(2);
      for (const table of tablesBefore)
        expect(table.Routes?.map((r) => r.DestinationCidrBlock)).toContain(held!.subnet);

      const res = await ctx.lease('DELETE', key(held!.subnet));

      expect(res.statusCode).toBe(200);
      expect(res.body).toMatchObject({ subnet: held!.subnet, instanceId: held!.instanceId, routes: [] });
      for (const table of await ctx.tables()) {
        const destinations = table.Routes?.map((r) => r.DestinationCidrBlock);
        expect(destinations).not.toContain(held!.subnet);
        expect(destinations).toContain(other!.subnet);
      }
      expect(await ctx.plane.store.getBySubnet(parseCidr(held!.subnet))).toBeUndefined();
      expect(await ctx.plane.store.getByInstance(held!.instanceId)).toBeUndefined();
      const again = await ctx.lease('DELETE', key(held!.subnet));
      expect(again.statusCode).toBe(404);
    });

    it('refuses a caller without an IAM identity with 403', async () => {
      const res = await ctx.invoke(
        httpEvent({
          method: 'GET',
          path: '/v1/admin/leases/10.244.1.0-24',
          route: LEASE_ROUTE,
          pathParameters: { subnet: '10.244.1.0-24' },
        }),
      );
      expect(res.statusCode).toBe(403);
      expect(res.body.error.code).toBe('Forbidden');
    });
  });

  describe('GET /v1/admin/routes', () => {
    it('counts per table: limit, used, owned, foreign (local + igw routes), blackholes, free', async () => {
      const ctx = await adminPlane(aws);
      const granted = await ctx.grant(3);
      const main = await ctx.mainTableId();
      const publicTable = ctx.plane.vpc.routeTableId;

      const res = await ctx.call('GET', '/v1/admin/routes');

      expect(res.statusCode).toBe(200);
      const byId = new Map((res.body as RouteUsageJson).tables.map((t) => [t.routeTableId, t]));
      expect(byId.size).toBe(2);
      // main table: local route + 3 lease routes
      expect(byId.get(main)).toEqual({
        routeTableId: main,
        limit: 20,
        used: 4,
        owned: 3,
        foreign: 1,
        blackholes: 0,
        free: 20 - 1 - 3,
        foreignClaims: [],
      });
      // public table: local route + 0.0.0.0/0 -> igw + 3 lease routes
      expect(byId.get(publicTable)).toEqual({
        routeTableId: publicTable,
        limit: 20,
        used: 5,
        owned: 3,
        foreign: 2,
        blackholes: 0,
        free: 20 - 2 - 3,
        foreignClaims: [],
      });

      // A holder terminated with no event delivered: its routes now lead nowhere.
      await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: [granted[0]!.instanceId] }));
      const after = await ctx.call('GET', '/v1/admin/routes');
      for (const table of (after.body as RouteUsageJson).tables) expect(table.blackholes).toBe(1);
    });
  });

  describe('GET and PUT /v1/admin/config', () => {
    it('reads the flannel JSON with defaults filled in and its version as an ETag', async () => {
      const ctx = await adminPlane(aws);
      const res = await ctx.call('GET', '/v1/admin/config');
      expect(res.statusCode).toBe(200);
      expect(res.body).toEqual({
        Network: '10.244.0.0/16',
        SubnetLen: 24,
        SubnetMin: '10.244.1.0',
        SubnetMax: '10.244.255.0',
        Backend: { Type: 'aws-vpc', RouteLimit: 20 },
      });
      expect(res.headers.etag).toBe('"1"');
      expect(Date.parse(res.headers['last-modified']!)).not.toBeNaN();
    });

    it('publishes a config, answers it as stored with the next version, and takes its own GET back unchanged', async () => {
      const ctx = await adminPlane(aws);
      await ctx.grant(2);
      const published = await ctx.call('PUT', '/v1/admin/config', {
        body: { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 40 } },
      });
      expect(published.statusCode).toBe(200);
      expect(published.body).toMatchObject({ SubnetLen: 24, Backend: { RouteLimit: 40 } });
      expect(published.headers.etag).toBe('"2"');

      const read = await ctx.call('GET', '/v1/admin/config');
      expect(read.body).toEqual(published.body);
      const roundTrip = await ctx.call('PUT', '/v1/admin/config', {
        body: read.body,
        headers: { 'if-match': read.headers.etag! },
      });
      expect(roundTrip.statusCode).toBe(200);
      expect(roundTrip.body).toEqual(read.body);
      expect(roundTrip.headers.etag).toBe('"3"');
    });

    it('refuses with 409 a publish whose If-Match is not the current version, and keeps the config', async () => {
      const ctx = await adminPlane(aws);
      const read = await ctx.call('GET', '/v1/admin/config');
      const first = await ctx.call('PUT', '/v1/admin/config', {
        body: { ...read.body, Backend: { Type: 'aws-vpc', RouteLimit: 30 } },
        headers: { 'if-match': read.headers.etag! },
      });
      expect(first.statusCode).toBe(200);
      const before = await ctx.snapshot();

      const second = await ctx.call('PUT', '/v1/admin/config', {
        body: { ...read.body, Backend: { Type: 'aws-vpc', RouteLimit: 35 } },
        headers: { 'if-match': read.headers.etag! },
      });

      expect(second.statusCode).toBe(409);
      expect(second.body.error.code).toBe('Conflict');
      expect(second.body.error.message).toMatch(/version 2, not 1/);
      expect(await ctx.snapshot()).toEqual(before);
    });

    it.each(['W/"1"', 'abc', '"1', '0', '"1", "2"'])('refuses the If-Match %s with 400', async (ifMatch) => {
      const ctx = await adminPlane(aws);
      const before = await ctx.snapshot();
      const res = await ctx.call('PUT', '/v1/admin/config', {
        body: { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 30 } },
        headers: { 'if-match': ifMatch },
      });
      expect(res.statusCode).toBe(400);
      expect(res.body.error.code).toBe('ValidationError');
      expect(await ctx.snapshot()).toEqual(before);
    });

    it('refuses with 400 a Network that overlaps the VPC CIDR and changes nothing', async () => {
      const ctx = await adminPlane(aws);
      const before = await ctx.snapshot();
      const res = await ctx.call('PUT', '/v1/admin/config', {
        body: { Network: '10.0.0.0/8', Backend: { Type: 'aws-vpc' } },
      });
      expect(res.statusCode).toBe(400);
      expect(res.body.error.code).toBe('ValidationError');
      expect(res.body.error.message).toMatch(/overlaps 10\.0\.0\.0\/16/);
      expect(await ctx.snapshot()).toEqual(before);
      expect((await ctx.call('GET', '/v1/admin/config')).headers.etag).toBe('"1"');
    });

    it.each([
      ['malformed JSON', '{"Network": '],
      ['a JSON array', '[]'],
      ['an unknown field', { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' }, Color: 'blue' }],
      ['another backend', { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } }],
      [
        'a misaligned SubnetMin',
        { Network: '10.244.0.0/16', SubnetMin: '10.244.1.5', Backend: { Type: 'aws-vpc' } },
      ],
      [
        'a RouteLimit over 1000',
        { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 1001 } },
      ],
    ])('refuses %s with 400 and changes nothing', async (_name, body) => {
      const ctx = await adminPlane(aws);
      const before = await ctx.snapshot();
      const res = await ctx.call('PUT', '/v1/admin/config', { body });
      expect(res.statusCode).toBe(400);
      expect(res.body.error.code).toBe('ValidationError');
      expect(await ctx.snapshot()).toEqual(before);
    });

    describe('refuses with 409 a config that would strand live leases, naming them, and changes nothing', () => {
      let ctx: Awaited<ReturnType<typeof adminPlane>>;
      let held: Awaited<ReturnType<typeof ctx.grant>>;

      beforeAll(async () => {
        ctx = await adminPlane(aws);
        held = [];
        // 10.244.200.0/24 sits above the SubnetMax of the first case below
        const [a, b, c] = await ctx.plane.launch(3);
        for (const [host, previousSubnet] of [
          [a!, '10.244.10.0/24'],
          [b!, '10.244.20.0/24'],
          [c!, '10.244.200.0/24'],
        ] as const) {
          const { lease } = await ctx.plane.leases.acquire(host.instanceId, {
            privateIp: host.privateIp,
            previousSubnet,
          });
          held.push({ ...host, subnet: formatCidr(lease.subnet) });
        }
        expect(held.map((h) => h.subnet)).toEqual(['10.244.10.0/24', '10.244.20.0/24', '10.244.200.0/24']);
      });

      const refuse = async (body: object, expectNamed: RegExp) => {
        const before = await ctx.snapshot();
        const res = await ctx.call('PUT', '/v1/admin/config', { body });
        expect(res.statusCode).toBe(409);
        expect(res.body.error.code).toBe('Conflict');
        expect(res.body.error.message).toMatch(expectNamed);
        expect(await ctx.snapshot()).toEqual(before);
        return res.body.error;
      };

      it('subnets outside the new range', async () => {
        const error = await refuse(
          {
            Network: '10.244.0.0/16',
            SubnetMax: '10.244.100.0',
            Backend: { Type: 'aws-vpc', RouteLimit: 20 },
          },
          /10\.244\.200\.0\/24/,
        );
        expect(error.message).toContain(held[2]!.instanceId);
        expect(error.details.leases).toEqual(['10.244.200.0/24']);
      });

      it('another Network', async () => {
        const error = await refuse(
          { Network: '10.245.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 20 } },
          /strand 3 live lease/,
        );
        expect(error.details.leases).toEqual(held.map((h) => h.subnet));
      });

      it('another SubnetLen', async () => {
        await refuse(
          { Network: '10.244.0.0/16', SubnetLen: 25, Backend: { Type: 'aws-vpc', RouteLimit: 20 } },
          /10\.244\.10\.0\/24.*10\.244\.20\.0\/24/,
        );
      });

      it('a RouteLimit below current use', async () => {
        // the public table holds the local route, the igw route and 3 lease routes
        await refuse(
          { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 4 } },
          /RouteLimit 4 is below current use.*at least 5/,
        );
      });

      it('dropping a route table that holds lease routes', async () => {
        const main = await ctx.mainTableId();
        const error = await refuse(
          {
            Network: '10.244.0.0/16',
            Backend: { Type: 'aws-vpc', RouteTableID: [ctx.plane.vpc.routeTableId], RouteLimit: 20 },
          },
          new RegExp(`drops route table ${main}.*10\\.244\\.10\\.0/24`),
        );
        expect(error.details).toEqual({ routeTableId: main, leases: held.map((h) => h.subnet) });
      });
    });
  });

  describe('POST /v1/admin/reconcile', () => {
    it('repairs a route deleted by hand and reports the change', async () => {
      const ctx = await adminPlane(aws);
      const [held] = await ctx.grant(1);
      const main = await ctx.mainTableId();
      await aws.ec2.send(new DeleteRouteCommand({ RouteTableId: main, DestinationCidrBlock: held!.subnet }));

      const res = await ctx.call('POST', '/v1/admin/reconcile');

      expect(res.statusCode).toBe(200);
      const report = res.body as ReconcileReportJson;
      expect(report.errors).toEqual([]);
      expect(report.changes).toEqual([
        expect.objectContaining({ action: 'route-created', routeTableId: main, subnet: held!.subnet }),
      ]);
      const table = (await ctx.tables()).find((t) => t.RouteTableId === main)!;
      expect(table.Routes).toContainEqual(
        expect.objectContaining({
          DestinationCidrBlock: held!.subnet,
          NetworkInterfaceId: held!.networkInterfaceId,
        }),
      );
      const again = await ctx.call('POST', '/v1/admin/reconcile');
      expect(again.body.changes).toEqual([]);
    });
  });

  describe('routing', () => {
    let ctx: Awaited<ReturnType<typeof adminPlane>>;

    beforeAll(async () => {
      ctx = await adminPlane(aws);
    });

    it('answers an unknown admin path with 404 and a known path with the wrong method with 405', async () => {
      const unknown = await ctx.call('GET', '/v1/admin/nothing');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.body.error.code).toBe('NotFound');
      const wrong = await ctx.call('DELETE', '/v1/admin/config');
      expect(wrong.statusCode).toBe(405);
      expect(wrong.body.error).toMatchObject({
        code: 'MethodNotAllowed',
        message: expect.stringMatching(/GET, PUT/),
      });
    });

    it('refuses every route to a caller without an IAM identity with 403, before any work', async () => {
      const before = await ctx.snapshot();
      for (const [method, path] of [
        ['GET', '/v1/admin/leases'],
        ['GET', '/v1/admin/routes'],
        ['GET', '/v1/admin/config'],
        ['PUT', '/v1/admin/config'],
        ['POST', '/v1/admin/reconcile'],
      ] as const) {
        const res = await ctx.invoke(
          httpEvent({ method, path, body: { Network: '10.245.0.0/16', Backend: { Type: 'aws-vpc' } } }),
        );
        expect(res.statusCode).toBe(403);
      }
      expect(await ctx.snapshot()).toEqual(before);
    });
  });
});

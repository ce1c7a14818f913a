/**
 * POST /v1/admin/import's service against real engines: a flannel registry written into a
 * real etcd (keys on etcd leases, flanneld's value format) and read by the CLI's reader, the
 * control plane on moto (EC2 and DynamoDB). Some PublicIPs are moto instances and some are
 * not; flannel-style routes exist for some subnets, to ENIs and (as older flannel wrote
 * them) to instances.
 */
import { CreateRouteCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRegistry } from '../../admin/commands/import.js';
import { EtcdClient } from '../../admin/etcd.js';
import { buildAdminHandler } from '../../functions/admin.js';
import { type LaunchedInstance, launchInstances, seedVpc } from '../../scripts/lib/seed.js';
import { createDependencies, type Dependencies } from '../../shared/adapters/dependencies.js';
import { formatCidr } from '../../shared/cidr.js';
import { ConflictError, ValidationError } from '../../shared/errors.js';
import type { ImportEntry } from '../../shared/import-plan.js';
import type { ImportResult } from '../../shared/import-service.js';
import { toFlannelJson } from '../../shared/network-config.js';
import { silentLogger } from '../../shared/ports.js';
import { createControlPlane, quietLogger } from '../support/control-plane.js';
import { createRouteByHand, routesOf, useMotoEc2 } from '../support/ec2-fixtures.js';
import { type EtcdServer, FLANNEL_PREFIX, startEtcd } from '../support/etcd.js';
import { httpEvent, lambdaContext, OPERATOR_ARN, TEST_HOSTS } from '../support/events.js';

const aws = useMotoEc2();
let etcd: EtcdServer;

beforeAll(async () => {
  etcd = await startEtcd();
}, 90_000);

afterAll(async () => {
  await etcd?.stop();
}, 30_000);

/** What the CLI sends: the registry as read from etcd by `vpc-lease import`'s reader. */
async function registry() {
  const read = await readRegistry(new EtcdClient([etcd.endpoint]), FLANNEL_PREFIX);
  return { config: read.config, leases: read.leases };
}

const outcomes = (result: ImportResult) =>
  Object.fromEntries(
    result.entries.map((e: ImportEntry) => [
      e.subnet ? formatCidr(e.subnet) : e.key,
      e.outcome === 'skip' ? `skip: ${e.reason?.code}` : e.outcome,
    ]),
  );

describe('ImportService: a live flannel registry adopted in place', () => {
  let plane: Awaited<ReturnType<typeof createControlPlane>>;
  let host: Record<
    'a' | 'b' | 'c' | 'd' | 'stopped' | 'outside' | 'leased' | 'other' | 'late' | 'blocked' | 'over',
    LaunchedInstance
  >;
  let table: string;
  const leaseTable = async () =>
    (await plane.store.list()).map((l) => [formatCidr(l.subnet), l.instanceId, l.networkInterfaceId]).sort();

  beforeAll(async () => {
    // RouteLimit 9: the table holds 3 foreign routes (local, 0.0.0.0/0 and 10.244.10.0/24 to the
    // internet gateway) and 2 leases exist, so 4 more fit and the fifth adoptable lease does not.
    plane = await createControlPlane(aws);
    table = plane.vpc.routeTableId;
    const published = (await plane.store.getConfig())!;
    const config = { ...published.config, backend: { ...published.config.backend, routeLimit: 9 } };
    await plane.store.putConfig(config, published.version, plane.clock.now(), 9 - 3);
    const [a, b, c, d, stopped, outside, leased, other, late, blocked, over] = await plane.launch(11);
    host = {
      a: a!,
      b: b!,
      c: c!,
      d: d!,
      stopped: stopped!,
      outside: outside!,
      leased: leased!,
      other: other!,
      late: late!,
      blocked: blocked!,
      over: over!,
    };
    await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [host.stopped.instanceId] }));

    // vpc-lease leases that exist before the import: `leased` holds 10.244.20.0/24, `other` 10.244.9.0/24.
    await plane.leases.acquire(host.leased.instanceId, {
      privateIp: host.leased.privateIp,
      previousSubnet: '10.244.20.0/24',
    });
    await plane.leases.acquire(host.other.instanceId, {
      privateIp: host.other.privateIp,
      previousSubnet: '10.244.9.0/24',
    });

    // flannel's routes: to the ENI (flannel >= 0.8), to the instance (older), a stale one to
    // another host's ENI, and a gateway route on one subnet (foreign).
    await createRouteByHand(aws.ec2, table, '10.244.1.0/24', host.a.networkInterfaceId);
    await aws.ec2.send(
      new CreateRouteCommand({
        RouteTableId: table,
        DestinationCidrBlock: '10.244.2.0/24',
        InstanceId: host.b.instanceId,
      }),
    );
    await createRouteByHand(aws.ec2, table, '10.244.3.0/24', host.d.networkInterfaceId);
    await aws.ec2.send(
      new CreateRouteCommand({
        RouteTableId: table,
        DestinationCidrBlock: '10.244.10.0/24',
        GatewayId: plane.vpc.internetGatewayId,
      }),
    );
    await plane.routes.refreshSnapshot(config);

    await etcd.deleteAll();
    await etcd.put(
      `${FLANNEL_PREFIX}/config`,
      JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' } }),
    );
    await etcd.putSubnet('10.244.1.0-24', host.a.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.2.0-24', host.b.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.3.0-24', host.c.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.4.0-24', host.d.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.5.0-24', '10.0.0.250', { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.6.0-24', host.stopped.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.245.0.0-24', host.outside.privateIp, { ttlSeconds: 86_000 });
    // a stale key of host a, on a lease with less time left than its current one
    await etcd.putSubnet('10.244.7.0-24', host.a.privateIp, { ttlSeconds: 600 });
    await etcd.putSubnet('10.244.8.0-24', host.leased.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.9.0-24', host.late.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.10.0-24', host.blocked.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.11.0-24', host.over.privateIp, { ttlSeconds: 86_000 });
    await etcd.put(`${FLANNEL_PREFIX}/subnets/10.244.12.0-24`, 'not json');
  }, 180_000);

  const expectedSkips = {
    '10.244.5.0/24': 'skip: no-instance',
    '10.244.6.0/24': 'skip: instance-not-running',
    '10.244.7.0/24': 'skip: duplicate-host',
    '10.244.8.0/24': 'skip: instance-leased',
    '10.244.9.0/24': 'skip: subnet-leased',
    '10.244.10.0/24': 'skip: foreign-route',
    '10.244.11.0/24': 'skip: route-capacity',
    '10.244.12.0/24': 'skip: malformed',
    '10.245.0.0/24': 'skip: outside-network',
  };

  it('dry run: plans each lease, with the reason of every skip, and changes nothing', async () => {
    const leasesBefore = await leaseTable();
    const routesBefore = await routesOf(aws.ec2, table);
    const configBefore = await plane.store.getConfig();

    const result = await plane.imports.import({ apply: false, ...(await registry()) });

    expect(result.applied).toBe(false);
    expect(result.configAction).toBe('matches');
    expect(outcomes(result)).toEqual({
      '10.244.1.0/24': 'adopt',
      '10.244.2.0/24': 'adopt',
      '10.244.3.0/24': 'adopt',
      '10.244.4.0/24': 'adopt',
      ...expectedSkips,
    });
    const bySubnet = new Map(result.entries.map((e) => [e.subnet ? formatCidr(e.subnet) : e.key, e]));
    expect(bySubnet.get('10.244.1.0/24')).toMatchObject({
      instanceId: host.a.instanceId,
      networkInterfaceId: host.a.networkInterfaceId,
      routes: [{ routeTableId: table, target: host.a.networkInterfaceId, action: 'keep' }],
    });
    expect(bySubnet.get('10.244.2.0/24')?.routes).toEqual([
      { routeTableId: table, target: host.b.instanceId, action: 'keep' },
    ]);
    expect(bySubnet.get('10.244.3.0/24')?.routes).toEqual([
      { routeTableId: table, target: host.d.networkInterfaceId, action: 'repoint' },
    ]);
    expect(bySubnet.get('10.244.4.0/24')?.routes).toEqual([
      { routeTableId: table, target: undefined, action: 'create' },
    ]);
    expect(bySubnet.get('10.244.7.0/24')?.reason?.message).toContain('10.244.1.0/24, which is kept');
    expect(bySubnet.get('10.244.9.0/24')?.reason?.message).toContain(host.other.instanceId);
    expect(bySubnet.get('10.244.10.0/24')?.reason?.message).toContain(plane.vpc.internetGatewayId);

    expect(await leaseTable()).toEqual(leasesBefore);
    expect(await routesOf(aws.ec2, table)).toEqual(routesBefore);
    expect(await plane.store.getConfig()).toEqual(configBefore);
  });

  it('apply: adopts exactly the planned leases on their own subnets, with routes to the right hosts', async () => {
    const result = await plane.imports.import({ apply: true, ...(await registry()) });

    expect(outcomes(result)).toEqual({
      '10.244.1.0/24': 'adopted',
      '10.244.2.0/24': 'adopted',
      '10.244.3.0/24': 'adopted',
      '10.244.4.0/24': 'adopted',
      ...expectedSkips,
    });
    expect(await leaseTable()).toEqual(
      [
        ['10.244.1.0/24', host.a.instanceId, host.a.networkInterfaceId],
        ['10.244.2.0/24', host.b.instanceId, host.b.networkInterfaceId],
        ['10.244.20.0/24', host.leased.instanceId, host.leased.networkInterfaceId],
        ['10.244.3.0/24', host.c.instanceId, host.c.networkInterfaceId],
        ['10.244.4.0/24', host.d.instanceId, host.d.networkInterfaceId],
        ['10.244.9.0/24', host.other.instanceId, host.other.networkInterfaceId],
      ].sort(),
    );
    for (const lease of await plane.store.list()) {
      expect(lease.routes).toEqual([{ routeTableId: table, state: 'active' }]);
    }
    const routes = new Map(await routesOf(aws.ec2, table));
    expect(routes.get('10.244.1.0/24')).toBe(host.a.networkInterfaceId); // kept
    expect(routes.get('10.244.2.0/24')).toBe(host.b.instanceId); // kept: it reaches the host
    expect(routes.get('10.244.3.0/24')).toBe(host.c.networkInterfaceId); // re-pointed from d's ENI
    expect(routes.get('10.244.4.0/24')).toBe(host.d.networkInterfaceId); // created
    expect(routes.get('10.244.10.0/24')).toBe(plane.vpc.internetGatewayId); // foreign: untouched
    expect(routes.has('10.244.11.0/24')).toBe(false);
  });

  it('a second apply changes nothing', async () => {
    const leasesBefore = await plane.store.list();
    const routesBefore = await routesOf(aws.ec2, table);

    const result = await plane.imports.import({ apply: true, ...(await registry()) });

    expect(outcomes(result)).toEqual({
      '10.244.1.0/24': 'unchanged',
      '10.244.2.0/24': 'unchanged',
      '10.244.3.0/24': 'unchanged',
      '10.244.4.0/24': 'unchanged',
      ...expectedSkips,
    });
    expect(await plane.store.list()).toEqual(leasesBefore);
    expect(await routesOf(aws.ec2, table)).toEqual(routesBefore);
  });

  it("the agent's first PUT afterwards renews the adopted lease: same subnet, no EC2 call", async () => {
    for (const [name, subnet] of [
      ['a', '10.244.1.0/24'],
      ['b', '10.244.2.0/24'],
      ['c', '10.244.3.0/24'],
    ] as const) {
      aws.counter.reset();
      const { lease, outcome } = await plane.leases.acquire(host[name].instanceId, {
        privateIp: host[name].privateIp,
        previousSubnet: subnet,
      });
      expect([formatCidr(lease.subnet), outcome]).toEqual([subnet, 'renewed']);
      expect([...aws.counter.calls.keys()].filter((k) => k.startsWith('EC2.'))).toEqual([]);
    }
  });
});

describe('ImportService: the network config', () => {
  it('refuses (409) a registry whose config differs from the published one, naming the differences, and changes nothing', async () => {
    const plane = await createControlPlane(aws);
    const [host] = await plane.launch(1);
    await etcd.deleteAll();
    await etcd.put(
      `${FLANNEL_PREFIX}/config`,
      JSON.stringify({ Network: '10.245.0.0/16', SubnetLen: 26, Backend: { Type: 'aws-vpc' } }),
    );
    await etcd.putSubnet('10.245.1.0-26', host!.privateIp, { ttlSeconds: 3600 });

    const refusal = plane.imports.import({ apply: true, ...(await registry()) });

    await expect(refusal).rejects.toBeInstanceOf(ConflictError);
    const error = (await refusal.catch((e: unknown) => e)) as ConflictError;
    expect(error.details).toEqual({
      differences: [
        { field: 'Network', registry: '10.245.0.0/16', published: '10.244.0.0/16' },
        { field: 'SubnetLen', registry: '26', published: '24' },
        { field: 'SubnetMin', registry: '10.245.0.64', published: '10.244.1.0' },
        { field: 'SubnetMax', registry: '10.245.255.192', published: '10.244.255.0' },
      ],
    });
    expect(error.message).toContain('Network is 10.245.0.0/16 in the registry, 10.244.0.0/16 in vpc-lease');
    expect(await plane.store.list()).toEqual([]);
  });

  describe('with no config published', () => {
    let deps: Dependencies;
    let host: LaunchedInstance;
    const registryConfig = (routeTableId: string) => ({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: routeTableId },
    });

    beforeAll(async () => {
      const vpc = await seedVpc(aws.ec2, { name: `vpc-lease-import-${Date.now()}` });
      deps = createDependencies({
        environment: { tableName: await aws.newTable(), vpcId: vpc.vpcId, leaseTtlSeconds: 86_400 },
        dynamo: aws.dynamo,
        ec2: aws.ec2,
        logger: silentLogger,
      });
      [host] = (await launchInstances(aws.ec2, vpc.subnetId, 1)) as [LaunchedInstance];
      await createRouteByHand(aws.ec2, vpc.routeTableId, '10.244.33.0/24', host.networkInterfaceId);
      await etcd.deleteAll();
      await etcd.put(`${FLANNEL_PREFIX}/config`, JSON.stringify(registryConfig(vpc.routeTableId)));
      await etcd.putSubnet('10.244.33.0-24', host.privateIp, { ttlSeconds: 3600 });
    }, 120_000);

    it('the dry run validates the registry config as a publish would, and publishes nothing', async () => {
      const result = await deps.imports.import({ apply: false, ...(await registry()) });
      expect(result.configAction).toBe('publish');
      expect(outcomes(result)).toEqual({ '10.244.33.0/24': 'adopt' });
      expect(await deps.store.getConfig()).toBeUndefined();
      expect(await deps.store.list()).toEqual([]);
    });

    it('the apply publishes the registry config, then adopts under it', async () => {
      const result = await deps.imports.import({ apply: true, ...(await registry()) });
      expect(result.configAction).toBe('published');
      const stored = await deps.store.getConfig();
      expect(stored && toFlannelJson(stored.config)).toMatchObject({
        Network: '10.244.0.0/16',
        SubnetLen: 24,
        Backend: { Type: 'aws-vpc', RouteLimit: 50 },
      });
      expect(outcomes(result)).toEqual({ '10.244.33.0/24': 'adopted' });
      expect((await deps.store.list()).map((l) => [formatCidr(l.subnet), l.instanceId])).toEqual([
        ['10.244.33.0/24', host.instanceId],
      ]);
    });

    it('refuses (400) a registry config that overlaps the VPC, before anything is written', async () => {
      const fresh = createDependencies({
        environment: {
          tableName: await aws.newTable(),
          vpcId: deps.environment.vpcId,
          leaseTtlSeconds: 86_400,
        },
        dynamo: aws.dynamo,
        ec2: aws.ec2,
        logger: silentLogger,
      });
      const refusal = fresh.imports.import({
        apply: true,
        config: { Network: '10.0.0.0/16', Backend: { Type: 'aws-vpc' } },
        leases: [],
      });
      await expect(refusal).rejects.toBeInstanceOf(ValidationError);
      await expect(refusal).rejects.toThrow(/^The registry's network config .* overlaps 10\.0\.0\.0\/16/);
      expect(await fresh.store.getConfig()).toBeUndefined();
    });
  });
});

describe('POST /v1/admin/import through the admin function', () => {
  let invoke: (body: unknown, method?: string) => Promise<{ statusCode: number; body: any }>;
  let plane: Awaited<ReturnType<typeof createControlPlane>>;

  beforeAll(async () => {
    plane = await createControlPlane(aws);
    const admin = plane.admin;
    const handler = buildAdminHandler({
      admin,
      imports: plane.imports,
      hosts: TEST_HOSTS,
      logger: quietLogger,
    });
    invoke = async (body, method = 'POST') => {
      const result = await handler(
        httpEvent({
          method,
          path: '/v1/admin/import',
          userArn: OPERATOR_ARN,
          ...(body === undefined ? {} : { body: body as object }),
        }),
        lambdaContext('vpc-lease-admin'),
      );
      return {
        statusCode: result.statusCode ?? 200,
        body: result.body ? JSON.parse(result.body) : undefined,
      };
    };
  }, 60_000);

  it('answers the plan as JSON', async () => {
    const [host] = await plane.launch(1);
    const answer = await invoke({
      apply: false,
      config: null,
      leases: [
        {
          key: '10.244.40.0-24',
          value: { PublicIP: host!.privateIp, BackendType: 'aws-vpc' },
          ttlSeconds: 3600,
        },
      ],
    });
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toEqual({
      applied: false,
      config: { action: 'matches', value: expect.objectContaining({ Network: '10.244.0.0/16' }) },
      leases: [
        {
          subnet: '10.244.40.0/24',
          publicIp: host!.privateIp,
          ttlSeconds: 3600,
          instanceId: host!.instanceId,
          networkInterfaceId: host!.networkInterfaceId,
          routes: [{ routeTableId: plane.vpc.routeTableId, target: null, action: 'create' }],
          action: 'adopt',
        },
      ],
      summary: { adopt: 1, adopted: 0, unchanged: 0, skipped: 0 },
    });
    expect(await plane.store.list()).toEqual([]);
  });

  it.each([
    ['no apply flag', { leases: [] }, 'apply: required, true or false.'],
    ['leases not a list', { apply: false, leases: {} }, 'leases: required, a list (may be empty).'],
    [
      'an unknown field',
      { apply: false, leases: [], force: true },
      'Unknown field "force"; allowed: apply, config, leases.',
    ],
    [
      'a config that is not an object',
      { apply: false, config: 'x', leases: [] },
      "config: the registry's network config as a JSON object, or null.",
    ],
    [
      'a key listed twice',
      {
        apply: false,
        leases: [
          { key: '10.244.1.0-24', value: {}, ttlSeconds: 1 },
          { key: '10.244.1.0-24', value: {}, ttlSeconds: 2 },
        ],
      },
      'leases[1].key: 10.244.1.0-24 is listed twice.',
    ],
    [
      'a TTL that is not whole seconds',
      { apply: true, leases: [{ key: '10.244.1.0-24', value: {}, ttlSeconds: '5' }] },
      'leases[0].ttlSeconds: required, whole seconds left on the etcd lease, or null.',
    ],
  ])('refuses %s with 400 and changes nothing', async (_name, body, message) => {
    const answer = await invoke(body);
    expect(answer).toEqual({ statusCode: 400, body: { error: { code: 'ValidationError', message } } });
    expect(await plane.store.list()).toEqual([]);
  });

  it('answers 405 to another method', async () => {
    const answer = await invoke(undefined, 'GET');
    expect(answer.statusCode).toBe(405);
    expect(answer.body.error.code).toBe('MethodNotAllowed');
  });
});

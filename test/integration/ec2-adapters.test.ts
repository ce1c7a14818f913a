import {
  AssociateVpcCidrBlockCommand,
  DescribeRouteTablesCommand,
  type EC2Client,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { createEc2Client } from '../../shared/adapters/aws-clients.js';
import {
  errorName,
  isServiceUnavailable,
  isThrottle,
  toDomainError,
} from '../../shared/adapters/aws-errors.js';
import { Ec2Instances } from '../../shared/adapters/ec2-instances.js';
import { Ec2RouteTables } from '../../shared/adapters/ec2-route-tables.js';
import {
  NotFoundError,
  RouteLimitExceededError,
  RouteTableGoneError,
  ServiceUnavailableError,
  ThrottledError,
  ValidationError,
} from '../../shared/errors.js';
import { TEST_REGION } from '../support/aws.js';
import {
  APPLIANCE_CIDR,
  createNetworkFixture,
  createRouteByHand,
  injectEc2Errors,
  launchHosts,
  PEERED_CIDR,
  routeTarget,
  sourceDestCheckOf,
  terminate,
  useMotoEc2,
} from '../support/ec2-fixtures.js';

const aws = useMotoEc2();

describe('Ec2RouteTables (against moto)', () => {
  const port = () => new Ec2RouteTables(aws.ec2);

  it('describes every route table of the VPC and none of another VPC', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 3 });
    const tables = await port().describeRouteTables({ vpcId: fixture.vpcId });
    const ids = tables.map((t) => t.routeTableId);
    // the fixture's three tables plus the VPC's main table
    expect(ids).toHaveLength(4);
    expect(ids).toEqual(expect.arrayContaining([...fixture.routeTableIds]));
    expect(tables.every((t) => t.vpcId === fixture.vpcId)).toBe(true);
  });

  it('maps each route to its destination, target, state and origin', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const [tableId] = fixture.routeTableIds;
    await createRouteByHand(aws.ec2, tableId!, '10.244.7.0/24', host!.networkInterfaceId);

    const [table] = await port().describeRouteTables({ vpcId: fixture.vpcId, routeTableIds: [tableId!] });
    expect(table?.routes).toEqual(
      expect.arrayContaining([
        { destination: '10.0.0.0/16', otherTarget: 'local', state: 'active', origin: 'CreateRouteTable' },
        {
          destination: '0.0.0.0/0',
          otherTarget: fixture.internetGatewayId,
          state: 'active',
          origin: 'CreateRoute',
        },
        {
          destination: PEERED_CIDR,
          otherTarget: fixture.peeringConnectionId,
          state: 'active',
          origin: 'CreateRoute',
        },
        {
          destination: APPLIANCE_CIDR,
          networkInterfaceId: fixture.applianceEniId,
          state: 'active',
          origin: 'CreateRoute',
        },
        {
          destination: '10.244.7.0/24',
          networkInterfaceId: host!.networkInterfaceId,
          state: 'active',
          origin: 'CreateRoute',
        },
      ]),
    );
    expect(table?.routes).toHaveLength(5);
  });

  it('describes only the listed tables, in the order listed', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 3 });
    const wanted = [fixture.routeTableIds[2]!, fixture.routeTableIds[0]!];
    const tables = await port().describeRouteTables({ vpcId: fixture.vpcId, routeTableIds: wanted });
    expect(tables.map((t) => t.routeTableId)).toEqual(wanted);
  });

  it('refuses listed tables that are not in the VPC, naming each of them', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const other = await createNetworkFixture(aws.ec2, { tables: 1 });
    const strangers = [other.routeTableIds[0]!, 'rtb-0123456789abcdef0'];
    const attempt = port().describeRouteTables({
      vpcId: fixture.vpcId,
      routeTableIds: [fixture.routeTableIds[0]!, ...strangers],
    });
    await expect(attempt).rejects.toBeInstanceOf(ValidationError);
    await expect(attempt).rejects.toThrow(
      `${strangers[0]}, ${strangers[1]} do not exist in VPC ${fixture.vpcId}`,
    );
  });

  it('leaves out listed tables that are gone when asked for the existing ones only', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 2 });
    const tables = await port().describeRouteTables({
      vpcId: fixture.vpcId,
      routeTableIds: [fixture.routeTableIds[1]!, 'rtb-0123456789abcdef0', fixture.routeTableIds[0]!],
      existingOnly: true,
    });
    expect(tables.map((t) => t.routeTableId)).toEqual([fixture.routeTableIds[1], fixture.routeTableIds[0]]);
  });

  it('creates a route to an ENI, and reports "exists" without changing a route already there', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [a, b] = await launchHosts(aws.ec2, fixture, 2);
    const tableId = fixture.routeTableIds[0]!;

    expect(await port().createRoute(tableId, '10.244.7.0/24', a!.networkInterfaceId)).toBe('created');
    expect(await port().createRoute(tableId, '10.244.7.0/24', b!.networkInterfaceId)).toBe('exists');
    expect(await routeTarget(aws.ec2, tableId, '10.244.7.0/24')).toBe(a!.networkInterfaceId);
  });

  it('replaces the target of a route in one call', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [a, b] = await launchHosts(aws.ec2, fixture, 2);
    const tableId = fixture.routeTableIds[0]!;
    await createRouteByHand(aws.ec2, tableId, '10.244.7.0/24', a!.networkInterfaceId);

    aws.counter.reset();
    await port().replaceRoute(tableId, '10.244.7.0/24', b!.networkInterfaceId);
    expect(await routeTarget(aws.ec2, tableId, '10.244.7.0/24')).toBe(b!.networkInterfaceId);
    expect(aws.counter.calls.get('EC2.ReplaceRoute')).toBe(1);
    expect(aws.counter.calls.get('EC2.DeleteRoute')).toBeUndefined();
  });

  it('creates the route when asked to replace one that has vanished meanwhile', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const tableId = fixture.routeTableIds[0]!;
    await port().replaceRoute(tableId, '10.244.7.0/24', host!.networkInterfaceId);
    expect(await routeTarget(aws.ec2, tableId, '10.244.7.0/24')).toBe(host!.networkInterfaceId);
  });

  it('deletes a route, and reports "absent" for a route that is not there', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const tableId = fixture.routeTableIds[0]!;
    await createRouteByHand(aws.ec2, tableId, '10.244.7.0/24', host!.networkInterfaceId);

    expect(await port().deleteRoute(tableId, '10.244.7.0/24')).toBe('deleted');
    expect(await port().deleteRoute(tableId, '10.244.7.0/24')).toBe('absent');
    expect(await routeTarget(aws.ec2, tableId, '10.244.7.0/24')).toBeUndefined();
  });

  it('names the route table (gone: RouteTableGoneError, a 404) or the ENI that does not exist', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const gone = port().createRoute('rtb-0123456789abcdef0', '10.244.7.0/24', host!.networkInterfaceId);
    await expect(gone).rejects.toBeInstanceOf(RouteTableGoneError);
    await expect(gone).rejects.toMatchObject({
      code: 'NotFound',
      status: 404,
      routeTableId: 'rtb-0123456789abcdef0',
      message:
        'Route table rtb-0123456789abcdef0 does not exist; check Backend.RouteTableID in the network config.',
    });
    await expect(
      port().createRoute(fixture.routeTableIds[0]!, '10.244.7.0/24', 'eni-0123456789abcdef0'),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('turns EC2 RouteLimitExceeded (injected) into RouteLimitExceededError with the routes the table holds', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const client = faultyClient(aws.moto.endpoint, {
      CreateRoute: {
        code: 'RouteLimitExceeded',
        status: 400,
        message: 'The maximum number of routes has been reached.',
      },
    });
    try {
      const error = await new Ec2RouteTables(client)
        .createRoute(fixture.routeTableIds[0]!, '10.244.7.0/24', host!.networkInterfaceId)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RouteLimitExceededError);
      // local, 0.0.0.0/0, the peering and the appliance route
      expect(error).toMatchObject({ used: 4, limit: 4, routeTableId: fixture.routeTableIds[0], status: 409 });
    } finally {
      client.destroy();
    }
  });

  it('surfaces throttling (injected RequestLimitExceeded) as ThrottledError with Retry-After, after the SDK retried', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const counter = aws.counter;
    const client = faultyClient(aws.moto.endpoint, {
      CreateRoute: { code: 'RequestLimitExceeded', status: 503 },
    });
    counter.reset();
    try {
      const error = await new Ec2RouteTables(client)
        .createRoute(fixture.routeTableIds[0]!, '10.244.7.0/24', host!.networkInterfaceId)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ status: 503, code: 'Throttled', retryAfterSeconds: 5 });
      expect(counter.calls.get('EC2.CreateRoute')).toBe(2); // maxAttempts 2: the SDK retried once
    } finally {
      client.destroy();
    }
  });

  it('surfaces an EC2 outage (injected 500 InternalError) as ServiceUnavailableError', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const client = faultyClient(aws.moto.endpoint, {
      DescribeRouteTables: { code: 'InternalError', status: 500, message: 'An internal error has occurred' },
    });
    try {
      await expect(
        new Ec2RouteTables(client).describeRouteTables({ vpcId: fixture.vpcId }),
      ).rejects.toBeInstanceOf(ServiceUnavailableError);
    } finally {
      client.destroy();
    }
  });

  function faultyClient(endpoint: string, faults: Parameters<typeof injectEc2Errors>[1]): EC2Client {
    const client = createEc2Client({ endpoint, region: TEST_REGION, counter: aws.counter, maxAttempts: 2 });
    injectEc2Errors(client, faults);
    return client;
  }
});

describe('Ec2Instances (against moto)', () => {
  const port = () => new Ec2Instances(aws.ec2);

  it('describes instances with state, VPC, ENIs, private IPs and source/destination check', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [a, b] = await launchHosts(aws.ec2, fixture, 2);
    const infos = await port().describeInstances([a!.instanceId, b!.instanceId]);
    expect(infos).toEqual([
      {
        instanceId: a!.instanceId,
        state: 'running',
        vpcId: fixture.vpcId,
        networkInterfaces: [
          { networkInterfaceId: a!.networkInterfaceId, privateIps: [a!.privateIp], sourceDestCheck: true },
        ],
      },
      expect.objectContaining({ instanceId: b!.instanceId, state: 'running' }),
    ]);
  });

  it('leaves unknown instance ids out instead of failing', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const infos = await port().describeInstances(['i-0123456789abcdef0', host!.instanceId]);
    expect(infos.map((i) => i.instanceId)).toEqual([host!.instanceId]);
    expect(await port().describeInstances([])).toEqual([]);
  });

  it('reports stopped and terminated instances by their state', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [stopped, gone] = await launchHosts(aws.ec2, fixture, 2);
    await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped!.instanceId] }));
    await terminate(aws.ec2, gone!.instanceId);
    const infos = await port().describeInstances([stopped!.instanceId, gone!.instanceId]);
    expect(infos.map((i) => [i.instanceId, i.state])).toEqual([
      [stopped!.instanceId, 'stopped'],
      [gone!.instanceId, 'terminated'],
    ]);
  });

  it('asks for at most 200 ids per call, once per chunk', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const unknown = Array.from({ length: 250 }, (_, i) => `i-${(i + 1).toString(16).padStart(17, '0')}`);
    aws.counter.reset();
    const infos = await port().describeInstances([...unknown, host!.instanceId]);
    expect(infos.map((i) => i.instanceId)).toEqual([host!.instanceId]);
    expect(aws.counter.calls.get('EC2.DescribeInstances')).toBe(2);
  });

  it('finds the instances of the VPC by private IP, leaving out unknown addresses and other VPCs', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const other = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [a, b, stopped] = await launchHosts(aws.ec2, fixture, 3);
    const [elsewhere] = await launchHosts(aws.ec2, other);
    await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped!.instanceId] }));
    aws.counter.reset();
    const infos = await port().findByPrivateIps(fixture.vpcId, [
      a!.privateIp,
      stopped!.privateIp,
      elsewhere!.privateIp,
      '10.0.250.250',
    ]);
    expect(infos.map((i) => [i.instanceId, i.state]).sort()).toEqual(
      [
        [a!.instanceId, 'running'],
        [stopped!.instanceId, 'stopped'],
      ].sort(),
    );
    expect(infos.find((i) => i.instanceId === a!.instanceId)?.networkInterfaces).toEqual([
      { networkInterfaceId: a!.networkInterfaceId, privateIps: [a!.privateIp], sourceDestCheck: true },
    ]);
    expect(infos.some((i) => i.instanceId === b!.instanceId)).toBe(false);
    expect(aws.counter.calls.get('EC2.DescribeInstances')).toBe(1);
  });

  it('disables the source/destination check of an ENI', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    await port().disableSourceDestCheck(host!.networkInterfaceId);
    expect(await sourceDestCheckOf(aws.ec2, host!.networkInterfaceId)).toBe(false);
    const [info] = await port().describeInstances([host!.instanceId]);
    expect(info?.networkInterfaces[0]?.sourceDestCheck).toBe(false);
  });

  it('names the ENI that does not exist', async () => {
    await expect(port().disableSourceDestCheck('eni-0123456789abcdef0')).rejects.toThrow(
      'Network interface eni-0123456789abcdef0 does not exist',
    );
  });

  it('lists every associated IPv4 block of the VPC', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    await aws.ec2.send(new AssociateVpcCidrBlockCommand({ VpcId: fixture.vpcId, CidrBlock: '10.1.0.0/16' }));
    expect((await port().describeVpcCidrs(fixture.vpcId)).sort()).toEqual(['10.0.0.0/16', '10.1.0.0/16']);
  });

  it('names the VPC that does not exist', async () => {
    await expect(port().describeVpcCidrs('vpc-0123456789abcdef0')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('SDK error mapping', () => {
  const sdkError = (name: string, status: number, extra: object = {}) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      $fault: status >= 500 ? 'server' : 'client',
      $metadata: { httpStatusCode: status },
      ...extra,
    });

  it.each([
    'RequestLimitExceeded',
    'Throttling',
    'ThrottlingException',
    'ProvisionedThroughputExceededException',
    'RequestThrottled',
  ])('maps %s to ThrottledError (503, Retry-After)', (name) => {
    const error = toDomainError('EC2', sdkError(name, 400));
    expect(isThrottle(sdkError(name, 400))).toBe(true);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toMatchObject({ status: 503, retryAfterSeconds: 5, expose: true });
  });

  it('maps any 429 to ThrottledError and takes the Retry-After the service sent', () => {
    const error = toDomainError(
      'DynamoDB',
      sdkError('SomethingNew', 429, { $response: { statusCode: 429, headers: { 'retry-after': '12' } } }),
    );
    expect(error).toMatchObject({ code: 'Throttled', retryAfterSeconds: 12 });
    expect(error.message).toContain('DynamoDB');
  });

  it('maps 5xx, timeouts and dropped connections to ServiceUnavailableError', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    for (const error of [sdkError('InternalError', 500), sdkError('TimeoutError', 0), refused]) {
      expect(isServiceUnavailable(error)).toBe(true);
      expect(toDomainError('EC2', error)).toBeInstanceOf(ServiceUnavailableError);
    }
  });

  it('returns 4xx errors and domain errors unchanged, for the caller to handle', () => {
    const conditional = sdkError('ConditionalCheckFailedException', 400);
    expect(toDomainError('DynamoDB', conditional)).toBe(conditional);
    expect(errorName(conditional)).toBe('ConditionalCheckFailedException');
    const domain = new NotFoundError('gone');
    expect(toDomainError('EC2', domain)).toBe(domain);
    expect(toDomainError('EC2', 'a string')).toBeInstanceOf(Error);
  });

  it('treats a connection the SDK could not make as unavailable', async () => {
    const client = createEc2Client({ region: TEST_REGION, endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    try {
      const error = await client.send(new DescribeRouteTablesCommand({})).catch((e: unknown) => e);
      expect(isServiceUnavailable(error)).toBe(true);
    } finally {
      client.destroy();
    }
  });
});

/**
 * The EC2 adapters' IPv6 half, against moto: IPv6 routes (DestinationIpv6CidrBlock) are
 * described apart from IPv4 ones, written, re-pointed and deleted; the VPC's IPv6 blocks
 * are listed for the config's overlap check.
 */
import {
  AssociateVpcCidrBlockCommand,
  CreateRouteCommand,
  CreateVpcCommand,
  DescribeRouteTablesCommand,
  DescribeVpcsCommand,
  DisassociateVpcCidrBlockCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { createEc2Client } from '../../shared/adapters/aws-clients.js';
import { Ec2Instances } from '../../shared/adapters/ec2-instances.js';
import { Ec2RouteTables } from '../../shared/adapters/ec2-route-tables.js';
import { NotFoundError, RouteLimitExceededError } from '../../shared/errors.js';
import { TEST_REGION } from '../support/aws.js';
import {
  createNetworkFixture,
  createRouteByHand,
  injectEc2Errors,
  launchHosts,
  routeTarget,
  useMotoEc2,
} from '../support/ec2-fixtures.js';

const aws = useMotoEc2();

const SUBNET6 = 'fd00:10:244:7::/64';
const OTHER6 = 'fd00:10:244:8::/64';

async function vpcIpv6Block(ec2: EC2Client, vpcId: string): Promise<string> {
  const out = await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }));
  return out.Vpcs![0]!.Ipv6CidrBlockAssociationSet![0]!.Ipv6CidrBlock!;
}

/** The IPv6 routes of a table straight from EC2, as [destination, target] pairs. */
async function ipv6RoutesOf(ec2: EC2Client, routeTableId: string): Promise<[string, string][]> {
  const out = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }));
  return (out.RouteTables?.[0]?.Routes ?? []).flatMap((r) =>
    r.DestinationIpv6CidrBlock
      ? [[r.DestinationIpv6CidrBlock, r.NetworkInterfaceId ?? r.GatewayId ?? '?']]
      : [],
  );
}

async function createIpv6RouteByHand(
  ec2: EC2Client,
  routeTableId: string,
  destination: string,
  networkInterfaceId: string,
): Promise<void> {
  await ec2.send(
    new CreateRouteCommand({
      RouteTableId: routeTableId,
      DestinationIpv6CidrBlock: destination,
      NetworkInterfaceId: networkInterfaceId,
    }),
  );
}

describe('Ec2RouteTables with IPv6 routes (against moto)', () => {
  const port = () => new Ec2RouteTables(aws.ec2);

  it('describes IPv6 routes with their targets in ipv6Routes, and keeps them out of the IPv4 routes', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const tableId = fixture.routeTableIds[0]!;
    const vpcBlock = await vpcIpv6Block(aws.ec2, fixture.vpcId);
    await createIpv6RouteByHand(aws.ec2, tableId, SUBNET6, host!.networkInterfaceId);
    await createRouteByHand(aws.ec2, tableId, '10.244.7.0/24', host!.networkInterfaceId);

    const [table] = await port().describeRouteTables({ vpcId: fixture.vpcId, routeTableIds: [tableId] });

    expect(table?.ipv6Routes).toEqual(
      expect.arrayContaining([
        { destination: vpcBlock, otherTarget: 'local', state: 'active', origin: 'CreateRouteTable' },
        {
          destination: '::/0',
          otherTarget: fixture.internetGatewayId,
          state: 'active',
          origin: 'CreateRoute',
        },
        {
          destination: SUBNET6,
          networkInterfaceId: host!.networkInterfaceId,
          state: 'active',
          origin: 'CreateRoute',
        },
      ]),
    );
    expect(table?.ipv6Routes).toHaveLength(3);
    expect(table?.routes.some((r) => r.destination.includes(':'))).toBe(false);
    expect(table?.routes.map((r) => r.destination)).toContain('10.244.7.0/24');
  });

  it('gives every described table an ipv6Routes list, empty in an IPv4-only VPC', async () => {
    const vpc = await aws.ec2.send(new CreateVpcCommand({ CidrBlock: '10.9.0.0/16' }));
    const tables = await port().describeRouteTables({ vpcId: vpc.Vpc!.VpcId! });
    expect(tables).toHaveLength(1);
    expect(tables[0]?.ipv6Routes).toEqual([]);
    expect(tables[0]?.routes.map((r) => r.destination)).toEqual(['10.9.0.0/16']);
  });

  it('creates an IPv6 route to an ENI, and reports "exists" without changing a route already there', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [a, b] = await launchHosts(aws.ec2, fixture, 2);
    const tableId = fixture.routeTableIds[0]!;

    expect(await port().createRoute(tableId, SUBNET6, a!.networkInterfaceId)).toBe('created');
    expect(await port().createRoute(tableId, SUBNET6, b!.networkInterfaceId)).toBe('exists');
    expect(await routeTarget(aws.ec2, tableId, SUBNET6)).toBe(a!.networkInterfaceId);
  });

  it('writes the IPv6 route beside the IPv4 route of the same host, each in its own family', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const tableId = fixture.routeTableIds[0]!;

    await port().createRoute(tableId, '10.244.7.0/24', host!.networkInterfaceId);
    await port().createRoute(tableId, SUBNET6, host!.networkInterfaceId);

    const out = await aws.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [tableId] }));
    const toHost = (out.RouteTables?.[0]?.Routes ?? []).filter(
      (r) => r.NetworkInterfaceId === host!.networkInterfaceId,
    );
    expect(toHost.map((r) => [r.DestinationCidrBlock, r.DestinationIpv6CidrBlock])).toEqual(
      expect.arrayContaining([
        ['10.244.7.0/24', undefined],
        [undefined, SUBNET6],
      ]),
    );
    expect(toHost).toHaveLength(2);
  });

  it('re-points an IPv6 route to another ENI, and creates it when it vanished before the replace', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [a, b] = await launchHosts(aws.ec2, fixture, 2);
    const tableId = fixture.routeTableIds[0]!;
    await createIpv6RouteByHand(aws.ec2, tableId, SUBNET6, a!.networkInterfaceId);

    await port().replaceRoute(tableId, SUBNET6, b!.networkInterfaceId);
    expect(await routeTarget(aws.ec2, tableId, SUBNET6)).toBe(b!.networkInterfaceId);

    await port().replaceRoute(tableId, OTHER6, b!.networkInterfaceId);
    expect(await routeTarget(aws.ec2, tableId, OTHER6)).toBe(b!.networkInterfaceId);
  });

  it('deletes an IPv6 route, leaves the IPv4 route of the same host, and answers "absent" the second time', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const tableId = fixture.routeTableIds[0]!;
    await createIpv6RouteByHand(aws.ec2, tableId, SUBNET6, host!.networkInterfaceId);
    await createRouteByHand(aws.ec2, tableId, '10.244.7.0/24', host!.networkInterfaceId);
    const before = await ipv6RoutesOf(aws.ec2, tableId);

    expect(await port().deleteRoute(tableId, SUBNET6)).toBe('deleted');
    expect(await port().deleteRoute(tableId, SUBNET6)).toBe('absent');

    expect(await ipv6RoutesOf(aws.ec2, tableId)).toEqual(before.filter(([d]) => d !== SUBNET6));
    expect(await routeTarget(aws.ec2, tableId, '10.244.7.0/24')).toBe(host!.networkInterfaceId);
  });

  it('names the missing table on an IPv6 route too', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    await expect(
      port().createRoute('rtb-0123456789abcdef0', SUBNET6, host!.networkInterfaceId),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('counts only IPv6 routes when EC2 refuses an IPv6 route with RouteLimitExceeded (injected: moto has no quota)', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const [host] = await launchHosts(aws.ec2, fixture);
    const tableId = fixture.routeTableIds[0]!;
    await createIpv6RouteByHand(aws.ec2, tableId, OTHER6, host!.networkInterfaceId);
    const client = createEc2Client({ endpoint: aws.moto.endpoint, region: TEST_REGION, maxAttempts: 1 });
    injectEc2Errors(client, {
      CreateRoute: {
        code: 'RouteLimitExceeded',
        status: 400,
        message: 'The maximum number of routes has been reached.',
      },
    });
    try {
      const error = await new Ec2RouteTables(client)
        .createRoute(tableId, SUBNET6, host!.networkInterfaceId)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RouteLimitExceededError);
      // the VPC block's local route, ::/0 and OTHER6; not the table's four IPv4 routes
      expect(error).toMatchObject({ used: 3, limit: 3, routeTableId: tableId, status: 409 });
    } finally {
      client.destroy();
    }
  });
});

describe('Ec2Instances: the VPC IPv6 blocks (against moto)', () => {
  const port = () => new Ec2Instances(aws.ec2);

  it('lists the Amazon-provided IPv6 block of the VPC, and keeps it out of the IPv4 blocks', async () => {
    const fixture = await createNetworkFixture(aws.ec2, { tables: 1 });
    const block = await vpcIpv6Block(aws.ec2, fixture.vpcId);
    expect(block).toMatch(/::\/56$/);
    expect(await port().describeVpcIpv6Cidrs(fixture.vpcId)).toEqual([block]);
    expect(await port().describeVpcCidrs(fixture.vpcId)).toEqual(['10.0.0.0/16']);
  });

  it('lists a block associated later, and no longer lists it once disassociated', async () => {
    const vpc = await aws.ec2.send(new CreateVpcCommand({ CidrBlock: '10.9.0.0/16' }));
    const vpcId = vpc.Vpc!.VpcId!;
    const added = await aws.ec2.send(
      new AssociateVpcCidrBlockCommand({ VpcId: vpcId, AmazonProvidedIpv6CidrBlock: true }),
    );
    const association = added.Ipv6CidrBlockAssociation!;
    expect(await port().describeVpcIpv6Cidrs(vpcId)).toEqual([association.Ipv6CidrBlock]);

    await aws.ec2.send(new DisassociateVpcCidrBlockCommand({ AssociationId: association.AssociationId! }));
    expect(await port().describeVpcIpv6Cidrs(vpcId)).toEqual([]);
  });

  it('answers no IPv6 block for an IPv4-only VPC', async () => {
    const vpc = await aws.ec2.send(new CreateVpcCommand({ CidrBlock: '10.9.0.0/16' }));
    expect(await port().describeVpcIpv6Cidrs(vpc.Vpc!.VpcId!)).toEqual([]);
  });

  it('names the VPC that does not exist', async () => {
    await expect(port().describeVpcIpv6Cidrs('vpc-0123456789abcdef0')).rejects.toThrow(
      'VPC vpc-0123456789abcdef0 does not exist',
    );
    await expect(port().describeVpcIpv6Cidrs('vpc-0123456789abcdef0')).rejects.toBeInstanceOf(NotFoundError);
  });
});

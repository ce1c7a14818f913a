import { DescribeRouteTablesCommand, DescribeVpcsCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { launchInstances, seedVpc } from '../../scripts/lib/seed.js';
import { useMoto } from '../support/aws.js';

describe('the moto harness', () => {
  const aws = useMoto();

  it('seeds the VPC of the seed guide: subnet, internet gateway and its route table', async () => {
    const vpc = await seedVpc(aws.ec2);
    const out = await aws.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [vpc.routeTableId] }));
    const routes = out.RouteTables?.[0]?.Routes ?? [];
    expect(routes.map((r) => [r.DestinationCidrBlock, r.GatewayId])).toEqual(
      expect.arrayContaining([
        ['10.0.0.0/16', 'local'],
        ['0.0.0.0/0', vpc.internetGatewayId],
      ]),
    );
    const [host] = await launchInstances(aws.ec2, vpc.subnetId);
    expect(host?.privateIp).toMatch(/^10\.0\.0\.\d+$/);
    expect(host?.networkInterfaceId).toMatch(/^eni-/);
  });

  it('seeds a dual-stack VPC: an Amazon-provided IPv6 /56, its local route and ::/0 to the internet gateway', async () => {
    const vpc = await seedVpc(aws.ec2);
    const described = await aws.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpc.vpcId] }));
    const [block] = described.Vpcs?.[0]?.Ipv6CidrBlockAssociationSet ?? [];
    expect(block?.Ipv6Pool).toBe('Amazon');
    expect(block?.Ipv6CidrBlockState?.State).toBe('associated');
    expect(block?.Ipv6CidrBlock).toMatch(/^[0-9a-f:]+::\/56$/);
    expect(vpc.ipv6Cidr).toBe(block?.Ipv6CidrBlock);

    const out = await aws.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [vpc.routeTableId] }));
    const ipv6Routes = (out.RouteTables?.[0]?.Routes ?? []).filter((r) => r.DestinationIpv6CidrBlock);
    expect(ipv6Routes.map((r) => [r.DestinationIpv6CidrBlock, r.GatewayId])).toEqual(
      expect.arrayContaining([
        [vpc.ipv6Cidr, 'local'],
        ['::/0', vpc.internetGatewayId],
      ]),
    );
  });
});

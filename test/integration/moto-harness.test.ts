import { DescribeRouteTablesCommand } from '@aws-sdk/client-ec2';
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
});

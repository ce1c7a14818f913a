import {
  CreateNetworkInterfaceCommand,
  CreateRouteCommand,
  type CreateRouteCommandInput,
  DeleteRouteCommand,
  DescribeRouteTablesCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchInstances, seedVpc } from '../../scripts/lib/seed.js';
import { TEST_REGION, useMoto } from '../support/aws.js';

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

  // moto itself overwrites such a route silently (ENI targets, IPv6 destinations); the
  // launcher (scripts/lib/moto_ec2_fidelity.py) makes it refuse as EC2 does. A plain SDK
  // client, nothing of the project's in between: the answer is the engine's.
  describe('answers a CreateRoute to a destination the table already routes as EC2 does', () => {
    let raw: EC2Client;
    beforeAll(() => {
      raw = new EC2Client({ endpoint: aws.moto.endpoint, region: TEST_REGION, maxAttempts: 1 });
    });
    afterAll(() => raw.destroy());

    async function scene() {
      const vpc = await seedVpc(aws.ec2, { name: 'moto-fidelity' });
      const eni = async () =>
        (await raw.send(new CreateNetworkInterfaceCommand({ SubnetId: vpc.subnetId }))).NetworkInterface!
          .NetworkInterfaceId!;
      return { vpc, first: await eni(), second: await eni() };
    }

    async function targetsOf(routeTableId: string) {
      const out = await raw.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }));
      return (out.RouteTables?.[0]?.Routes ?? []).map((r) => [
        r.DestinationCidrBlock ?? r.DestinationIpv6CidrBlock,
        r.NetworkInterfaceId ?? r.GatewayId,
      ]);
    }

    const refusal = (destination: string) => ({
      name: 'RouteAlreadyExists',
      message: `The route identified by ${destination} already exists.`,
      $metadata: expect.objectContaining({ httpStatusCode: 400 }),
    });

    it('refuses a second IPv4 route to a network interface and keeps the first target', async () => {
      const { vpc, first, second } = await scene();
      const route = (NetworkInterfaceId: string): CreateRouteCommandInput => ({
        RouteTableId: vpc.routeTableId,
        DestinationCidrBlock: '10.244.7.0/24',
        NetworkInterfaceId,
      });
      await raw.send(new CreateRouteCommand(route(first)));

      await expect(raw.send(new CreateRouteCommand(route(second)))).rejects.toMatchObject(
        refusal('10.244.7.0/24'),
      );
      await expect(raw.send(new CreateRouteCommand(route(first)))).rejects.toMatchObject(
        refusal('10.244.7.0/24'),
      );
      expect(await targetsOf(vpc.routeTableId)).toContainEqual(['10.244.7.0/24', first]);
      expect((await targetsOf(vpc.routeTableId)).filter(([d]) => d === '10.244.7.0/24')).toHaveLength(1);
    });

    it('refuses a second IPv6 route (DestinationIpv6CidrBlock) and keeps the first target', async () => {
      const { vpc, first, second } = await scene();
      const route = (NetworkInterfaceId: string): CreateRouteCommandInput => ({
        RouteTableId: vpc.routeTableId,
        DestinationIpv6CidrBlock: 'fd00:10:244:7::/64',
        NetworkInterfaceId,
      });
      await raw.send(new CreateRouteCommand(route(first)));

      await expect(raw.send(new CreateRouteCommand(route(second)))).rejects.toMatchObject(
        refusal('fd00:10:244:7::/64'),
      );
      expect(await targetsOf(vpc.routeTableId)).toContainEqual(['fd00:10:244:7::/64', first]);
    });

    it('refuses a route over a gateway route with the same answer', async () => {
      const { vpc, first } = await scene();
      await expect(
        raw.send(
          new CreateRouteCommand({
            RouteTableId: vpc.routeTableId,
            DestinationCidrBlock: '0.0.0.0/0',
            NetworkInterfaceId: first,
          }),
        ),
      ).rejects.toMatchObject(refusal('0.0.0.0/0'));
      expect(await targetsOf(vpc.routeTableId)).toContainEqual(['0.0.0.0/0', vpc.internetGatewayId]);
    });

    it('creates the route again once the first one is deleted', async () => {
      const { vpc, first, second } = await scene();
      const destination = { RouteTableId: vpc.routeTableId, DestinationCidrBlock: '10.244.8.0/24' };
      await raw.send(new CreateRouteCommand({ ...destination, NetworkInterfaceId: first }));
      await raw.send(new DeleteRouteCommand(destination));

      await raw.send(new CreateRouteCommand({ ...destination, NetworkInterfaceId: second }));
      expect(await targetsOf(vpc.routeTableId)).toContainEqual(['10.244.8.0/24', second]);
    });

    it('lets exactly one of many simultaneous CreateRoutes to one destination through', async () => {
      const { vpc, first, second } = await scene();
      const racers = Array.from({ length: 8 }, (_, i) =>
        raw.send(
          new CreateRouteCommand({
            RouteTableId: vpc.routeTableId,
            DestinationCidrBlock: '10.244.9.0/24',
            NetworkInterfaceId: i % 2 === 0 ? first : second,
          }),
        ),
      );
      const outcomes = await Promise.allSettled(racers);

      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const o of outcomes.filter((o) => o.status === 'rejected')) {
        expect((o as PromiseRejectedResult).reason).toMatchObject(refusal('10.244.9.0/24'));
      }
    });
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

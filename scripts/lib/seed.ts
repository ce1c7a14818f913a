/**
 * What the seed guide's VPC wizard builds, in moto: a dual-stack VPC 10.0.0.0/16 tagged
 * Name=vpc-lease-local with an Amazon-provided IPv6 /56, a public subnet, an internet
 * gateway and its route table (0.0.0.0/0 and ::/0 -> igw). Also launches "hosts" into it.
 */

import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  AssociateRouteTableCommand,
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeVpcsCommand,
  type EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { tableDefinition } from '../../shared/adapters/dynamodb-schema.js';

export interface SeededVpc {
  vpcId: string;
  subnetId: string;
  internetGatewayId: string;
  routeTableId: string;
  /** the VPC's Amazon-provided IPv6 block (set by seedVpc; an IPv6Network must stay clear of it) */
  ipv6Cidr?: string;
}

export const LOCAL_VPC_NAME = 'vpc-lease-local';

export async function findLocalVpc(ec2: EC2Client, name = LOCAL_VPC_NAME): Promise<string | undefined> {
  const out = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'tag:Name', Values: [name] }] }));
  return out.Vpcs?.[0]?.VpcId;
}

export async function seedVpc(
  ec2: EC2Client,
  options: { name?: string; cidr?: string; subnetCidr?: string } = {},
): Promise<SeededVpc> {
  const name = options.name ?? LOCAL_VPC_NAME;
  const vpc = await ec2.send(
    new CreateVpcCommand({
      CidrBlock: options.cidr ?? '10.0.0.0/16',
      // as the wizard's "Amazon-provided IPv6 CIDR block": every route table gets its local IPv6 route
      AmazonProvidedIpv6CidrBlock: true,
      TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'Name', Value: name }] }],
    }),
  );
  const vpcId = vpc.Vpc!.VpcId!;
  const ipv6Cidr = vpc.Vpc!.Ipv6CidrBlockAssociationSet?.[0]?.Ipv6CidrBlock;
  const subnet = await ec2.send(
    new CreateSubnetCommand({
      VpcId: vpcId,
      CidrBlock: options.subnetCidr ?? '10.0.0.0/24',
      TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'Name', Value: `${name}-public` }] }],
    }),
  );
  const subnetId = subnet.Subnet!.SubnetId!;
  const igw = await ec2.send(new CreateInternetGatewayCommand({}));
  const internetGatewayId = igw.InternetGateway!.InternetGatewayId!;
  await ec2.send(new AttachInternetGatewayCommand({ VpcId: vpcId, InternetGatewayId: internetGatewayId }));
  const rtb = await ec2.send(
    new CreateRouteTableCommand({
      VpcId: vpcId,
      TagSpecifications: [{ ResourceType: 'route-table', Tags: [{ Key: 'Name', Value: `${name}-public` }] }],
    }),
  );
  const routeTableId = rtb.RouteTable!.RouteTableId!;
  await ec2.send(
    new CreateRouteCommand({
      RouteTableId: routeTableId,
      DestinationCidrBlock: '0.0.0.0/0',
      GatewayId: internetGatewayId,
    }),
  );
  await ec2.send(
    new CreateRouteCommand({
      RouteTableId: routeTableId,
      DestinationIpv6CidrBlock: '::/0',
      GatewayId: internetGatewayId,
    }),
  );
  await ec2.send(new AssociateRouteTableCommand({ RouteTableId: routeTableId, SubnetId: subnetId }));
  return { vpcId, subnetId, internetGatewayId, routeTableId, ...(ipv6Cidr ? { ipv6Cidr } : {}) };
}

export interface LaunchedInstance {
  instanceId: string;
  privateIp: string;
  networkInterfaceId: string;
}

/** Launches `count` instances in the subnet (moto gives each one ENI with a private IP). */
export async function launchInstances(
  ec2: EC2Client,
  subnetId: string,
  count = 1,
): Promise<LaunchedInstance[]> {
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.micro',
      MinCount: count,
      MaxCount: count,
      SubnetId: subnetId,
    }),
  );
  return (out.Instances ?? []).map((i) => ({
    instanceId: i.InstanceId!,
    privateIp: i.PrivateIpAddress!,
    networkInterfaceId: i.NetworkInterfaces![0]!.NetworkInterfaceId!,
  }));
}

export async function ensureTable(dynamo: DynamoDBDocumentClient, tableName: string): Promise<void> {
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceNotFoundException') throw error;
    await dynamo.send(new CreateTableCommand(tableDefinition(tableName)));
  }
}

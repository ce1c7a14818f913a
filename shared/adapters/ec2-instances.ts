/**
 * InstancePort over EC2: what the control plane needs to know about lease holders
 * (state, VPC, network interfaces and their addresses) and the one attribute it sets.
 */
import {
  DescribeInstancesCommand,
  DescribeVpcsCommand,
  type EC2Client,
  type Filter,
  type Instance,
  ModifyNetworkInterfaceAttributeCommand,
} from '@aws-sdk/client-ec2';
import { NotFoundError } from '../errors.js';
import type { InstanceInfo, InstancePort, InstanceState, NetworkInterface } from '../ports.js';
import { errorName, toDomainError } from './aws-errors.js';

/** EC2 accepts at most 200 values per filter. */
const IDS_PER_FILTER = 200;
/** DescribeInstances accepts 5-1000. */
const PAGE_SIZE = 1000;

const STATES: ReadonlySet<string> = new Set<InstanceState>([
  'pending',
  'running',
  'stopping',
  'stopped',
  'shutting-down',
  'terminated',
]);

export class Ec2Instances implements InstancePort {
  constructor(private readonly ec2: EC2Client) {}

  /**
   * A filter on `instance-id` instead of InstanceIds: an unknown (or long-gone) id is
   * simply left out, where InstanceIds would fail the whole call with InvalidInstanceID.NotFound.
   */
  async describeInstances(instanceIds: readonly string[]): Promise<InstanceInfo[]> {
    const unique = [...new Set(instanceIds)];
    const found = new Map<string, InstanceInfo>();
    for (let start = 0; start < unique.length; start += IDS_PER_FILTER) {
      const chunk = unique.slice(start, start + IDS_PER_FILTER);
      for (const info of await this.describePages([{ Name: 'instance-id', Values: chunk }]))
        found.set(info.instanceId, info);
    }
    return unique.flatMap((id) => found.get(id) ?? []);
  }

  /**
   * `private-ip-address` matches an instance's primary private IP, the address flannel's
   * aws-vpc backend published as PublicIP (the IP of its default-route interface). EC2 also
   * has `network-interface.addresses.private-ip-address` for secondary addresses, which
   * moto does not implement; a host registered under a secondary address is reported
   * as not found rather than guessed.
   */
  async findByPrivateIps(vpcId: string, privateIps: readonly string[]): Promise<InstanceInfo[]> {
    const unique = [...new Set(privateIps)];
    const found = new Map<string, InstanceInfo>();
    for (let start = 0; start < unique.length; start += IDS_PER_FILTER) {
      const chunk = unique.slice(start, start + IDS_PER_FILTER);
      const filters: Filter[] = [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'private-ip-address', Values: chunk },
      ];
      for (const info of await this.describePages(filters)) found.set(info.instanceId, info);
    }
    return [...found.values()];
  }

  private async describePages(filters: Filter[]): Promise<InstanceInfo[]> {
    const found: InstanceInfo[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.ec2
        .send(new DescribeInstancesCommand({ Filters: filters, MaxResults: PAGE_SIZE, NextToken: nextToken }))
        .catch((error: unknown) => {
          throw toDomainError('EC2', error);
        });
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const info = toInstanceInfo(instance);
          if (info) found.push(info);
        }
      }
      nextToken = page.NextToken || undefined;
    } while (nextToken);
    return found;
  }

  async disableSourceDestCheck(networkInterfaceId: string): Promise<void> {
    try {
      await this.ec2.send(
        new ModifyNetworkInterfaceAttributeCommand({
          NetworkInterfaceId: networkInterfaceId,
          SourceDestCheck: { Value: false },
        }),
      );
    } catch (error) {
      if (errorName(error) === 'InvalidNetworkInterfaceID.NotFound') {
        throw new NotFoundError(
          `Network interface ${networkInterfaceId} does not exist (the instance may be gone).`,
          { cause: error, details: { networkInterfaceId } },
        );
      }
      throw toDomainError('EC2', error);
    }
  }

  async describeVpcCidrs(vpcId: string): Promise<string[]> {
    try {
      const out = await this.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }));
      const vpc = out.Vpcs?.[0];
      if (!vpc) throw vpcNotFound(vpcId);
      const cidrs = (vpc.CidrBlockAssociationSet ?? [])
        .filter((a) => a.CidrBlockState?.State === 'associated' && a.CidrBlock)
        .map((a) => a.CidrBlock!);
      // Older responses (and some emulators) carry only the primary block.
      if (cidrs.length === 0 && vpc.CidrBlock) cidrs.push(vpc.CidrBlock);
      return [...new Set(cidrs)];
    } catch (error) {
      if (errorName(error) === 'InvalidVpcID.NotFound') throw vpcNotFound(vpcId, error);
      throw toDomainError('EC2', error);
    }
  }

  /**
   * Blocks still being associated count too: a block on its way in must not be leased out
   * as pod addresses. Disassociating and failed ones are left out.
   */
  async describeVpcIpv6Cidrs(vpcId: string): Promise<string[]> {
    try {
      const out = await this.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }));
      const vpc = out.Vpcs?.[0];
      if (!vpc) throw vpcNotFound(vpcId);
      const cidrs = (vpc.Ipv6CidrBlockAssociationSet ?? [])
        .filter((a) => IPV6_BLOCK_STATES.has(a.Ipv6CidrBlockState?.State ?? '') && a.Ipv6CidrBlock)
        .map((a) => a.Ipv6CidrBlock!);
      return [...new Set(cidrs)];
    } catch (error) {
      if (errorName(error) === 'InvalidVpcID.NotFound') throw vpcNotFound(vpcId, error);
      throw toDomainError('EC2', error);
    }
  }
}

const IPV6_BLOCK_STATES: ReadonlySet<string> = new Set(['associated', 'associating']);

function toInstanceInfo(instance: Instance): InstanceInfo | undefined {
  const instanceId = instance.InstanceId;
  const state = instance.State?.Name;
  if (!instanceId || !state || !STATES.has(state)) return undefined;
  const networkInterfaces: NetworkInterface[] = (instance.NetworkInterfaces ?? []).flatMap((eni) => {
    if (!eni.NetworkInterfaceId) return [];
    const ips = (eni.PrivateIpAddresses ?? []).flatMap((a) =>
      a.PrivateIpAddress ? [a.PrivateIpAddress] : [],
    );
    if (ips.length === 0 && eni.PrivateIpAddress) ips.push(eni.PrivateIpAddress);
    return [
      {
        networkInterfaceId: eni.NetworkInterfaceId,
        privateIps: ips,
        // EC2 turns the check on by default; assume on when not reported, so it gets disabled.
        sourceDestCheck: eni.SourceDestCheck ?? true,
      },
    ];
  });
  return { instanceId, state: state as InstanceState, vpcId: instance.VpcId, networkInterfaces };
}

function vpcNotFound(vpcId: string, cause?: unknown): NotFoundError {
  return new NotFoundError(`VPC ${vpcId} does not exist (check the deployment's VPC id).`, {
    cause,
    details: { vpcId },
  });
}

/**
 * EC2 scenes for the route tests, built in moto: a VPC (the seed guide's, via
 * scripts/lib/seed.ts) with several route tables, each holding the foreign routes a real
 * VPC has — the local route, 0.0.0.0/0 -> internet gateway, 192.168.0.0/16 -> a VPC
 * peering connection, 172.16.0.0/12 -> an appliance's ENI — and hosts launched into it.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateNetworkInterfaceCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateVpcCommand,
  CreateVpcPeeringConnectionCommand,
  DeleteRouteCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  type EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  ReplaceRouteCommand,
  type Route,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { HttpResponse } from '@smithy/protocol-http';
import { type LaunchedInstance, launchInstances, seedVpc } from '../../scripts/lib/seed.js';
import { parseCidr } from '../../shared/cidr.js';
import type { Lease, LeaseRoute } from '../../shared/lease.js';
import { type NetworkConfig, parseNetworkConfig } from '../../shared/network-config.js';
import { type MotoContext, useMoto } from './aws.js';

export const NETWORK = '10.244.0.0/16';
export const PEERED_CIDR = '192.168.0.0/16';
export const APPLIANCE_CIDR = '172.16.0.0/12';

export interface NetworkFixture {
  readonly vpcId: string;
  readonly subnetId: string;
  readonly internetGatewayId: string;
  readonly peeringConnectionId: string;
  /** an ENI that is no lease holder's: the target of a foreign route */
  readonly applianceEniId: string;
  /** the tables the fixture made, each with the foreign routes above (the VPC's main table is extra) */
  readonly routeTableIds: readonly string[];
}

/** A VPC with `tables` route tables, each holding the foreign routes of a real VPC. */
export async function createNetworkFixture(
  ec2: EC2Client,
  options: { tables?: number } = {},
): Promise<NetworkFixture> {
  const seeded = await seedVpc(ec2, { name: `vpc-lease-test-${randomUUID().slice(0, 8)}` });
  const peer = await ec2.send(new CreateVpcCommand({ CidrBlock: PEERED_CIDR }));
  const pcx = await ec2.send(
    new CreateVpcPeeringConnectionCommand({ VpcId: seeded.vpcId, PeerVpcId: peer.Vpc!.VpcId! }),
  );
  const peeringConnectionId = pcx.VpcPeeringConnection!.VpcPeeringConnectionId!;
  const appliance = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: seeded.subnetId }));
  const applianceEniId = appliance.NetworkInterface!.NetworkInterfaceId!;

  const routeTableIds = [seeded.routeTableId];
  for (let i = 1; i < (options.tables ?? 2); i++) {
    const table = await ec2.send(new CreateRouteTableCommand({ VpcId: seeded.vpcId }));
    const id = table.RouteTable!.RouteTableId!;
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: id,
        DestinationCidrBlock: '0.0.0.0/0',
        GatewayId: seeded.internetGatewayId,
      }),
    );
    routeTableIds.push(id);
  }
  for (const id of routeTableIds) {
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: id,
        DestinationCidrBlock: PEERED_CIDR,
        VpcPeeringConnectionId: peeringConnectionId,
      }),
    );
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: id,
        DestinationCidrBlock: APPLIANCE_CIDR,
        NetworkInterfaceId: applianceEniId,
      }),
    );
  }
  return {
    vpcId: seeded.vpcId,
    subnetId: seeded.subnetId,
    internetGatewayId: seeded.internetGatewayId,
    peeringConnectionId,
    applianceEniId,
    routeTableIds,
  };
}

export function networkConfig(
  options: { routeTableIds?: readonly string[]; routeLimit?: number; network?: string } = {},
): NetworkConfig {
  return parseNetworkConfig({
    Network: options.network ?? NETWORK,
    Backend: {
      Type: 'aws-vpc',
      ...(options.routeTableIds ? { RouteTableID: [...options.routeTableIds] } : {}),
      ...(options.routeLimit ? { RouteLimit: options.routeLimit } : {}),
    },
  });
}

export const launchHosts = (
  ec2: EC2Client,
  fixture: NetworkFixture,
  count = 1,
): Promise<LaunchedInstance[]> => launchInstances(ec2, fixture.subnetId, count);

export async function terminate(ec2: EC2Client, ...instanceIds: string[]): Promise<void> {
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: instanceIds }));
}

/** A lease for a launched host, as the lease store would hold it. */
export function leaseFor(
  host: LaunchedInstance,
  subnet: string,
  options: { expiresAt: Date; routes?: readonly LeaseRoute[] },
): Lease {
  return {
    subnet: parseCidr(subnet),
    instanceId: host.instanceId,
    privateIp: host.privateIp,
    networkInterfaceId: host.networkInterfaceId,
    expiresAt: options.expiresAt,
    routes: options.routes ?? [],
  };
}

// ---------------------------------------------------------------- reading and tampering, as EC2 sees it

/** The table's routes straight from EC2, as [destination, target] pairs. */
export async function routesOf(ec2: EC2Client, routeTableId: string): Promise<[string, string][]> {
  const out = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }));
  return (out.RouteTables?.[0]?.Routes ?? []).map((r) => [
    r.DestinationCidrBlock ?? r.DestinationIpv6CidrBlock ?? r.DestinationPrefixListId ?? '?',
    targetOf(r),
  ]);
}

/** The target of the route to `destination`, or undefined when there is none. */
export async function routeTarget(
  ec2: EC2Client,
  routeTableId: string,
  destination: string,
): Promise<string | undefined> {
  return new Map(await routesOf(ec2, routeTableId)).get(destination);
}

/** Routes inside the overlay network, sorted: what vpc-lease manages. */
export async function overlayRoutes(ec2: EC2Client, routeTableId: string): Promise<[string, string][]> {
  const network = parseCidr(NETWORK);
  return (await routesOf(ec2, routeTableId))
    .filter(([destination]) => {
      try {
        const cidr = parseCidr(destination);
        return cidr.base >= network.base && cidr.base < network.base + (1n << 16n);
      } catch {
        return false;
      }
    })
    .sort(([a], [b]) => a.localeCompare(b));
}

/** The routes outside the overlay network, sorted: nobody's business but their owner's. */
export async function foreignRoutes(ec2: EC2Client, routeTableId: string): Promise<[string, string][]> {
  const overlay = new Set((await overlayRoutes(ec2, routeTableId)).map(([d]) => d));
  return (await routesOf(ec2, routeTableId))
    .filter(([destination]) => !overlay.has(destination))
    .sort(([a], [b]) => a.localeCompare(b));
}

export async function createRouteByHand(
  ec2: EC2Client,
  routeTableId: string,
  destination: string,
  networkInterfaceId: string,
): Promise<void> {
  await ec2.send(
    new CreateRouteCommand({
      RouteTableId: routeTableId,
      DestinationCidrBlock: destination,
      NetworkInterfaceId: networkInterfaceId,
    }),
  );
}

export async function replaceRouteByHand(
  ec2: EC2Client,
  routeTableId: string,
  destination: string,
  networkInterfaceId: string,
): Promise<void> {
  await ec2.send(
    new ReplaceRouteCommand({
      RouteTableId: routeTableId,
      DestinationCidrBlock: destination,
      NetworkInterfaceId: networkInterfaceId,
    }),
  );
}

export async function deleteRouteByHand(
  ec2: EC2Client,
  routeTableId: string,
  destination: string,
): Promise<void> {
  await ec2.send(new DeleteRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: destination }));
}

export async function sourceDestCheckOf(
  ec2: EC2Client,
  networkInterfaceId: string,
): Promise<boolean | undefined> {
  const out = await ec2.send(
    new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [networkInterfaceId] }),
  );
  return out.NetworkInterfaces?.[0]?.SourceDestCheck;
}

export async function setSourceDestCheck(ec2: EC2Client, networkInterfaceId: string, value: boolean) {
  await ec2.send(
    new ModifyNetworkInterfaceAttributeCommand({
      NetworkInterfaceId: networkInterfaceId,
      SourceDestCheck: { Value: value },
    }),
  );
}

function targetOf(route: Route): string {
  return (
    route.NetworkInterfaceId ??
    route.InstanceId ??
    route.GatewayId ??
    route.VpcPeeringConnectionId ??
    route.NatGatewayId ??
    route.TransitGatewayId ??
    '?'
  );
}

// ---------------------------------------------------------------- injected faults

/**
 * useMoto() for the route suites. The moto it starts answers CreateRoute as EC2 does
 * (RouteAlreadyExists for a taken destination): scripts/lib/moto_ec2_fidelity.py, inside
 * the moto process, so every client sees the same engine.
 */
export function useMotoEc2(): MotoContext {
  return useMoto();
}

function ec2ErrorResponse(status: number, code: string, message: string): HttpResponse {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error></Errors>` +
    '<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>';
  return new HttpResponse({
    statusCode: status,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body: Readable.from([Buffer.from(body)]),
  });
}

/**
 * Makes `client` answer the named EC2 commands with an error response of EC2's own form
 * (HTTP status + <Response><Errors>... XML), injected below the SDK's deserializer: the
 * SDK parses and retries it as it would a real one, and the call counter sees each attempt.
 * Other commands go to moto. For throttling/5xx only; what EC2 *does* is always moto's.
 */
export function injectEc2Errors(
  client: EC2Client,
  faults: Partial<Record<string, { code: string; status: number; message?: string }>>,
): { readonly injected: Map<string, number> } {
  const injected = new Map<string, number>();
  client.middlewareStack.add(
    (next: any, context: any) => async (args: any) => {
      const command = String(context.commandName ?? '').replace(/Command$/, '');
      const fault = faults[command];
      if (!fault) return next(args);
      injected.set(command, (injected.get(command) ?? 0) + 1);
      return {
        response: ec2ErrorResponse(fault.status, fault.code, fault.message ?? 'Request limit exceeded.'),
      };
    },
    { step: 'deserialize', priority: 'low', name: 'vpcLeaseInjectedFault', override: true },
  );
  return { injected };
}

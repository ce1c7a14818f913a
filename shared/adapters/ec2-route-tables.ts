/**
 * RouteTablePort over EC2. Translates route tables into RouteEntry values and EC2's
 * error codes into outcomes ('exists', 'absent') or domain errors. No decisions here:
 * which route to touch is the job of route-planner.ts, route-writer.ts and reconciler.ts.
 *
 * EC2 error codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 */
import {
  CreateRouteCommand,
  DeleteRouteCommand,
  DescribeRouteTablesCommand,
  type EC2Client,
  type RouteTable as Ec2RouteTable,
  type Filter,
  ReplaceRouteCommand,
  type Route,
} from '@aws-sdk/client-ec2';
import { NotFoundError, RouteLimitExceededError, RouteTableGoneError, ValidationError } from '../errors.js';
import { DEFAULT_ROUTE_LIMIT } from '../network-config.js';
import type { CreateRouteOutcome, RouteEntry, RouteTable, RouteTablePort } from '../ports.js';
import { errorMessage, errorName, toDomainError } from './aws-errors.js';

/** DescribeRouteTables accepts 5-100. */
const PAGE_SIZE = 100;

export class Ec2RouteTables implements RouteTablePort {
  constructor(private readonly ec2: EC2Client) {}

  /**
   * Filters rather than RouteTableIds, so that every table comes from one paginated call
   * and a table of another VPC is simply absent; absent tables are then reported by name.
   */
  async describeRouteTables(scope: {
    vpcId: string;
    routeTableIds?: readonly string[];
    existingOnly?: boolean;
  }): Promise<RouteTable[]> {
    const { vpcId, routeTableIds } = scope;
    if (routeTableIds && routeTableIds.length === 0) return [];
    const filters: Filter[] = [{ Name: 'vpc-id', Values: [vpcId] }];
    if (routeTableIds) filters.push({ Name: 'route-table-id', Values: [...routeTableIds] });

    const tables: RouteTable[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.ec2
        .send(
          new DescribeRouteTablesCommand({ Filters: filters, MaxResults: PAGE_SIZE, NextToken: nextToken }),
        )
        .catch((error: unknown) => {
          throw mapRouteError(error, {});
        });
      for (const table of page.RouteTables ?? []) tables.push(toRouteTable(table, vpcId));
      nextToken = page.NextToken || undefined;
    } while (nextToken);

    if (routeTableIds) {
      const found = new Set(tables.map((t) => t.routeTableId));
      const missing = routeTableIds.filter((id) => !found.has(id));
      if (missing.length > 0 && !scope.existingOnly) {
        throw new ValidationError(
          `Route table${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist in VPC ${vpcId}. ` +
            'Fix Backend.RouteTableID in the network config (or leave it out to use every route table of the VPC).',
          { details: { vpcId, routeTableIds: missing } },
        );
      }
      // Same order as asked: callers zip states with the ids they passed.
      const order = new Map(routeTableIds.map((id, i) => [id, i]));
      tables.sort((a, b) => (order.get(a.routeTableId) ?? 0) - (order.get(b.routeTableId) ?? 0));
    }
    return tables;
  }

  async createRoute(
    routeTableId: string,
    destination: string,
    networkInterfaceId: string,
  ): Promise<CreateRouteOutcome> {
    try {
      await this.ec2.send(
        new CreateRouteCommand({
          RouteTableId: routeTableId,
          ...destinationOf(destination),
          NetworkInterfaceId: networkInterfaceId,
        }),
      );
      return 'created';
    } catch (error) {
      if (errorName(error) === 'RouteAlreadyExists') return 'exists';
      if (errorName(error) === 'RouteLimitExceeded')
        throw await this.routeLimitError(routeTableId, isIpv6Destination(destination), error);
      throw mapRouteError(error, { routeTableId, destination, networkInterfaceId });
    }
  }

  /**
   * Points the route to the ENI. Should the route have vanished since the caller saw it
   * (deleted by hand between a CreateRoute that said 'exists' and this call), EC2 answers
   * InvalidParameterValue ("Use CreateRoute instead") and we do just that: the caller
   * wants the destination to reach the ENI either way.
   */
  async replaceRoute(routeTableId: string, destination: string, networkInterfaceId: string): Promise<void> {
    try {
      await this.ec2.send(
        new ReplaceRouteCommand({
          RouteTableId: routeTableId,
          ...destinationOf(destination),
          NetworkInterfaceId: networkInterfaceId,
        }),
      );
    } catch (error) {
      if (isMissingRoute(error)) {
        await this.createRoute(routeTableId, destination, networkInterfaceId);
        return;
      }
      throw mapRouteError(error, { routeTableId, destination, networkInterfaceId });
    }
  }

  async deleteRoute(routeTableId: string, destination: string): Promise<'deleted' | 'absent'> {
    try {
      await this.ec2.send(
        new DeleteRouteCommand({ RouteTableId: routeTableId, ...destinationOf(destination) }),
      );
      return 'deleted';
    } catch (error) {
      if (errorName(error) === 'InvalidRoute.NotFound') return 'absent';
      throw mapRouteError(error, { routeTableId, destination });
    }
  }

  /**
   * EC2 refused a route because the table is at its quota ("Routes per route table").
   * EC2 does not say the quota, but it is the number of routes the table holds right
   * now, so one Describe of that table (only on this rare path, which ends the grant)
   * makes the error say used/limit truthfully. IPv4 and IPv6 routes have separate quotas:
   * only routes of the refused destination's family are counted.
   */
  private async routeLimitError(
    routeTableId: string,
    ipv6: boolean,
    cause: unknown,
  ): Promise<RouteLimitExceededError> {
    let used = DEFAULT_ROUTE_LIMIT;
    try {
      const out = await this.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }));
      const routes = out.RouteTables?.[0]?.Routes ?? [];
      used = routes.filter(
        (r) =>
          (ipv6 ? r.DestinationIpv6CidrBlock : r.DestinationCidrBlock) &&
          r.Origin !== 'EnableVgwRoutePropagation',
      ).length;
    } catch {
      // keep the default: the error below is what matters
    }
    return new RouteLimitExceededError(
      { used, limit: used, routeTableId, ...(ipv6 ? { family: 6 as const } : {}) },
      { cause },
    );
  }
}

function toRouteTable(table: Ec2RouteTable, vpcId: string): RouteTable {
  const routes: RouteEntry[] = [];
  const ipv6Routes: RouteEntry[] = [];
  for (const route of table.Routes ?? []) {
    if (route.DestinationIpv6CidrBlock) {
      ipv6Routes.push(toRouteEntry(route, route.DestinationIpv6CidrBlock));
      continue;
    }
    const destination = route.DestinationCidrBlock ?? route.DestinationPrefixListId;
    if (destination) routes.push(toRouteEntry(route, destination));
  }
  return { routeTableId: table.RouteTableId ?? '', vpcId: table.VpcId ?? vpcId, routes, ipv6Routes };
}

/**
 * IPv4 and IPv6 routes land in separate lists (see RouteTable): AWS counts each family
 * against its own quota. Prefix-list routes are kept in the IPv4 list, with the prefix
 * list id as destination, so they count as foreign routes (never parsed as a subnet,
 * never touched).
 */
function toRouteEntry(route: Route, destination: string): RouteEntry {
  const otherTarget =
    route.GatewayId ??
    route.NatGatewayId ??
    route.TransitGatewayId ??
    route.VpcPeeringConnectionId ??
    route.EgressOnlyInternetGatewayId ??
    route.CarrierGatewayId ??
    route.LocalGatewayId ??
    route.CoreNetworkArn ??
    undefined;
  return {
    destination,
    ...(route.NetworkInterfaceId ? { networkInterfaceId: route.NetworkInterfaceId } : {}),
    ...(route.InstanceId ? { instanceId: route.InstanceId } : {}),
    ...(otherTarget ? { otherTarget } : {}),
    state: route.State === 'blackhole' ? 'blackhole' : 'active',
    origin: route.Origin ?? 'CreateRoute',
  };
}

/** An IPv6 CIDR has colons, an IPv4 one never does. */
const isIpv6Destination = (destination: string): boolean => destination.includes(':');

/** The request field EC2 wants for the destination's family. */
function destinationOf(
  destination: string,
): { DestinationCidrBlock: string } | { DestinationIpv6CidrBlock: string } {
  return isIpv6Destination(destination)
    ? { DestinationIpv6CidrBlock: destination }
    : { DestinationCidrBlock: destination };
}

/** ReplaceRoute's answer when there is no route to the destination (EC2 says so with InvalidParameterValue). */
function isMissingRoute(error: unknown): boolean {
  const name = errorName(error);
  return (
    name === 'InvalidRoute.NotFound' ||
    (name === 'InvalidParameterValue' && /no route defined/i.test(errorMessage(error)))
  );
}

/** EC2's 4xx codes for the things a route names, as errors a person can act on. */
function mapRouteError(
  error: unknown,
  context: { routeTableId?: string; destination?: string; networkInterfaceId?: string },
): Error {
  const name = errorName(error);
  const details = { ...context, awsError: name };
  switch (name) {
    case 'InvalidRouteTableID.NotFound':
    case 'InvalidRouteTableId.Malformed':
      return new RouteTableGoneError(context.routeTableId, { cause: error, details });
    case 'InvalidNetworkInterfaceID.NotFound':
    case 'InvalidNetworkInterfaceId.Malformed':
      return new NotFoundError(
        `Network interface ${context.networkInterfaceId ?? '(unknown)'} does not exist (the instance may be gone).`,
        { cause: error, details },
      );
    case 'InvalidRoute.NotFound':
      return new NotFoundError(
        `Route table ${context.routeTableId} has no route to ${context.destination}.`,
        { cause: error, details },
      );
    default:
      return toDomainError('EC2', error);
  }
}

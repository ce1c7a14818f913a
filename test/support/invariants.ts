/**
 * DESIGN.md's lease invariants, checked against the real state: every item of the lease
 * table (one consistent Scan) and every route table of the VPC (DescribeRouteTables),
 * read with a client that has no fault injection. Independent of the code under test:
 * it reads raw items and EC2's own route shapes, and decides ownership itself.
 *
 *   1. no subnet is held by two live leases, and the two items of a live lease agree
 *      (SUBNET#, INSTANCE#: a live INSTANCE item names a live lease that names it back);
 *   2. an instance holds at most one live lease;
 *   3. live leases per table in scope <= RouteLimit - foreign routes of that table; the
 *      capacity ledger (CAPACITY) counts exactly the lease items, live and expired (each
 *      holds a route until reclaimed), and admits no more than RouteLimit allows;
 *   4. every route vpc-lease does not own is exactly as it was (compared with a snapshot
 *      taken before the run, and again after each foreign route a test writes), in every
 *      table of the VPC, in scope or not; ownership as DESIGN.md defines it (isOwned);
 *   5. no live lease's subnet is covered or overlapped by a foreign route of a table in scope
 *      that was there before the lease's items were written (checked by the callers that know
 *      when each was written: interleavings.test.ts's grant answers).
 *
 * Once the state has settled (a fault-free reconcile ran), also: every route inside
 * Network with an ENI/instance target is a live lease's route to its holder's ENI; every
 * live lease has its route, active, in every table in scope, with its states stored as
 * active and its ENI's source/destination check off; no live lease is held by a dead
 * instance; each table holds at most RouteLimit routes; and the ledger's capacity is the one
 * the tables leave (RouteLimit minus the foreign routes of the fullest table).
 */
import {
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  type EC2Client,
  type Route,
} from '@aws-sdk/client-ec2';
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { type Cidr, formatCidr, overlaps, parseCidr } from '../../shared/cidr.js';
import { isLeasable, type NetworkConfig } from '../../shared/network-config.js';

export interface InvariantScope {
  /** the lease table, read raw */
  readonly store: { readonly client: DynamoDBDocumentClient; readonly tableName: string };
  /** a client without injected faults */
  readonly ec2: EC2Client;
  readonly config: NetworkConfig;
  readonly now: Date;
  readonly vpcId: string;
}

export interface InvariantInput extends InvariantScope {
  /** the foreign routes before the run (snapshotForeignRoutes); without it invariant 4 is not checked */
  readonly foreignBefore?: ForeignRouteSnapshot;
  /** the state has settled after a fault-free reconcile: check routes against leases too */
  readonly settled?: boolean;
}

/** A route as compared: `destination -> target [state]`. */
export type RouteKey = string;

/** Per route table of the VPC, the sorted keys of its routes vpc-lease does not own. */
export type ForeignRouteSnapshot = ReadonlyMap<string, readonly RouteKey[]>;

export interface RawItem {
  readonly pk: string;
  readonly subnet?: string;
  readonly instanceId?: string;
  readonly networkInterfaceId?: string;
  readonly privateIp?: string;
  readonly expiresAt?: number;
  readonly routes?: readonly { routeTableId: string; state: string }[];
  readonly [key: string]: unknown;
}

export interface ObservedRoute {
  readonly destination: string;
  readonly networkInterfaceId?: string;
  readonly instanceId?: string;
  /** igw-/pcx-/nat-/local... anything that is not an ENI or an instance */
  readonly otherTarget?: string;
  readonly state: string;
  readonly origin: string;
}

export interface ObservedTable {
  readonly routeTableId: string;
  readonly inScope: boolean;
  readonly routes: readonly ObservedRoute[];
}

export interface ObservedInstance {
  readonly instanceId: string;
  readonly state: string;
  readonly networkInterfaces: readonly {
    readonly networkInterfaceId: string;
    readonly sourceDestCheck: boolean;
  }[];
}

export interface ObservedState {
  readonly items: readonly RawItem[];
  readonly tables: readonly ObservedTable[];
  /** the holders of live leases, described (only when settled) */
  readonly instances?: readonly ObservedInstance[];
}

export interface LiveLease {
  readonly subnet: string;
  readonly instanceId: string;
  readonly networkInterfaceId: string;
  readonly expiresAt: number;
  readonly routes: readonly { routeTableId: string; state: string }[];
}

export class InvariantViolation extends Error {
  constructor(readonly violations: readonly string[]) {
    super(`${violations.length} invariant violation(s):\n  - ${violations.join('\n  - ')}`);
    this.name = 'InvariantViolation';
  }
}

// ---------------------------------------------------------------- reading

export async function scanItems(store: InvariantScope['store']): Promise<RawItem[]> {
  const items: RawItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await store.client.send(
      new ScanCommand({
        TableName: store.tableName,
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? []) items.push(item as RawItem);
    start = out.LastEvaluatedKey;
  } while (start);
  return items.sort((a, b) => a.pk.localeCompare(b.pk));
}

/** Every route table of the VPC, as EC2 describes it; in scope per Backend.RouteTableID (absent = all). */
export async function describeTables(
  ec2: EC2Client,
  vpcId: string,
  config: NetworkConfig,
): Promise<ObservedTable[]> {
  const tables: ObservedTable[] = [];
  let token: string | undefined;
  do {
    const out = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }], NextToken: token }),
    );
    for (const table of out.RouteTables ?? []) {
      const id = table.RouteTableId!;
      const scope = config.backend.routeTableIds;
      tables.push({
        routeTableId: id,
        inScope: scope === undefined || scope.includes(id),
        routes: (table.Routes ?? []).flatMap((r) =>
          r.DestinationCidrBlock || r.DestinationPrefixListId ? [observed(r)] : [],
        ),
      });
    }
    token = out.NextToken || undefined;
  } while (token);
  return tables.sort((a, b) => a.routeTableId.localeCompare(b.routeTableId));
}

function observed(route: Route): ObservedRoute {
  const other =
    route.GatewayId ??
    route.NatGatewayId ??
    route.TransitGatewayId ??
    route.VpcPeeringConnectionId ??
    route.EgressOnlyInternetGatewayId ??
    route.CarrierGatewayId ??
    route.LocalGatewayId ??
    route.CoreNetworkArn;
  return {
    destination: route.DestinationCidrBlock ?? route.DestinationPrefixListId!,
    ...(route.NetworkInterfaceId ? { networkInterfaceId: route.NetworkInterfaceId } : {}),
    ...(route.InstanceId ? { instanceId: route.InstanceId } : {}),
    ...(other ? { otherTarget: other } : {}),
    state: route.State ?? 'active',
    origin: route.Origin ?? 'CreateRoute',
  };
}

async function describeHolders(ec2: EC2Client, instanceIds: readonly string[]): Promise<ObservedInstance[]> {
  if (instanceIds.length === 0) return [];
  const out = await ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [...instanceIds] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) =>
    (r.Instances ?? []).map((i) => ({
      instanceId: i.InstanceId!,
      state: i.State?.Name ?? 'unknown',
      networkInterfaces: (i.NetworkInterfaces ?? []).map((n) => ({
        networkInterfaceId: n.NetworkInterfaceId!,
        sourceDestCheck: n.SourceDestCheck ?? true,
      })),
    })),
  );
}

export async function readState(input: InvariantScope & { settled?: boolean }): Promise<ObservedState> {
  const [items, tables] = await Promise.all([
    scanItems(input.store),
    describeTables(input.ec2, input.vpcId, input.config),
  ]);
  if (!input.settled) return { items, tables };
  const holders = [...new Set(liveLeases(items, input.now).map((l) => l.instanceId))];
  return { items, tables, instances: await describeHolders(input.ec2, holders) };
}

/** The routes vpc-lease does not own, per table of the VPC: compare them before and after. */
export async function snapshotForeignRoutes(
  scope: Pick<InvariantScope, 'ec2' | 'vpcId' | 'config'>,
): Promise<ForeignRouteSnapshot> {
  return foreignRoutesOf(scope.config, await describeTables(scope.ec2, scope.vpcId, scope.config));
}

// ---------------------------------------------------------------- ownership, decided here

const parse = (destination: string): Cidr | undefined => {
  try {
    return parseCidr(destination);
  } catch {
    return undefined;
  }
};

/** Exactly one leasable subnet: SubnetLen long, aligned, inside Network, within SubnetMin..SubnetMax. */
const leasableDestination = (config: NetworkConfig, destination: string): boolean => {
  const cidr = parse(destination);
  return cidr !== undefined && isLeasable(config, cidr);
};

/**
 * Owned (DESIGN.md invariant 4): in a table in scope, the destination exactly one leasable
 * subnet, and the target an ENI or an instance (the only kind of route vpc-lease writes) or
 * gone (blackhole). Everything else, including every route of a table out of scope, a gateway
 * route to a leasable subnet and an ENI route of another prefix length, is foreign.
 */
export const isOwned = (config: NetworkConfig, table: ObservedTable, route: ObservedRoute): boolean =>
  table.inScope &&
  leasableDestination(config, route.destination) &&
  (route.state === 'blackhole' ||
    (!route.otherTarget && Boolean(route.networkInterfaceId || route.instanceId)));

const targetOf = (r: ObservedRoute) => r.networkInterfaceId ?? r.instanceId ?? r.otherTarget ?? '?';
export const routeKey = (r: ObservedRoute): RouteKey => `${r.destination} -> ${targetOf(r)} [${r.state}]`;

export function foreignRoutesOf(
  config: NetworkConfig,
  tables: readonly ObservedTable[],
): ForeignRouteSnapshot {
  return new Map(
    tables.map((t) => [
      t.routeTableId,
      t.routes
        .filter((r) => !isOwned(config, t, r))
        .map(routeKey)
        .sort(),
    ]),
  );
}

/** Routes counting against "Routes per route table" (propagated ones have a quota of their own). */
const countsTowardQuota = (r: ObservedRoute) => r.origin !== 'EnableVgwRoutePropagation';

// ---------------------------------------------------------------- the checks

const isLiveAt = (item: RawItem, now: Date) =>
  typeof item.expiresAt === 'number' && item.expiresAt > now.getTime();

export function liveLeases(items: readonly RawItem[], now: Date): LiveLease[] {
  return items
    .filter((i) => i.pk.startsWith('SUBNET#') && isLiveAt(i, now))
    .map((i) => ({
      subnet: String(i.subnet),
      instanceId: String(i.instanceId),
      networkInterfaceId: String(i.networkInterfaceId),
      expiresAt: Number(i.expiresAt),
      routes: i.routes ?? [],
    }));
}

/** Every violation the state shows; empty when the invariants hold. Pure: unit-testable. */
export function findViolations(
  state: ObservedState,
  input: Pick<InvariantInput, 'config' | 'now' | 'foreignBefore' | 'settled'>,
): string[] {
  const { config, now } = input;
  const violations: string[] = [];
  const byPk = new Map(state.items.map((i) => [i.pk, i]));
  const live = liveLeases(state.items, now);
  const scoped = state.tables.filter((t) => t.inScope);

  // -- 1: one live lease per subnet, no overlap, both items agree
  const seen = new Map<string, LiveLease>();
  for (const lease of live) {
    const cidr = parse(lease.subnet);
    if (!cidr) {
      violations.push(`1: live lease item with a malformed subnet "${lease.subnet}"`);
      continue;
    }
    const key = formatCidr(cidr);
    if (`SUBNET#${key}` !== `SUBNET#${lease.subnet}`)
      violations.push(`1: lease subnet ${lease.subnet} is not canonical`);
    if (seen.has(key)) violations.push(`1: subnet ${key} held by two live leases`);
    for (const [other, holder] of seen) {
      if (overlaps(parse(other)!, cidr))
        violations.push(
          `1: live leases ${other} (${holder.instanceId}) and ${key} (${lease.instanceId}) overlap`,
        );
    }
    seen.set(key, lease);
    if (!isLeasable(config, cidr))
      violations.push(`1: live lease ${key} is not a leasable subnet of the network`);

    const claim = byPk.get(`INSTANCE#${lease.instanceId}`);
    if (!claim || !isLiveAt(claim, now) || claim.subnet !== lease.subnet) {
      violations.push(
        `1: live lease ${key} of ${lease.instanceId} has no live INSTANCE item naming it (found ${describe(claim)})`,
      );
    }
  }
  for (const item of state.items) {
    if (!isLiveAt(item, now)) continue;
    if (item.pk.startsWith('INSTANCE#')) {
      const lease = byPk.get(`SUBNET#${item.subnet}`);
      if (!lease || !isLiveAt(lease, now) || lease.instanceId !== item.instanceId) {
        violations.push(`1: live ${item.pk} claims ${item.subnet}, held by ${describe(lease)}`);
      }
    }
  }

  // -- 2: at most one live lease per instance
  const perInstance = new Map<string, string[]>();
  for (const lease of live)
    perInstance.set(lease.instanceId, [...(perInstance.get(lease.instanceId) ?? []), lease.subnet]);
  for (const [instanceId, subnets] of perInstance) {
    if (subnets.length > 1)
      violations.push(`2: ${instanceId} holds ${subnets.length} live leases: ${subnets.join(', ')}`);
  }

  // -- 3: live leases within RouteLimit - foreign routes of every table in scope
  const limit = config.backend.routeLimit;
  let capacity = limit;
  for (const table of scoped) {
    const foreign = table.routes.filter((r) => countsTowardQuota(r) && !isOwned(config, table, r)).length;
    capacity = Math.min(capacity, limit - foreign);
    if (live.length > limit - foreign) {
      violations.push(
        `3: ${live.length} live leases but ${table.routeTableId} admits ${limit - foreign} (RouteLimit ${limit} - ${foreign} foreign)`,
      );
    }
  }
  // The ledger: one place per lease item (live or expired: its routes stay until reclaimed),
  // never admitting more than RouteLimit, and once settled, what the tables leave.
  const ledger = byPk.get('CAPACITY');
  const leaseItems = state.items.filter((i) => i.pk.startsWith('SUBNET#')).length;
  if (!ledger) {
    if (leaseItems > 0) violations.push(`3: ${leaseItems} lease items but no CAPACITY item counts them`);
  } else {
    if (ledger.used !== leaseItems)
      violations.push(
        `3: CAPACITY counts ${String(ledger.used)} places but the table holds ${leaseItems} lease items`,
      );
    if (typeof ledger.capacity !== 'number' || ledger.capacity > limit)
      violations.push(`3: CAPACITY admits ${String(ledger.capacity)}, more than RouteLimit ${limit}`);
    if (input.settled && scoped.length > 0 && ledger.capacity !== Math.max(0, capacity))
      violations.push(`settled: CAPACITY admits ${String(ledger.capacity)} but the tables leave ${capacity}`);
  }

  // -- 4: foreign routes untouched, in every table of the VPC
  if (input.foreignBefore) {
    const after = foreignRoutesOf(config, state.tables);
    for (const [tableId, before] of input.foreignBefore) {
      const current = after.get(tableId);
      if (!current) {
        violations.push(`4: route table ${tableId} is gone`);
        continue;
      }
      const gone = before.filter((r) => !current.includes(r));
      const added = current.filter((r) => !before.includes(r));
      if (gone.length > 0)
        violations.push(`4: foreign routes of ${tableId} changed or removed: ${gone.join('; ')}`);
      if (added.length > 0)
        violations.push(`4: routes vpc-lease does not own appeared in ${tableId}: ${added.join('; ')}`);
    }
  }

  if (input.settled) violations.push(...settledViolations(state, live, scoped, config));
  return violations;
}

function settledViolations(
  state: ObservedState,
  live: readonly LiveLease[],
  scoped: readonly ObservedTable[],
  config: NetworkConfig,
): string[] {
  const violations: string[] = [];
  const bySubnet = new Map(live.map((l) => [formatCidr(parse(l.subnet)!), l]));
  const instances = new Map((state.instances ?? []).map((i) => [i.instanceId, i]));

  for (const table of scoped) {
    const counted = table.routes.filter(countsTowardQuota).length;
    if (counted > config.backend.routeLimit) {
      violations.push(
        `3: ${table.routeTableId} holds ${counted} routes, over RouteLimit ${config.backend.routeLimit}`,
      );
    }
    for (const route of table.routes) {
      if (!isOwned(config, table, route)) continue;
      const cidr = parse(route.destination)!;
      const lease = bySubnet.get(formatCidr(cidr));
      if (!lease) {
        violations.push(
          `4: ${table.routeTableId}: ${routeKey(route)} is inside Network but no live lease holds it`,
        );
      } else if (route.networkInterfaceId !== lease.networkInterfaceId) {
        violations.push(
          `4: ${table.routeTableId}: ${routeKey(route)} does not target ${lease.networkInterfaceId} of ${lease.instanceId}, the live holder`,
        );
      }
    }
  }

  for (const lease of live) {
    const instance = instances.get(lease.instanceId);
    if (!instance || instance.state === 'shutting-down' || instance.state === 'terminated') {
      violations.push(
        `settled: live lease ${lease.subnet} is held by ${lease.instanceId}, which is ${instance?.state ?? 'gone'}`,
      );
    } else {
      const eni = instance.networkInterfaces.find((n) => n.networkInterfaceId === lease.networkInterfaceId);
      if (!eni)
        violations.push(
          `settled: ${lease.networkInterfaceId} of lease ${lease.subnet} is not attached to ${lease.instanceId}`,
        );
      else if (eni.sourceDestCheck)
        violations.push(
          `settled: source/destination check still on for ${eni.networkInterfaceId} (${lease.subnet})`,
        );
    }
    for (const table of scoped) {
      const route = table.routes.find((r) => {
        const cidr = parse(r.destination);
        return cidr !== undefined && formatCidr(cidr) === lease.subnet;
      });
      if (!route || route.networkInterfaceId !== lease.networkInterfaceId || route.state !== 'active') {
        violations.push(
          `settled: live lease ${lease.subnet} of ${lease.instanceId} has no active route to ${lease.networkInterfaceId} in ${table.routeTableId} (found ${route ? routeKey(route) : 'none'})`,
        );
      }
      const stored = lease.routes.find((r) => r.routeTableId === table.routeTableId);
      if (stored?.state !== 'active') {
        violations.push(
          `settled: lease ${lease.subnet} records its route in ${table.routeTableId} as ${stored?.state ?? 'missing'}`,
        );
      }
    }
  }
  return violations;
}

function describe(item: RawItem | undefined): string {
  if (!item) return 'nothing';
  return `${item.pk} (${item.instanceId ?? '?'}, ${item.subnet ?? '?'}, expiresAt ${item.expiresAt ?? '?'})`;
}

/**
 * Reads the real state and throws InvariantViolation listing every violation;
 * returns the state it read, for further checks.
 */
export async function checkInvariants(input: InvariantInput): Promise<ObservedState> {
  const state = await readState(input);
  const violations = findViolations(state, input);
  if (violations.length > 0) throw new InvariantViolation(violations);
  return state;
}

/**
 * The import's plan, without I/O: what each flannel lease record is, which host it names,
 * how its routes stand (`routeStanding`, the one place the import decides whether a route is
 * owned), whether the route capacity admits it (`ImportCapacity`), and adopt / unchanged /
 * skip. import-service.ts reads the registry's inputs, runs the plan and does the writes.
 */
import { type Cidr, CidrError, equals, formatCidr, isIp, overlaps, parseSubnetKey } from './cidr.js';
import { isLive, type Lease } from './lease.js';
import { isLeasable, type NetworkConfig } from './network-config.js';
import type { InstanceInfo, NetworkInterface, RouteEntry, RouteTable } from './ports.js';
import { capacity, routeTableSnapshot } from './route-capacity.js';
import { foreignClaim, isOwnedRoute, parseDestination, pointsTo } from './route-ownership.js';

// ---------------------------------------------------------------- the domain of an import

/** One `<prefix>/subnets/<key>` of the registry, as read from etcd. */
export interface FlannelLeaseRecord {
  /** the key's last segment, as flannel writes it: `10.244.7.0-24` */
  readonly key: string;
  /** the key's value (flannel's LeaseAttrs JSON, parsed by the reader); judged here */
  readonly value: unknown;
  /** seconds left on the key's etcd lease; null for a key on no lease (a flannel reservation) */
  readonly ttlSeconds: number | null;
}

export type ImportSkipCode =
  | 'malformed'
  | 'expired'
  | 'not-aws-vpc'
  | 'outside-network'
  | 'no-instance'
  | 'instance-not-running'
  | 'duplicate-host'
  | 'subnet-leased'
  | 'instance-leased'
  | 'foreign-route'
  | 'route-capacity';

/** keep: the route already reaches the host; repoint: ReplaceRoute to its ENI; create: no route yet. */
export type ImportRouteAction = 'keep' | 'repoint' | 'create';

export interface ImportRoute {
  readonly routeTableId: string;
  /** the route's current target (ENI, instance, or another target), undefined when there is none */
  readonly target: string | undefined;
  readonly action: ImportRouteAction;
}

export interface ImportEntry {
  readonly key: string;
  readonly subnet: Cidr | undefined;
  readonly publicIp: string | undefined;
  readonly ttlSeconds: number | null;
  readonly instanceId?: string;
  readonly networkInterfaceId?: string;
  /** per table in scope; empty for entries skipped before their routes were looked at */
  readonly routes: readonly ImportRoute[];
  /**
   * adopt: the dry run would adopt it; adopted: the apply did; unchanged: the instance already
   * holds this subnet (an earlier import, or its agent); skip: left alone, see `reason`.
   */
  readonly outcome: 'adopt' | 'adopted' | 'unchanged' | 'skip';
  readonly reason?: { readonly code: ImportSkipCode; readonly message: string };
  /** after an apply: tables whose route EC2 has not written yet (throttled); the reconcile finishes them */
  readonly pendingRouteTableIds?: readonly string[];
}

// ---------------------------------------------------------------- ownership: the one decision

/**
 * How a route stands towards adopting `subnet` for `host` (DESIGN.md invariants 4 and 5):
 *   unrelated    - it does not touch the subnet, is not inside Network, or is a prefix list;
 *   reaches-host - it is the subnet's route and already delivers to the host (its ENI, or its
 *                  instance as older flannel versions wrote): kept as it is;
 *   owned        - it is the subnet's route, owned-shaped (destination exactly one leasable
 *                  subnet, target an ENI, an instance or gone): re-pointed to the host;
 *   foreign      - anything else inside Network that covers or overlaps the subnet: the subnet
 *                  is not adopted.
 */
export function routeStanding(
  config: NetworkConfig,
  subnet: Cidr,
  route: RouteEntry,
  host: { readonly instanceId: string; readonly networkInterfaceId: string },
): 'unrelated' | 'reaches-host' | 'owned' | 'foreign' {
  const destination = parseDestination(route.destination);
  if (!destination || !overlaps(destination, subnet)) return 'unrelated';
  // An owned route to a leasable subnet that overlaps this one is this subnet's own route.
  if (isOwnedRoute(config, route) && equals(destination, subnet))
    return route.state === 'active' && pointsTo(route, host) ? 'reaches-host' : 'owned';
  // Routes around the whole Network (0.0.0.0/0, the VPC's, 10.0.0.0/8 to a transit gateway)
  // are less specific than any lease's route, which wins by longest prefix: they do not block.
  return foreignClaim(config, route) ? 'foreign' : 'unrelated';
}

// ---------------------------------------------------------------- capacity: the one check

/**
 * Invariant 3 for the import: a new lease needs a free place of the capacity the route tables
 * give (RouteLimit minus their foreign routes), exactly as a grant of PUT /v1/lease does.
 * `reserve` counts for the plan; the store's grant, which takes a place of the capacity ledger
 * in the same atomic write, is what actually enforces the limit.
 */
export class ImportCapacity {
  private readonly room: number;
  /** subnets of expired lease items: taking one over keeps the place that lease holds */
  private readonly expired: ReadonlySet<string>;
  private free: number;

  constructor(
    private readonly config: NetworkConfig,
    tables: readonly RouteTable[],
    leases: readonly Lease[],
    now: Date,
  ) {
    this.room = capacity(config, routeTableSnapshot(config, tables, now));
    this.expired = new Set(leases.filter((l) => !isLive(l, now)).map((l) => formatCidr(l.subnet)));
    // every lease item, live or expired, holds a place until it is reclaimed
    this.free = Math.max(0, this.room - leases.length);
  }

  /** Whether one more lease on `subnet` fits; counts it when it does. */
  reserve(subnet: Cidr): boolean {
    if (this.expired.has(formatCidr(subnet))) return true;
    if (this.free <= 0) return false;
    this.free--;
    return true;
  }

  fullMessage(): string {
    return (
      `The route tables admit ${this.room} leases (Backend.RouteLimit ${this.config.backend.routeLimit} minus the other routes ` +
      'of the fullest table) and no place is left. Raise the "Routes per route table" quota and Backend.RouteLimit, then import again.'
    );
  }
}

// ---------------------------------------------------------------- the plan (no I/O)

export interface ReadRecord {
  readonly key: string;
  readonly subnet: Cidr | undefined;
  readonly publicIp: string;
  readonly ttlSeconds: number | null;
  readonly skip?: { readonly code: ImportSkipCode; readonly message: string };
}

export interface PlannedHost {
  readonly instanceId: string;
  readonly nic: NetworkInterface;
}

export interface PlannedEntry {
  readonly entry: ImportEntry;
  /** present when the entry is to be adopted */
  readonly adopt?: PlannedHost;
}

/** What can be told from the record and the config alone. */
export function readRecord(record: FlannelLeaseRecord, config: NetworkConfig): ReadRecord {
  const base = { key: record.key, ttlSeconds: record.ttlSeconds };
  let subnet: Cidr;
  try {
    subnet = parseSubnetKey(record.key);
  } catch (error) {
    const why = error instanceof CidrError ? error.message : String(error);
    return { ...base, subnet: undefined, publicIp: '', skip: { code: 'malformed', message: `key: ${why}` } };
  }
  const value = record.value as { PublicIP?: unknown; BackendType?: unknown } | null;
  const publicIp = typeof value === 'object' && value !== null ? value.PublicIP : undefined;
  if (!isIp(publicIp)) {
    return {
      ...base,
      subnet,
      publicIp: '',
      skip: { code: 'malformed', message: 'the value is not flannel lease JSON with an IPv4 "PublicIP".' },
    };
  }
  const read = { ...base, subnet, publicIp };
  if (record.ttlSeconds !== null && record.ttlSeconds <= 0) {
    return {
      ...read,
      skip: { code: 'expired', message: 'its etcd lease has expired; flannel no longer holds it.' },
    };
  }
  if (value?.BackendType !== undefined && value.BackendType !== 'aws-vpc') {
    return {
      ...read,
      skip: {
        code: 'not-aws-vpc',
        message: `BackendType is ${JSON.stringify(value.BackendType)}, not "aws-vpc".`,
      },
    };
  }
  if (!isLeasable(config, subnet)) {
    return {
      ...read,
      skip: {
        code: 'outside-network',
        message:
          `not a leasable subnet of Network ${formatCidr(config.network)} ` +
          `(/${config.subnetLen}, ${formatCidr(config.subnetMin)}..${formatCidr(config.subnetMax)}).`,
      },
    };
  }
  return read;
}

/**
 * Decides every record: the host it names, its routes, and adopt / unchanged / skip. Only
 * `room.reserve` has an effect (the plan's count of capacity).
 */
export function planImport(input: {
  config: NetworkConfig;
  tables: readonly RouteTable[];
  leases: readonly Lease[];
  hosts: readonly InstanceInfo[];
  records: readonly ReadRecord[];
  now: Date;
  room: ImportCapacity;
}): PlannedEntry[] {
  const { config, tables, now, room } = input;
  const live = input.leases.filter((l) => isLive(l, now));
  const liveBySubnet = new Map(live.map((l) => [formatCidr(l.subnet), l]));
  const liveByInstance = new Map(live.map((l) => [l.instanceId, l]));
  const hostByIp = hostsByAddress(input.hosts);

  const sorted = [...input.records].sort(compareRecords);
  const entries = new Map<ReadRecord, ImportEntry>();
  const candidates: { record: ReadRecord; host: InstanceInfo; nic: NetworkInterface }[] = [];
  for (const record of sorted) {
    const entry = baseEntry(record);
    if (record.skip) {
      entries.set(record, { ...entry, outcome: 'skip', reason: record.skip });
      continue;
    }
    const host = hostByIp.get(record.publicIp);
    const nic = host?.networkInterfaces.find((n) => n.privateIps.includes(record.publicIp));
    if (!host || !nic) {
      entries.set(
        record,
        skipped(entry, 'no-instance', `no instance of the VPC has the private IP ${record.publicIp}.`),
      );
      continue;
    }
    const withHost = { ...entry, instanceId: host.instanceId, networkInterfaceId: nic.networkInterfaceId };
    if (host.state !== 'running') {
      entries.set(
        record,
        skipped(
          withHost,
          'instance-not-running',
          `${host.instanceId} is ${host.state}; only running instances are adopted.`,
        ),
      );
      continue;
    }
    entries.set(record, withHost);
    candidates.push({ record, host, nic });
  }

  // Two keys naming one host: the one it already holds, else the longest remaining etcd TTL.
  const keepers = new Map<string, ReadRecord>();
  for (const { record, host } of candidates) {
    const current = keepers.get(host.instanceId);
    if (!current || preferKey(record, current, liveByInstance.get(host.instanceId)))
      keepers.set(host.instanceId, record);
  }

  const planned: PlannedEntry[] = [];
  const adoptions = new Map<ReadRecord, PlannedHost>();
  for (const { record, host, nic } of candidates) {
    const entry = entries.get(record)!;
    const subnet = record.subnet!;
    const keeper = keepers.get(host.instanceId)!;
    if (keeper !== record) {
      entries.set(
        record,
        skipped(
          entry,
          'duplicate-host',
          `${host.instanceId} is also named by ${formatCidr(keeper.subnet!)}, which is kept ` +
            `(${keeper.ttlSeconds === null ? 'no expiry' : `${keeper.ttlSeconds} s left`} against ` +
            `${record.ttlSeconds === null ? 'no expiry' : `${record.ttlSeconds} s`}).`,
        ),
      );
      continue;
    }
    const holder = liveBySubnet.get(formatCidr(subnet));
    const held = liveByInstance.get(host.instanceId);
    const holderHost = { instanceId: host.instanceId, networkInterfaceId: nic.networkInterfaceId };
    const routes: ImportRoute[] = [];
    let foreign: RouteEntry | undefined;
    for (const table of tables) {
      let action: ImportRouteAction = 'create';
      let target: string | undefined;
      for (const route of table.routes) {
        const standing = routeStanding(config, subnet, route, holderHost);
        if (standing === 'unrelated') continue;
        if (standing === 'foreign') {
          foreign ??= route;
          continue;
        }
        target = targetOf(route);
        action = standing === 'reaches-host' ? 'keep' : 'repoint';
      }
      routes.push({ routeTableId: table.routeTableId, target, action });
    }
    const withRoutes = { ...entry, routes };

    if (holder && holder.instanceId === host.instanceId) {
      entries.set(record, { ...withRoutes, outcome: 'unchanged' });
    } else if (holder) {
      entries.set(
        record,
        skipped(
          withRoutes,
          'subnet-leased',
          `${formatCidr(subnet)} is already leased to ${holder.instanceId}.`,
        ),
      );
    } else if (held) {
      entries.set(
        record,
        skipped(
          withRoutes,
          'instance-leased',
          `${host.instanceId} already holds ${formatCidr(held.subnet)}.`,
        ),
      );
    } else if (foreign) {
      entries.set(
        record,
        skipped(
          withRoutes,
          'foreign-route',
          `the route ${foreign.destination} -> ${targetOf(foreign)} covers or overlaps it and is not vpc-lease's to change.`,
        ),
      );
    } else if (!room.reserve(subnet)) {
      entries.set(record, skipped(withRoutes, 'route-capacity', room.fullMessage()));
    } else {
      entries.set(record, { ...withRoutes, outcome: 'adopt' });
      adoptions.set(record, { instanceId: host.instanceId, nic });
    }
  }

  for (const record of sorted) {
    const adopt = adoptions.get(record);
    planned.push({ entry: entries.get(record)!, ...(adopt ? { adopt } : {}) });
  }
  return planned;
}

/** Whether `candidate` should be kept over `current` for one host. */
function preferKey(candidate: ReadRecord, current: ReadRecord, held: Lease | undefined): boolean {
  if (held) {
    const holds = (r: ReadRecord) => r.subnet !== undefined && equals(r.subnet, held.subnet);
    if (holds(candidate) !== holds(current)) return holds(candidate);
  }
  const ttl = (r: ReadRecord) => (r.ttlSeconds === null ? Number.POSITIVE_INFINITY : r.ttlSeconds);
  return ttl(candidate) > ttl(current); // a tie keeps the lower subnet (records come sorted)
}

/** Prefers the running instance when a stale (terminated) one still shows an address. */
function hostsByAddress(hosts: readonly InstanceInfo[]): Map<string, InstanceInfo> {
  const byIp = new Map<string, InstanceInfo>();
  for (const host of hosts) {
    for (const nic of host.networkInterfaces) {
      for (const ip of nic.privateIps) {
        const current = byIp.get(ip);
        if (!current || (current.state !== 'running' && host.state === 'running')) byIp.set(ip, host);
      }
    }
  }
  return byIp;
}

function compareRecords(a: ReadRecord, b: ReadRecord): number {
  if (!a.subnet || !b.subnet) return a.subnet ? -1 : b.subnet ? 1 : a.key.localeCompare(b.key);
  if (a.subnet.base !== b.subnet.base) return a.subnet.base < b.subnet.base ? -1 : 1;
  return a.subnet.prefix - b.subnet.prefix;
}

const baseEntry = (record: ReadRecord): ImportEntry => ({
  key: record.key,
  subnet: record.subnet,
  publicIp: record.publicIp === '' ? undefined : record.publicIp,
  ttlSeconds: record.ttlSeconds,
  routes: [],
  outcome: 'skip',
});

export const skipped = (entry: ImportEntry, code: ImportSkipCode, message: string): ImportEntry => ({
  ...entry,
  outcome: 'skip',
  reason: { code, message },
});

const targetOf = (route: RouteEntry): string =>
  route.networkInterfaceId ?? route.instanceId ?? route.otherTarget ?? 'blackhole';

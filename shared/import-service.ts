/**
 * Migration from flannel (POST /v1/admin/import): adopts the leases of a live flannel
 * registry in place. Each flannel lease whose PublicIP is the private IP of a running
 * instance of the VPC becomes that instance's lease on the *same* subnet, so hosts keep
 * their container addresses; its route is kept when it already reaches the host and
 * re-pointed when it is owned-shaped. Everything else is reported with a reason and left
 * alone. The dry run computes the same plan and writes nothing; a second apply finds every
 * lease already adopted and changes nothing.
 *
 * Invariants 1-3 rest on the lease store's atomic grant, as for PUT /v1/lease; invariants
 * 4-5 on `routeStanding` (import-plan.ts), the one place the import decides whether a route
 * is owned. The plan is import-plan.ts's; this service does the I/O.
 */
import { equals, formatCidr } from './cidr.js';
import { ConflictError, RouteLimitExceededError, ValidationError } from './errors.js';
import {
  type FlannelLeaseRecord,
  ImportCapacity,
  type ImportEntry,
  type PlannedHost,
  planImport,
  readRecord,
  skipped,
} from './import-plan.js';
import { isLive, type Lease, type LeaseRoute } from './lease.js';
import { type NetworkConfig, parseNetworkConfig, toFlannelJson } from './network-config.js';
import type { Clock, InstancePort, LeaseStore, RouteTable, StoredConfig } from './ports.js';

export interface ImportRequest {
  /** false: compute the plan and write nothing */
  readonly apply: boolean;
  /** `<prefix>/config`, parsed; undefined when the registry has none */
  readonly config: unknown;
  readonly leases: readonly FlannelLeaseRecord[];
}

export interface ImportResult {
  readonly applied: boolean;
  readonly config: NetworkConfig;
  /** matches: a config was published and the registry's agrees; publish(ed): there was none */
  readonly configAction: 'matches' | 'publish' | 'published';
  /** in subnet order (unreadable keys last) */
  readonly entries: readonly ImportEntry[];
}

export interface ImportServiceDeps {
  store: Pick<LeaseStore, 'getConfig' | 'list' | 'occupancy' | 'grant' | 'getByInstance' | 'delete'>;
  instances: Pick<InstancePort, 'findByPrivateIps'>;
  routes: {
    tablesInScope(config: NetworkConfig): Promise<RouteTable[]>;
    ensureLeaseRoutes(
      lease: Lease,
      config: NetworkConfig,
      options: { sourceDestCheck: boolean; routeTableIds: readonly string[] },
    ): Promise<{ lease: Lease | undefined; routes: readonly LeaseRoute[]; error: unknown }>;
  };
  configs: {
    validate(input: unknown): Promise<{ config: NetworkConfig }>;
    publish(input: unknown): Promise<StoredConfig>;
  };
  clock: Clock;
  /** the VPC this control plane manages: only its instances can adopt a lease */
  vpcId: string;
  leaseTtlSeconds: number;
  logger?: { info(message: string, extra?: object): void; warn(message: string, extra?: object): void };
}

/** Adoptions run side by side, a few at a time: one grant and at most #tables EC2 calls each. */
const PARALLEL_ADOPTIONS = 4;
/** Grant attempts per adoption; only a place lost to a concurrent write is retried. */
const MAX_GRANT_ATTEMPTS = 4;

export class ImportService {
  constructor(private readonly deps: ImportServiceDeps) {}

  async import(request: ImportRequest): Promise<ImportResult> {
    const { config, configAction } = await this.settleConfig(request.config, request.apply);
    const { store, routes, instances, clock, vpcId } = this.deps;
    const now = clock.now();
    const [tables, leases] = await Promise.all([routes.tablesInScope(config), store.list()]);
    const records = request.leases.map((record) => readRecord(record, config));
    const addresses = [...new Set(records.flatMap((r) => (r.skip ? [] : [r.publicIp])))];
    const hosts = addresses.length > 0 ? await instances.findByPrivateIps(vpcId, addresses) : [];
    const room = new ImportCapacity(config, tables, leases, now);
    const plan = planImport({ config, tables, leases, hosts, records, now, room });
    if (!request.apply) return { applied: false, config, configAction, entries: plan.map((p) => p.entry) };

    const entries = await mapLimited(plan, PARALLEL_ADOPTIONS, (planned) =>
      planned.adopt ? this.adopt(planned.entry, planned.adopt, config, room, now) : planned.entry,
    );
    const adopted = entries.filter((e) => e.outcome === 'adopted').length;
    this.deps.logger?.info('flannel registry imported', {
      adopted,
      unchanged: entries.filter((e) => e.outcome === 'unchanged').length,
      skipped: entries.filter((e) => e.outcome === 'skip').length,
    });
    return { applied: true, config, configAction, entries };
  }

  /**
   * The config the leases are judged against: the published one, which the registry's must
   * match (409 with the differences otherwise); with none published, the registry's, validated
   * as `config set` would (and published by an apply).
   */
  private async settleConfig(
    registry: unknown,
    apply: boolean,
  ): Promise<{ config: NetworkConfig; configAction: ImportResult['configAction'] }> {
    const stored = await this.deps.store.getConfig();
    if (stored) {
      if (registry !== undefined) {
        const differences = configDifferences(registryConfig(registry), registry, stored.config);
        if (differences.length > 0) {
          throw new ConflictError(
            "The registry's network config differs from the one vpc-lease has published: " +
              `${differences.map((d) => `${d.field} is ${d.registry} in the registry, ${d.published} in vpc-lease`).join('; ')}. ` +
              "Nothing was imported. Publish the registry's values (`vpc-lease config set`) or fix the registry first.",
            { details: { differences } },
          );
        }
      }
      return { config: stored.config, configAction: 'matches' };
    }
    if (registry === undefined) {
      throw new ValidationError(
        'The registry has no network config (<prefix>/config) and vpc-lease has none published: ' +
          'check --etcd-prefix, or publish one first with `vpc-lease config set`.',
      );
    }
    registryConfig(registry);
    try {
      if (!apply)
        return { config: (await this.deps.configs.validate(registry)).config, configAction: 'publish' };
      const published = await this.deps.configs.publish(registry);
      this.deps.logger?.info('network config published from the flannel registry', {
        config: toFlannelJson(published.config),
      });
      return { config: published.config, configAction: 'published' };
    } catch (error) {
      if (error instanceof ValidationError) throw registryConfigError(error);
      throw error;
    }
  }

  /** Grants the planned lease atomically, then writes the routes that do not reach the host yet. */
  private async adopt(
    entry: ImportEntry,
    host: PlannedHost,
    config: NetworkConfig,
    room: ImportCapacity,
    now: Date,
  ): Promise<ImportEntry> {
    const { store } = this.deps;
    const subnet = entry.subnet!;
    let lease: Lease | undefined;
    for (let attempt = 0; attempt < MAX_GRANT_ATTEMPTS && !lease; attempt++) {
      const result = await store.grant(
        {
          subnet,
          instanceId: host.instanceId,
          privateIp: entry.publicIp!,
          networkInterfaceId: host.nic.networkInterfaceId,
          expiresAt: new Date(now.getTime() + this.deps.leaseTtlSeconds * 1000),
          routes: entry.routes.map((r) => ({
            routeTableId: r.routeTableId,
            state: r.action === 'keep' ? ('active' as const) : ('pending' as const),
          })),
        },
        now,
      );
      if (result.granted) {
        lease = result.lease;
        break;
      }
      // Someone else got there between the plan and the grant (a host's agent, another import).
      if (result.conflicts.includes('instance-has-lease') || result.conflicts.includes('subnet-taken')) {
        const mine = await store.getByInstance(host.instanceId);
        if (mine && isLive(mine, now) && equals(mine.subnet, subnet))
          return { ...entry, outcome: 'unchanged' };
        if (result.conflicts.includes('subnet-taken'))
          return skipped(
            entry,
            'subnet-leased',
            `${formatCidr(subnet)} was leased to another instance meanwhile.`,
          );
        return skipped(
          entry,
          'instance-leased',
          `${host.instanceId} was given another lease meanwhile${mine ? ` (${formatCidr(mine.subnet)})` : ''}.`,
        );
      }
      // Every place of the capacity ledger is held (hosts joined since the plan was made).
      if (
        result.conflicts.includes('no-capacity') &&
        result.capacity &&
        result.capacity.used >= result.capacity.capacity
      )
        return skipped(entry, 'route-capacity', room.fullMessage());
      // A place lost to a concurrent write (not a full ledger): try again as it is.
    }
    if (!lease) return skipped(entry, 'route-capacity', room.fullMessage());

    const toWrite = entry.routes.filter((r) => r.action !== 'keep').map((r) => r.routeTableId);
    if (toWrite.length === 0 && !host.nic.sourceDestCheck) {
      this.deps.logger?.info('flannel lease adopted', {
        subnet: formatCidr(subnet),
        instanceId: host.instanceId,
      });
      return { ...entry, outcome: 'adopted' };
    }
    try {
      const written = await this.deps.routes.ensureLeaseRoutes(lease, config, {
        sourceDestCheck: host.nic.sourceDestCheck,
        routeTableIds: toWrite,
      });
      const pending = written.routes.filter((r) => r.state === 'pending').map((r) => r.routeTableId);
      this.deps.logger?.info('flannel lease adopted', {
        subnet: formatCidr(subnet),
        instanceId: host.instanceId,
        routes: written.routes,
      });
      return {
        ...entry,
        outcome: 'adopted',
        ...(pending.length > 0 ? { pendingRouteTableIds: pending } : {}),
      };
    } catch (error) {
      if (!(error instanceof RouteLimitExceededError)) throw error;
      // EC2 counted more routes than the tables showed. Undo the grant but not the routes: the
      // ones kept are flannel's, still carrying the host's traffic.
      await store.delete(lease);
      return skipped(entry, 'route-capacity', error.message);
    }
  }
}

// ---------------------------------------------------------------- the registry's config

function registryConfig(input: unknown): NetworkConfig {
  try {
    return parseNetworkConfig(input);
  } catch (error) {
    if (error instanceof ValidationError) throw registryConfigError(error);
    throw error;
  }
}

const registryConfigError = (error: ValidationError) =>
  new ValidationError(`The registry's network config (<prefix>/config) cannot be used: ${error.message}`, {
    cause: error,
  });

export interface ConfigDifference {
  readonly field: string;
  readonly registry: string;
  readonly published: string;
}

/**
 * The fields flannel knows, with flannel's defaults filled in on both sides. RouteTableID and
 * RouteLimit only when the registry sets them: flannel without RouteTableID used the route
 * table of each host's subnet, and RouteLimit is vpc-lease's own.
 */
export function configDifferences(
  registry: NetworkConfig,
  raw: unknown,
  published: NetworkConfig,
): ConfigDifference[] {
  const a = toFlannelJson(registry);
  const b = toFlannelJson(published);
  const differences: ConfigDifference[] = [];
  const compare = (field: string, x: string, y: string) => {
    if (x !== y) differences.push({ field, registry: x, published: y });
  };
  compare('Network', a.Network, b.Network);
  compare('SubnetLen', String(a.SubnetLen), String(b.SubnetLen));
  compare('SubnetMin', a.SubnetMin, b.SubnetMin);
  compare('SubnetMax', a.SubnetMax, b.SubnetMax);
  const backend = (raw as { Backend?: Record<string, unknown> }).Backend ?? {};
  if (backend.RouteTableID !== undefined) {
    const tables = (ids: readonly string[] | undefined) =>
      ids ? [...ids].sort().join(',') : 'every route table of the VPC';
    compare('Backend.RouteTableID', tables(a.Backend.RouteTableID), tables(b.Backend.RouteTableID));
  }
  if (backend.RouteLimit !== undefined) {
    compare('Backend.RouteLimit', String(a.Backend.RouteLimit), String(b.Backend.RouteLimit));
  }
  return differences;
}

// ---------------------------------------------------------------- helpers

/** Like Promise.all over `items.map(work)`, with at most `limit` at a time; keeps the order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R> | R,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The operator's questions and actions (the /v1/admin routes of docs/api.md): who holds
 * which subnet, how full the route tables are, the network config, revoke, reconcile.
 * Mostly delegation to the lease, config and route services; what is more than that
 * lives here: the lease list's pages and their tokens, and route usage per table.
 */
import { type Cidr, CidrError, compareSubnets, formatCidr, parseSubnetKey, toSubnetKey } from './cidr.js';
import { NotFoundError, ValidationError } from './errors.js';
import { isLive, type Lease } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import type { Clock, InstancePort, LeaseRouteWriter, LeaseStore, RouteEntry, StoredConfig } from './ports.js';
import type { ReconcileReport } from './reconciler.js';
import { type RouteUsage, routeUsage } from './route-capacity.js';
import { familyConfig, familyTable } from './route-family.js';
import { foreignClaims, isOwnedRoute } from './route-ownership.js';
import { findDeadHolders, targetIsDead } from './route-planner.js';

export interface AdminServiceDeps {
  store: Pick<LeaseStore, 'list' | 'getBySubnet'>;
  instances: Pick<InstancePort, 'describeInstances'>;
  leases: { revoke(subnet: Cidr): Promise<{ lease: Lease; config: NetworkConfig } | undefined> };
  configs: {
    get(): Promise<StoredConfig>;
    publish(input: unknown, options?: { expectedVersion?: number }): Promise<StoredConfig>;
  };
  routes: Pick<LeaseRouteWriter, 'tablesInScope'>;
  reconciler: { reconcile(config: NetworkConfig): Promise<ReconcileReport> };
  clock: Clock;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export interface LeasePage {
  leases: Lease[];
  /** the network the leases are cut from, for their JSON */
  config: NetworkConfig;
  /** present when more leases follow: the token of the next page */
  nextToken?: string;
}

export class AdminService {
  constructor(private readonly deps: AdminServiceDeps) {}

  /**
   * One page of every lease, live and expired, in subnet order (by address, then prefix).
   * The token names the last subnet shown, so a page starts after it whatever was granted
   * or revoked meanwhile: a lease present during the whole listing is listed exactly once.
   * Reads the whole lease list per page (one Scan): live leases are bounded by RouteLimit
   * (at most 1000), so a page costs the same as a reconcile's read.
   */
  async listLeases(page: { limit?: number; nextToken?: string } = {}): Promise<LeasePage> {
    const limit = page.limit ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new ValidationError(`limit must be a whole number from 1 to ${MAX_PAGE_SIZE}.`);
    }
    const after = page.nextToken === undefined ? undefined : decodePageToken(page.nextToken);
    const { config } = await this.deps.configs.get();
    const sorted = [...(await this.deps.store.list())].sort((a, b) => compareSubnets(a.subnet, b.subnet));
    const rest = after ? sorted.filter((l) => compareSubnets(l.subnet, after) > 0) : sorted;
    const leases = rest.slice(0, limit);
    const last = leases.at(-1);
    return {
      leases,
      config,
      ...(rest.length > limit && last ? { nextToken: encodePageToken(last.subnet) } : {}),
    };
  }

  /** The lease on `subnet`, live or expired; NotFound when none. */
  async getLease(subnet: Cidr): Promise<{ lease: Lease; config: NetworkConfig }> {
    const [lease, { config }] = await Promise.all([
      this.deps.store.getBySubnet(subnet),
      this.deps.configs.get(),
    ]);
    if (!lease) throw noLease(subnet);
    return { lease, config };
  }

  /** Removes the lease's routes from every table, then the lease; NotFound when none. */
  async revoke(subnet: Cidr): Promise<{ lease: Lease; config: NetworkConfig }> {
    const revoked = await this.deps.leases.revoke(subnet);
    if (!revoked) throw noLease(subnet);
    return revoked;
  }

  /**
   * Usage of every table in scope: one DescribeRouteTables (paginated), one lease list and
   * one DescribeInstances of the live leases' holders. `blackholes` counts the routes EC2
   * marks blackhole and also those whose target is a dead holder's (terminated instance,
   * detached ENI): EC2 marks the latter only once the ENI is deleted, and moto never does.
   * `foreignClaims` lists the ranges inside Network that the table's foreign routes claim.
   * In dual stack the table's IPv6 routes are counted apart, under `ipv6`, by the same rules.
   */
  async routeUsage(): Promise<(RouteUsage & { foreignClaims: string[] })[]> {
    const { config } = await this.deps.configs.get();
    const [tables, leases] = await Promise.all([
      this.deps.routes.tablesInScope(config),
      this.deps.store.list(),
    ]);
    const now = this.deps.clock.now();
    const live = leases.filter((l) => isLive(l, now));
    const holders = [...new Set(live.map((l) => l.instanceId))];
    const instances = holders.length > 0 ? await this.deps.instances.describeInstances(holders) : [];
    const dead = findDeadHolders(live, instances);
    const ipv6 = familyConfig(config, 6);
    const blackholesOf = (family: NetworkConfig, routes: readonly RouteEntry[]) =>
      routes.filter((r) => r.state === 'blackhole' || (isOwnedRoute(family, r) && targetIsDead(r, dead)))
        .length;
    return tables.map((table) => {
      const usage = routeUsage(config, table, live);
      const blackholes = blackholesOf(config, table.routes);
      // Ranges inside Network (and IPv6Network) that foreign routes claim: no lease is granted on a subnet they overlap.
      const claims = foreignClaims(config, [table]);
      if (ipv6) claims.push(...foreignClaims(ipv6, [familyTable(table, 6)]));
      return {
        ...usage,
        blackholes,
        ...(usage.ipv6 && ipv6
          ? { ipv6: { ...usage.ipv6, blackholes: blackholesOf(ipv6, familyTable(table, 6).routes) } }
          : {}),
        foreignClaims: claims,
      };
    });
  }

  getConfig(): Promise<StoredConfig> {
    return this.deps.configs.get();
  }

  /** Validated and published by ConfigService; `expectedVersion` makes it conditional (If-Match). */
  publishConfig(input: unknown, expectedVersion?: number): Promise<StoredConfig> {
    return this.deps.configs.publish(input, expectedVersion === undefined ? {} : { expectedVersion });
  }

  async reconcile(): Promise<ReconcileReport> {
    const { config } = await this.deps.configs.get();
    return this.deps.reconciler.reconcile(config);
  }
}

// ---------------------------------------------------------------- subnet keys and page tokens

/** `10.244.7.0-24`, the path segment of /v1/admin/leases/{subnet}; anything else is a ValidationError. */
export function parseLeaseKey(key: string): Cidr {
  try {
    return parseSubnetKey(key);
  } catch (error) {
    if (error instanceof CidrError) {
      throw new ValidationError(`Invalid subnet in the path: ${error.message}. Write it as 10.244.7.0-24.`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** Opaque to clients: base64url of the last subnet key of the page. */
export const encodePageToken = (subnet: Cidr): string =>
  Buffer.from(toSubnetKey(subnet), 'utf8').toString('base64url');

export function decodePageToken(token: string): Cidr {
  const invalid = () =>
    new ValidationError('nextToken is not a token this API handed out; start again without it.');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(token)) throw invalid();
  let subnet: Cidr;
  try {
    subnet = parseSubnetKey(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  // base64url decoding forgives stray bits; only the canonical spelling is ours.
  if (encodePageToken(subnet) !== token) throw invalid();
  return subnet;
}

const noLease = (subnet: Cidr) => new NotFoundError(`No lease holds ${formatCidr(subnet)}.`);

/**
 * The narrow interfaces the core speaks to. Adapters in shared/adapters implement them
 * against DynamoDB and EC2; the core never sees an SDK type.
 */
import type { Cidr } from './cidr.js';
import type { TransientError } from './errors.js';
import type { Lease, LeaseRoute } from './lease.js';
import type { NetworkConfig } from './network-config.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** The logger shape the core accepts (a subset of Powertools' Logger). */
export interface Logger {
  info(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
  error(message: string, extra?: object): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

// ---------------------------------------------------------------- lease store

export interface StoredConfig {
  readonly config: NetworkConfig;
  /** increases by one with every publish; publishes are conditional on it */
  readonly version: number;
  readonly updatedAt: Date;
}

/** What the route tables in scope looked like at `refreshedAt`; the grant path reads this instead of EC2. */
export interface RouteTableSnapshot {
  readonly tables: readonly {
    readonly routeTableId: string;
    /** IPv4 routes that are not vpc-lease's and count against RouteLimit */
    readonly foreignRoutes: number;
    /** dual stack: likewise for the table's IPv6 routes, which AWS counts on their own */
    readonly foreignIpv6Routes?: number;
  }[];
  /**
   * Ranges strictly inside Network (and in dual stack IPv6Network) that foreign routes claim
   * (route-ownership.ts): no lease is granted on a subnet, or a subnet whose IPv6 partner, they
   * cover or overlap. Absent in snapshots written before it existed.
   */
  readonly foreignClaims?: readonly string[];
  readonly refreshedAt: Date;
}

export interface NewLease {
  readonly subnet: Cidr;
  /** dual stack: the IPv6 subnet paired with `subnet` (network-config.ts pairedIpv6Subnet) */
  readonly ipv6Subnet?: Cidr;
  readonly instanceId: string;
  readonly privateIp: string;
  readonly networkInterfaceId: string;
  readonly expiresAt: Date;
  readonly routes: readonly LeaseRoute[];
}

/** Why an atomic grant did not happen: each names the condition that failed. */
export type GrantConflict = 'subnet-taken' | 'instance-has-lease' | 'no-capacity';

export type GrantResult =
  | { readonly granted: true; readonly lease: Lease }
  | {
      readonly granted: false;
      readonly conflicts: readonly GrantConflict[];
      /** with `no-capacity`: the capacity as the refused write found it (absent after a write conflict) */
      readonly capacity?: CapacityUsage;
    };

export interface Occupancy {
  /** subnets (formatted CIDRs) with a lease item, live or expired */
  readonly subnets: ReadonlySet<string>;
  /** subnets whose lease has expired: reclaim them (routes first) to reuse them */
  readonly expiredSubnets: ReadonlySet<string>;
}

// ---------------------------------------------------------------- capacity (invariant 3)

/**
 * Places in the route tables. Every lease item, live or expired, holds one place: an expired
 * lease's routes stay in the tables until it is reclaimed.
 */
export interface CapacityUsage {
  /** places held: one per lease item */
  readonly used: number;
  /** places the route tables admit: RouteLimit minus the foreign routes of the fullest table */
  readonly capacity: number;
}

/**
 * The route limit's ledger: how many places the route tables admit and how many leases
 * hold one. Taking a place and giving it back are part of the store's own atomic writes
 * (LeaseStore.grant takes one, LeaseStore.delete gives it back, LeaseStore.putConfig resizes
 * with the publish), so no lease can exist without its place; the services never count.
 */
export interface CapacityLedger {
  /** Places held and admitted (strongly consistent); undefined before the first resize. */
  usage(): Promise<CapacityUsage | undefined>;
  /**
   * Sets the capacity the route tables admit now (a reconcile or a route-table re-read found
   * other foreign routes). Never refused for use above it: the tables are that full already,
   * and grants are refused until leases go. Skipped (undefined) when a config with another
   * RouteLimit was published since `routeLimit` was read: that publish set its own capacity.
   */
  resize(capacity: number, routeLimit: number): Promise<CapacityUsage | undefined>;
}

export interface LeaseStore {
  getConfig(): Promise<StoredConfig | undefined>;
  /**
   * Publishes a config and, in the same atomic write, sets the route capacity it gives.
   * Fails with ConflictError when `expectedVersion` is not the stored version, and with
   * CapacityBelowUseError when more places are held than `capacity` admits (hosts joined
   * meanwhile): then nothing changes.
   */
  putConfig(
    config: NetworkConfig,
    expectedVersion: number | undefined,
    now: Date,
    capacity: number,
  ): Promise<StoredConfig>;

  getRouteTableSnapshot(): Promise<RouteTableSnapshot | undefined>;
  putRouteTableSnapshot(snapshot: RouteTableSnapshot): Promise<void>;

  /**
   * What PUT /v1/lease needs first, in one round trip: the config, the route-table snapshot,
   * the capacity's usage and the subnet the instance's claim points to (its lease is then
   * read by subnet).
   */
  getLeaseContext(instanceId: string): Promise<{
    config: StoredConfig | undefined;
    snapshot: RouteTableSnapshot | undefined;
    capacity: CapacityUsage | undefined;
    instanceSubnet: string | undefined;
    /** when the instance last got a new grant (the grant interval's clock), if recorded */
    lastGrantAt: Date | undefined;
  }>;
  /**
   * Records a new grant of the instance at `now` if its previous one was at or before
   * `notAfter` (atomically); false when a newer grant is recorded (the caller answers 429).
   */
  recordGrant(instanceId: string, now: Date, notAfter: Date): Promise<boolean>;
  /** The instance's lease, live or expired (strongly consistent). */
  getByInstance(instanceId: string): Promise<Lease | undefined>;
  /** The lease on a subnet, live or expired (strongly consistent). */
  getBySubnet(subnet: Cidr): Promise<Lease | undefined>;
  /** Every lease, live and expired, in subnet order. */
  list(): Promise<Lease[]>;
  /** Subnets in use (eventually consistent: a hint for choosing, never for deciding). One Scan. */
  occupancy(now: Date): Promise<Occupancy>;
  /**
   * Which of these subnets hold a lease item, live or expired (eventually consistent, a hint):
   * one bounded read, for choosing again after a lost race without scanning the table.
   */
  occupancyOf(subnets: readonly Cidr[], now: Date): Promise<Occupancy>;

  /**
   * Atomically: the subnet and the instance are each free or held by an expired lease
   * (compared with `now`), and the new lease takes both; a subnet nobody held also takes a
   * place of the capacity (`no-capacity` when none is left), while taking over an expired
   * lease's subnet keeps the place that lease held (its route is replaced, not added).
   * The README's invariants 1-3 rest on this one write.
   */
  grant(lease: NewLease, now: Date): Promise<GrantResult>;
  /** Extends a live lease held by the same instance; undefined when it is gone or held by another. */
  renew(lease: Lease, expiresAt: Date): Promise<Lease | undefined>;
  /**
   * Records route states on the lease, if the lease is still the same holder's; also its
   * `ipv6Subnet` when it has one (a lease granted before dual stack learns it this way).
   */
  updateRoutes(lease: Lease, routes: readonly LeaseRoute[]): Promise<Lease | undefined>;
  /**
   * Deletes the lease's items and gives its place back, if they still belong to this holder
   * and, when `onlyIfExpiredAt` is given, only if the lease is still expired at that time (a
   * reclaim must not delete a lease renewed meanwhile). Returns false when nothing was deleted.
   */
  delete(lease: Lease, options?: { onlyIfExpiredAt?: Date }): Promise<boolean>;
}

// ---------------------------------------------------------------- the route writer

/**
 * What the lease, config and import services need from the route side (implemented by
 * RouteWriter in route-writer.ts): the tables in scope, the capacity snapshot, and one
 * lease's routes written or removed.
 */
export interface LeaseRouteWriterOptions {
  /** the lease ENI's source/destination check as the caller just described it; disabled when true */
  readonly sourceDestCheck: boolean;
  /** the tables to write in: every family's route of the config in each */
  readonly routeTableIds?: readonly string[];
  /** or exactly these routes (table and family), e.g. those not active yet */
  readonly routes?: readonly Pick<LeaseRoute, 'routeTableId' | 'family'>[];
}

export interface LeaseRouteWriter {
  /** The tables of Backend.RouteTableID, or every table of the VPC; one paginated Describe. */
  tablesInScope(config: NetworkConfig): Promise<RouteTable[]>;
  /**
   * Stores how many foreign routes each table in scope holds (describing them unless `tables`
   * is given) and sets the route capacity that leaves.
   */
  refreshSnapshot(
    config: NetworkConfig,
    tables?: readonly RouteTable[],
  ): Promise<{ snapshot: RouteTableSnapshot; tables: readonly RouteTable[]; usage?: CapacityUsage }>;
  /**
   * Writes the lease's routes (in dual stack one per table and family). Throws
   * RouteLimitExceededError when EC2 refuses for lack of room; throttling and outages leave
   * the route `pending` and come back as `error`.
   */
  ensureLeaseRoutes(
    lease: Lease,
    config: NetworkConfig,
    options: LeaseRouteWriterOptions,
  ): Promise<{ lease: Lease | undefined; routes: readonly LeaseRoute[]; error: TransientError | undefined }>;
  /** Deletes the lease's routes that still point to its ENI; never another holder's. */
  removeLeaseRoutes(lease: Lease, config: NetworkConfig): Promise<unknown>;
  /**
   * An expired lease (`expiredAt`) or a dead holder's: routes first, then the item if still
   * this holder's (and still expired); a subnet granted again meanwhile gets its routes back.
   */
  reclaim(
    lease: Lease,
    config: NetworkConfig,
    options?: { expiredAt?: Date },
  ): Promise<{ reclaimed: boolean }>;
}

// ---------------------------------------------------------------- EC2

export interface RouteEntry {
  readonly destination: string;
  readonly networkInterfaceId?: string;
  readonly instanceId?: string;
  /** igw-, nat-, pcx-, tgw-, vgw-, local, ... anything that is not an ENI/instance target */
  readonly otherTarget?: string;
  /** EC2 marks a route `blackhole` when its target is gone (moto never does) */
  readonly state: 'active' | 'blackhole';
  /** CreateRouteTable (the local route), CreateRoute, EnableVgwRoutePropagation */
  readonly origin: string;
}

export interface RouteTable {
  readonly routeTableId: string;
  readonly vpcId: string;
  /** IPv4 routes (DestinationCidrBlock) and prefix-list routes */
  readonly routes: readonly RouteEntry[];
  /**
   * IPv6 routes (DestinationIpv6CidrBlock), kept apart because AWS counts them against a
   * "Routes per route table" quota of their own. Optional only so that code that builds
   * IPv4 tables by hand needs no change; the EC2 adapter always fills it.
   */
  readonly ipv6Routes?: readonly RouteEntry[];
}

export type CreateRouteOutcome = 'created' | 'exists';

/**
 * `destination` is an IPv4 CIDR (DestinationCidrBlock) or an IPv6 one (DestinationIpv6CidrBlock,
 * told apart by its colons); IPv6 destinations should be in canonical form (formatCidr), as
 * EC2 describes them.
 */
export interface RouteTablePort {
  /**
   * The tables with these ids, or every table of the VPC when `routeTableIds` is undefined
   * (paginated). A named table that does not exist (or is in another VPC) is refused with a
   * ValidationError naming it, unless `existingOnly`: then it is left out (a table gone).
   */
  describeRouteTables(scope: {
    vpcId: string;
    routeTableIds?: readonly string[];
    existingOnly?: boolean;
  }): Promise<RouteTable[]>;
  /** The route writes throw RouteTableGoneError for a table that does not exist (any more). */
  /** 'exists' when a route to `destination` is already there (whatever its target). */
  createRoute(
    routeTableId: string,
    destination: string,
    networkInterfaceId: string,
  ): Promise<CreateRouteOutcome>;
  replaceRoute(routeTableId: string, destination: string, networkInterfaceId: string): Promise<void>;
  /** 'absent' when there was no such route. */
  deleteRoute(routeTableId: string, destination: string): Promise<'deleted' | 'absent'>;
}

export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

export interface NetworkInterface {
  readonly networkInterfaceId: string;
  readonly privateIps: readonly string[];
  readonly sourceDestCheck: boolean;
}

export interface InstanceInfo {
  readonly instanceId: string;
  readonly state: InstanceState;
  readonly vpcId: string | undefined;
  readonly networkInterfaces: readonly NetworkInterface[];
}

export interface InstancePort {
  /** Instances that exist (unknown ids are left out, not an error), in one paginated Describe. */
  describeInstances(instanceIds: readonly string[]): Promise<InstanceInfo[]>;
  /**
   * Instances of the VPC whose primary private IP is one of `privateIps` (any state; paginated,
   * one Describe per 200 addresses). An address no instance holds is simply left out.
   */
  findByPrivateIps(vpcId: string, privateIps: readonly string[]): Promise<InstanceInfo[]>;
  disableSourceDestCheck(networkInterfaceId: string): Promise<void>;
  /** Every IPv4 CIDR block associated with the VPC. */
  describeVpcCidrs(vpcId: string): Promise<string[]>;
  /** Every IPv6 CIDR block associated with the VPC (Amazon-provided, BYOIP or IPAM); [] when none. */
  describeVpcIpv6Cidrs(vpcId: string): Promise<string[]>;
}

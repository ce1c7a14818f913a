/**
 * The narrow interfaces the core speaks to. Adapters in shared/adapters implement them
 * against DynamoDB and EC2; the core never sees an SDK type.
 */
import type { Cidr } from './cidr.js';
import type { Lease, LeaseRoute } from './lease.js';
import type { NetworkConfig } from './network-config.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

// ---------------------------------------------------------------- lease store

export interface StoredConfig {
  readonly config: NetworkConfig;
  /** increases by one with every publish; publishes are conditional on it */
  readonly version: number;
  readonly updatedAt: Date;
}

/** What the route tables in scope looked like at `refreshedAt`; the grant path reads this instead of EC2. */
export interface RouteTableSnapshot {
  readonly tables: readonly { readonly routeTableId: string; readonly foreignRoutes: number }[];
  readonly refreshedAt: Date;
}

export interface NewLease {
  readonly subnet: Cidr;
  readonly instanceId: string;
  readonly privateIp: string;
  readonly networkInterfaceId: string;
  readonly expiresAt: Date;
  readonly routes: readonly LeaseRoute[];
  readonly slot: number;
}

/** Why an atomic grant did not happen: each names the item whose condition failed. */
export type GrantConflict = 'subnet-taken' | 'instance-has-lease' | 'slot-taken';

export type GrantResult =
  | { readonly granted: true; readonly lease: Lease }
  | { readonly granted: false; readonly conflicts: readonly GrantConflict[] };

export interface Occupancy {
  /** subnets (formatted CIDRs) with a lease item, live or expired */
  readonly subnets: ReadonlySet<string>;
  /** capacity slots with an item, live or expired (an expired one still stands for a route until reclaimed) */
  readonly slots: ReadonlySet<number>;
  /** subnets whose lease has expired: reclaim them (routes first) to reuse them */
  readonly expiredSubnets: ReadonlySet<string>;
  /** slots blocked by a capacity change (tombstones): no grant can take them */
  readonly blockedSlots: ReadonlySet<number>;
  /** expired slots and the lease they were taken for */
  readonly expiredSlots: ReadonlyMap<number, { readonly subnet: string; readonly instanceId: string }>;
}

export interface LeaseStore {
  getConfig(): Promise<StoredConfig | undefined>;
  /** Publishes a config; fails with ConflictError when `expectedVersion` is not the stored version. */
  putConfig(config: NetworkConfig, expectedVersion: number | undefined, now: Date): Promise<StoredConfig>;

  getRouteTableSnapshot(): Promise<RouteTableSnapshot | undefined>;
  putRouteTableSnapshot(snapshot: RouteTableSnapshot): Promise<void>;

  /**
   * What PUT /v1/lease needs first, in one round trip: the config, the route-table snapshot
   * and the subnet the instance's claim points to (its lease is then read by subnet).
   */
  getLeaseContext(instanceId: string): Promise<{
    config: StoredConfig | undefined;
    snapshot: RouteTableSnapshot | undefined;
    instanceSubnet: string | undefined;
  }>;
  /** The instance's lease, live or expired (strongly consistent). */
  getByInstance(instanceId: string): Promise<Lease | undefined>;
  /** The lease on a subnet, live or expired (strongly consistent). */
  getBySubnet(subnet: Cidr): Promise<Lease | undefined>;
  /** Every lease, live and expired, in subnet order. */
  list(): Promise<Lease[]>;
  /** Subnets and slots in use (eventually consistent: a hint for choosing, never for deciding). */
  occupancy(now: Date): Promise<Occupancy>;

  /**
   * Atomically: the subnet and the instance are each free or held by an expired lease
   * (compared with `now`), the slot is free or held by an expired lease on the same subnet,
   * and the new lease takes all three. Invariants 1-3 of DESIGN.md rest on this one write.
   */
  grant(lease: NewLease, now: Date): Promise<GrantResult>;
  /** Extends a live lease held by the same instance; undefined when it is gone or held by another. */
  renew(lease: Lease, expiresAt: Date): Promise<Lease | undefined>;
  /** Records route states on the lease, if the lease is still the same holder's. */
  updateRoutes(lease: Lease, routes: readonly LeaseRoute[]): Promise<Lease | undefined>;
  /**
   * Deletes the lease's items if they still belong to this holder and, when `onlyIfExpiredAt` is given,
   * only if the lease is still expired at that time (a reclaim must not delete a lease renewed meanwhile).
   * Returns false when nothing was deleted.
   */
  delete(lease: Lease, options?: { onlyIfExpiredAt?: Date }): Promise<boolean>;
  /**
   * Moves a live lease to another capacity slot (free, or expired for the same subnet), keeping
   * subnet, instance and expiry, and blocks the slot it leaves; undefined when the lease changed
   * meanwhile or the slot is taken.
   */
  moveSlot(lease: Lease, slot: number, now: Date): Promise<Lease | undefined>;
  /** Blocks a free slot (a tombstone no grant can take); false when the slot is in use. */
  blockSlot(slot: number): Promise<boolean>;
  /** Removes a slot's tombstone; false when it is not blocked. */
  unblockSlot(slot: number): Promise<boolean>;
  /**
   * Deletes a slot item left behind by an expired lease whose subnet has since been taken over
   * (its route now belongs to the new holder). Only if it is still expired and still that lease's.
   */
  deleteStaleSlot(slot: number, holder: { subnet: string; instanceId: string }, now: Date): Promise<boolean>;
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
  /** The tables with these ids, or every table of the VPC when `routeTableIds` is undefined (paginated). */
  describeRouteTables(scope: { vpcId: string; routeTableIds?: readonly string[] }): Promise<RouteTable[]>;
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
  disableSourceDestCheck(networkInterfaceId: string): Promise<void>;
  /** Every IPv4 CIDR block associated with the VPC. */
  describeVpcCidrs(vpcId: string): Promise<string[]>;
  /** Every IPv6 CIDR block associated with the VPC (Amazon-provided, BYOIP or IPAM); [] when none. */
  describeVpcIpv6Cidrs(vpcId: string): Promise<string[]>;
}

/**
 * LeaseStore in memory, for unit tests of the services (as flannel tests its allocator
 * on an in-memory registry). It mirrors DynamoDbLeaseStore item by item: a SUBNET item
 * (the lease) and an INSTANCE item, with the same conditions on each write, and the
 * capacity counter (a place per lease item), so a service behaves the same on both. `expiresAt < now` frees an item; `isLive` is
 * `expiresAt > now`, exactly as in the DynamoDB conditions.
 */
import { type Cidr, formatCidr } from '../../shared/cidr.js';
import { ConflictError } from '../../shared/errors.js';
import type { Lease, LeaseRoute } from '../../shared/lease.js';
import type { NetworkConfig } from '../../shared/network-config.js';
import type {
  GrantConflict,
  GrantResult,
  LeaseStore,
  NewLease,
  Occupancy,
  RouteTableSnapshot,
  StoredConfig,
} from '../../shared/ports.js';

interface ClaimItem {
  readonly subnet: string;
  readonly instanceId: string;
  readonly expiresAt: number;
}

export class MemoryLeaseStore implements LeaseStore {
  private config: StoredConfig | undefined;
  private snapshot: RouteTableSnapshot | undefined;
  private readonly subnets = new Map<string, Lease>();
  private readonly instances = new Map<string, ClaimItem>();
  private capacity: number | undefined;
  /** every call, by method name: tests assert what a service read and wrote */
  readonly calls = new Map<string, number>();

  async getConfig(): Promise<StoredConfig | undefined> {
    this.count('getConfig');
    return this.config;
  }

  async putConfig(
    config: NetworkConfig,
    expectedVersion: number | undefined,
    now: Date,
    capacity: number,
  ): Promise<StoredConfig> {
    this.count('putConfig');
    if (this.config?.version !== expectedVersion) {
      throw new ConflictError(
        'The network config was changed by someone else meanwhile; read it again and retry.',
      );
    }
    if (this.subnets.size > capacity) throw new ConflictError(`${this.subnets.size} places held`);
    this.capacity = capacity;
    this.config = { config, version: (expectedVersion ?? 0) + 1, updatedAt: now };
    return this.config;
  }

  async getRouteTableSnapshot(): Promise<RouteTableSnapshot | undefined> {
    this.count('getRouteTableSnapshot');
    return this.snapshot;
  }

  async putRouteTableSnapshot(snapshot: RouteTableSnapshot): Promise<void> {
    this.count('putRouteTableSnapshot');
    this.snapshot = snapshot;
  }

  async getLeaseContext(instanceId: string) {
    this.count('getLeaseContext');
    return {
      config: this.config,
      snapshot: this.snapshot,
      capacity: this.usage(),
      instanceSubnet: this.instances.get(instanceId)?.subnet,
    };
  }

  async getByInstance(instanceId: string): Promise<Lease | undefined> {
    this.count('getByInstance');
    const claim = this.instances.get(instanceId);
    if (!claim) return undefined;
    const lease = this.subnets.get(claim.subnet);
    return lease?.instanceId === instanceId ? lease : undefined;
  }

  async getBySubnet(subnet: Cidr): Promise<Lease | undefined> {
    this.count('getBySubnet');
    return this.subnets.get(formatCidr(subnet));
  }

  async list(): Promise<Lease[]> {
    this.count('list');
    return [...this.subnets.values()].sort((a, b) =>
      a.subnet.base < b.subnet.base
        ? -1
        : a.subnet.base > b.subnet.base
          ? 1
          : a.subnet.prefix - b.subnet.prefix,
    );
  }

  async occupancy(now: Date): Promise<Occupancy> {
    this.count('occupancy');
    const expired = (at: number) => at <= now.getTime();
    const expiredSubnets = new Set<string>();
    for (const [key, lease] of this.subnets) if (expired(lease.expiresAt.getTime())) expiredSubnets.add(key);
    return { subnets: new Set(this.subnets.keys()), expiredSubnets };
  }

  async occupancyOf(subnets: readonly Cidr[], now: Date): Promise<Occupancy> {
    this.count('occupancyOf');
    const keys = new Set(subnets.map(formatCidr));
    const all = await this.occupancy(now);
    return {
      subnets: new Set([...all.subnets].filter((s) => keys.has(s))),
      expiredSubnets: new Set([...all.expiredSubnets].filter((s) => keys.has(s))),
    };
  }

  async grant(lease: NewLease, now: Date): Promise<GrantResult> {
    this.count('grant');
    const key = formatCidr(lease.subnet);
    const at = now.getTime();
    const free = (item: { expiresAt: number } | undefined) => item === undefined || item.expiresAt < at;
    const current = this.subnets.get(key);
    const conflicts: GrantConflict[] = [];
    if (!free(current && { expiresAt: current.expiresAt.getTime() })) conflicts.push('subnet-taken');
    if (!free(this.instances.get(lease.instanceId))) conflicts.push('instance-has-lease');
    const full = current === undefined && this.capacity !== undefined && this.subnets.size >= this.capacity;
    if (full) conflicts.push('no-capacity');
    if (conflicts.length > 0) {
      const usage = this.usage();
      return { granted: false, conflicts, ...(full && usage ? { capacity: usage } : {}) };
    }

    const granted: Lease = { ...lease, routes: [...lease.routes] };
    this.write(granted);
    return { granted: true, lease: granted };
  }

  async renew(lease: Lease, expiresAt: Date): Promise<Lease | undefined> {
    this.count('renew');
    const key = formatCidr(lease.subnet);
    if (!this.isHolder(lease)) return undefined;
    const current = this.subnets.get(key)!;
    const renewed: Lease = { ...current, expiresAt };
    this.write(renewed);
    return { ...lease, expiresAt };
  }

  async updateRoutes(lease: Lease, routes: readonly LeaseRoute[]): Promise<Lease | undefined> {
    this.count('updateRoutes');
    const key = formatCidr(lease.subnet);
    const current = this.subnets.get(key);
    if (current?.instanceId !== lease.instanceId) return undefined;
    this.subnets.set(key, { ...current, routes: [...routes] });
    return { ...lease, routes: [...routes] };
  }

  async delete(lease: Lease, options: { onlyIfExpiredAt?: Date } = {}): Promise<boolean> {
    this.count('delete');
    const key = formatCidr(lease.subnet);
    const current = this.subnets.get(key);
    if (current?.instanceId !== lease.instanceId) return false;
    if (options.onlyIfExpiredAt && !(current.expiresAt.getTime() < options.onlyIfExpiredAt.getTime()))
      return false;
    this.subnets.delete(key);
    const mine = (item: ClaimItem | undefined) =>
      item?.instanceId === lease.instanceId && item.subnet === key;
    if (mine(this.instances.get(lease.instanceId))) this.instances.delete(lease.instanceId);
    return true;
  }

  // ------------------------------------------------------------ test helpers

  /** Stores a lease as is (expired ones included), bypassing the grant's conditions. */
  put(lease: Lease): Lease {
    this.write(lease);
    return lease;
  }

  private write(lease: Lease): void {
    const key = formatCidr(lease.subnet);
    const claim = { subnet: key, instanceId: lease.instanceId, expiresAt: lease.expiresAt.getTime() };
    this.subnets.set(key, lease);
    this.instances.set(lease.instanceId, claim);
  }

  private isHolder(lease: Lease): boolean {
    const key = formatCidr(lease.subnet);
    const same = (item: { instanceId: string; subnet: string } | undefined) =>
      item?.instanceId === lease.instanceId && item.subnet === key;
    const current = this.subnets.get(key);
    return current?.instanceId === lease.instanceId && same(this.instances.get(lease.instanceId));
  }

  private usage() {
    return this.capacity === undefined ? undefined : { used: this.subnets.size, capacity: this.capacity };
  }

  private count(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }
}

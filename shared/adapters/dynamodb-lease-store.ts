/**
 * LeaseStore on one DynamoDB table (layout in dynamodb-schema.ts).
 *
 * A lease is two items written in one transaction with the capacity ledger's counter, so
 * that each invariant of the README is a condition on one item:
 *   SUBNET#<cidr>   no subnet is held by two live leases        (invariant 1)
 *   INSTANCE#<id>   an instance holds at most one lease          (invariant 2)
 *   CAPACITY        used < capacity: a place per lease item      (invariant 3, dynamodb-capacity-ledger.ts)
 * Each lease item carries the lease's `expiresAt` (epoch ms); an item whose `expiresAt` is in
 * the past may be taken over. DynamoDB's TTL deletion can lag by days, so every
 * decision compares `expiresAt` with the caller's clock, never the item's existence.
 */
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { type Cidr, compareSubnets, formatCidr, parseCidr, parseIpv6Cidr } from '../cidr.js';
import { CapacityBelowUseError, ConflictError, ServiceUnavailableError } from '../errors.js';
import type { Lease, LeaseRoute } from '../lease.js';
import { type NetworkConfig, parseNetworkConfig, toFlannelJson } from '../network-config.js';
import type {
  CapacityUsage,
  GrantConflict,
  GrantResult,
  LeaseStore,
  NewLease,
  Occupancy,
  RouteTableSnapshot,
  StoredConfig,
} from '../ports.js';
import { errorName, toDomainError } from './aws-errors.js';
import { CAPACITY_KEY, DynamoDbCapacityLedger, toUsage } from './dynamodb-capacity-ledger.js';
import { TTL_ATTRIBUTE } from './dynamodb-schema.js';

const CONFIG_KEY = 'CONFIG';
const TABLES_KEY = 'TABLES';
const subnetKey = (subnet: Cidr) => `SUBNET#${formatCidr(subnet)}`;
const instanceKey = (instanceId: string) => `INSTANCE#${instanceId}`;
/** the instance's last new grant (the grant interval, docs/api.md); outlives the lease, so a release does not reset it */
const grantKey = (instanceId: string) => `GRANT#${instanceId}`;

/** Items stay around a week after expiry for forensics, then DynamoDB TTL may delete them. */
const TTL_GRACE_SECONDS = 7 * 24 * 3600;

interface LeaseItem {
  pk: string;
  subnet: string;
  /** dual stack: the paired IPv6 subnet (absent on a lease granted while the config was IPv4 only) */
  ipv6Subnet?: string;
  instanceId: string;
  privateIp: string;
  networkInterfaceId: string;
  expiresAt: number;
  routes: LeaseRoute[];
  ttl: number;
}

/** A condition that failed in a cancelled transaction, with the item as it was (ALL_OLD), if asked for. */
interface FailedItem {
  readonly index: number;
  readonly old: Record<string, unknown> | undefined;
}

export class DynamoDbLeaseStore implements LeaseStore {
  /** the route capacity's counter, which the grant, delete and publish transactions include */
  readonly capacity: DynamoDbCapacityLedger;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {
    this.capacity = new DynamoDbCapacityLedger(client, tableName);
  }

  // ------------------------------------------------------------ config

  async getConfig(): Promise<StoredConfig | undefined> {
    const out = await this.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: CONFIG_KEY }, ConsistentRead: true }),
    );
    return out.Item ? toStoredConfig(out.Item) : undefined;
  }

  async putConfig(
    config: NetworkConfig,
    expectedVersion: number | undefined,
    now: Date,
    capacity: number,
  ): Promise<StoredConfig> {
    const version = (expectedVersion ?? 0) + 1;
    const routeLimit = config.backend.routeLimit;
    await this.capacity.ensure(capacity, routeLimit);
    const failed = await this.transact(
      {
        TransactItems: [
          {
            Put: {
              TableName: this.tableName,
              Item: { pk: CONFIG_KEY, config: toFlannelJson(config), version, updatedAt: now.toISOString() },
              // Optimistic concurrency: two operators publishing at once cannot overwrite each other blindly.
              ...(expectedVersion === undefined
                ? { ConditionExpression: 'attribute_not_exists(pk)' }
                : {
                    ConditionExpression: 'version = :v',
                    ExpressionAttributeValues: { ':v': expectedVersion },
                  }),
            },
          },
          // In the same write: the capacity this config gives, unless more places are held.
          this.capacity.publish(capacity, routeLimit),
        ],
      },
      { onConflict: 'throw' },
    );
    if (failed?.some((f) => f.index === 0)) {
      throw new ConflictError(
        'The network config was changed by someone else meanwhile; read it again and retry.',
      );
    }
    const held = failed?.find((f) => f.index === 1);
    if (held) {
      throw new CapacityBelowUseError({
        used: toUsage(held.old)?.used ?? capacity + 1,
        capacity,
        routeLimit,
      });
    }
    return { config, version, updatedAt: now };
  }

  async getRouteTableSnapshot(): Promise<RouteTableSnapshot | undefined> {
    const out = await this.send(new GetCommand({ TableName: this.tableName, Key: { pk: TABLES_KEY } }));
    return out.Item ? toSnapshot(out.Item) : undefined;
  }

  async putRouteTableSnapshot(snapshot: RouteTableSnapshot): Promise<void> {
    await this.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: TABLES_KEY,
          tables: snapshot.tables,
          foreignClaims: [...(snapshot.foreignClaims ?? [])],
          refreshedAt: snapshot.refreshedAt.toISOString(),
        },
      }),
    );
  }

  /** CONFIG, TABLES, CAPACITY and the instance's claim in one round trip (the hot path of PUT /v1/lease). */
  async getLeaseContext(instanceId: string): Promise<{
    config: StoredConfig | undefined;
    snapshot: RouteTableSnapshot | undefined;
    capacity: CapacityUsage | undefined;
    instanceSubnet: string | undefined;
    lastGrantAt: Date | undefined;
  }> {
    const out = await this.send(
      new BatchGetCommand({
        RequestItems: {
          [this.tableName]: {
            Keys: [
              { pk: CONFIG_KEY },
              { pk: TABLES_KEY },
              { pk: CAPACITY_KEY },
              { pk: instanceKey(instanceId) },
              { pk: grantKey(instanceId) },
            ],
            ConsistentRead: true,
          },
        },
      }),
    );
    const items: Record<string, unknown>[] = [...(out.Responses?.[this.tableName] ?? [])];
    // BatchGet may return keys unprocessed under load; read those one by one.
    const unprocessed = out.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
    for (const key of unprocessed) {
      const one = await this.send(
        new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
      );
      if (one.Item) items.push(one.Item);
    }
    const byKey = new Map(items.map((i) => [i.pk as string, i] as const));
    const config = byKey.get(CONFIG_KEY);
    const tables = byKey.get(TABLES_KEY);
    const instance = byKey.get(instanceKey(instanceId));
    const grant = byKey.get(grantKey(instanceId));
    return {
      lastGrantAt: grant ? new Date(grant.grantedAt as number) : undefined,
      config: config ? toStoredConfig(config) : undefined,
      snapshot: tables ? toSnapshot(tables) : undefined,
      capacity: toUsage(byKey.get(CAPACITY_KEY)),
      instanceSubnet: instance ? (instance.subnet as string) : undefined,
    };
  }

  // ------------------------------------------------------------ reads

  async getByInstance(instanceId: string): Promise<Lease | undefined> {
    const out = await this.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: instanceKey(instanceId) },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return undefined;
    const lease = await this.getBySubnet(parseCidr(out.Item.subnet as string));
    return lease?.instanceId === instanceId ? lease : undefined;
  }

  async getBySubnet(subnet: Cidr): Promise<Lease | undefined> {
    const out = await this.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: subnetKey(subnet) }, ConsistentRead: true }),
    );
    return out.Item ? toLease(out.Item as unknown as LeaseItem) : undefined;
  }

  async list(): Promise<Lease[]> {
    const leases: Lease[] = [];
    for await (const item of this.scan('begins_with(pk, :p)', { ':p': 'SUBNET#' }))
      leases.push(toLease(item as unknown as LeaseItem));
    return leases.sort((a, b) => compareSubnets(a.subnet, b.subnet));
  }

  async occupancy(now: Date): Promise<Occupancy> {
    const subnets = new Set<string>();
    const expiredSubnets = new Set<string>();
    for await (const item of this.scan('begins_with(pk, :s)', { ':s': 'SUBNET#' })) {
      const subnet = item.subnet as string;
      subnets.add(subnet);
      if ((item.expiresAt as number) <= now.getTime()) expiredSubnets.add(subnet);
    }
    return { subnets, expiredSubnets };
  }

  async occupancyOf(candidates: readonly Cidr[], now: Date): Promise<Occupancy> {
    const subnets = new Set<string>();
    const expiredSubnets = new Set<string>();
    // BatchGetItem reads at most 100 keys; the caller asks for a block of a few dozen.
    for (let i = 0; i < candidates.length; i += 100) {
      let keys: Record<string, unknown>[] = candidates.slice(i, i + 100).map((c) => ({ pk: subnetKey(c) }));
      // Unprocessed keys (DynamoDB under load) are asked again, a few times, then left unknown.
      for (let round = 0; round < 3 && keys.length > 0; round++) {
        const out = await this.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ProjectionExpression: 'subnet, expiresAt' } },
          }),
        );
        for (const item of out.Responses?.[this.tableName] ?? []) {
          const subnet = item.subnet as string;
          subnets.add(subnet);
          if ((item.expiresAt as number) <= now.getTime()) expiredSubnets.add(subnet);
        }
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      }
    }
    return { subnets, expiredSubnets };
  }

  // ------------------------------------------------------------ writes

  async grant(lease: NewLease, now: Date): Promise<GrantResult> {
    const item = toItem(lease);
    const values = { ':now': now.getTime() };
    // The instance's claim may be created or taken over from a lease that has expired:
    // `attribute_not_exists(pk)`: it never held one (or released it);
    // `expiresAt < :now`: its previous lease ran out.
    const claim = {
      Put: {
        TableName: this.tableName,
        Item: {
          pk: instanceKey(lease.instanceId),
          expiresAt: item.expiresAt,
          ttl: item.ttl,
          subnet: item.subnet,
          instanceId: item.instanceId,
        },
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
        ExpressionAttributeValues: values,
      },
    };
    // A subnet nobody holds: its lease item is new, and takes a place of the capacity.
    const failed = await this.transact({
      TransactItems: [
        {
          Put: {
            TableName: this.tableName,
            Item: item,
            ConditionExpression: 'attribute_not_exists(pk)',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
        claim,
        this.capacity.take(),
      ],
    });
    if (failed === undefined) return { granted: true, lease: toLease(item) };
    const at = (index: number) => failed.find((f) => f.index === index);
    const held = at(0);
    const expired = held?.old !== undefined && numberOf(held.old.expiresAt) < now.getTime();
    if (expired && !at(1)) {
      // The subnet's lease has expired: take it over. Its place stays with the subnet, as
      // its route does (the new lease replaces it), so the capacity is not asked again.
      const takeover = await this.transact({
        TransactItems: [
          {
            Put: {
              TableName: this.tableName,
              Item: item,
              ConditionExpression: 'attribute_exists(pk) AND expiresAt < :now',
              ExpressionAttributeValues: values,
            },
          },
          claim,
        ],
      });
      if (takeover === undefined) return { granted: true, lease: toLease(item) };
      return { granted: false, conflicts: conflictsOf(takeover.map((f) => f.index)) };
    }
    const full = at(2);
    const conflicts = conflictsOf(failed.filter((f) => f.index !== 2 || !expired).map((f) => f.index));
    const capacity = full ? toUsage(full.old) : undefined;
    return { granted: false, conflicts, ...(capacity ? { capacity } : {}) };
  }

  async renew(lease: Lease, expiresAt: Date): Promise<Lease | undefined> {
    const at = expiresAt.getTime();
    const ttl = ttlFor(at);
    const subnet = formatCidr(lease.subnet);
    const update = (pk: string, condition: string) => ({
      Update: {
        TableName: this.tableName,
        Key: { pk },
        UpdateExpression: 'SET expiresAt = :e, #ttl = :t',
        ConditionExpression: condition,
        ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
        ExpressionAttributeValues: { ':e': at, ':t': ttl, ':i': lease.instanceId, ':s': subnet },
      },
    });
    // Both items must still be this holder's: a lease that expired and lost its subnet or
    // its instance's claim to someone else is not renewed here; the caller acquires again instead. A lasting
    // conflict is no such proof, and must not send the caller down that path: it throws.
    const failed = await this.transact(
      {
        TransactItems: [
          update(subnetKey(lease.subnet), 'instanceId = :i AND subnet = :s'),
          update(instanceKey(lease.instanceId), 'instanceId = :i AND subnet = :s'),
        ],
      },
      { onConflict: 'throw' },
    );
    return failed === undefined ? { ...lease, expiresAt } : undefined;
  }

  async updateRoutes(lease: Lease, routes: readonly LeaseRoute[]): Promise<Lease | undefined> {
    // A lease granted before dual stack was published learns its IPv6 subnet with its IPv6 routes.
    const ipv6 = lease.ipv6Subnet ? formatCidr(lease.ipv6Subnet) : undefined;
    // A failed condition means the lease changed hands; a lasting TransactionConflict proves
    // nothing of the kind, so it is thrown (503, retry) instead of read as "not ours": a
    // release that took it for "not ours" would delete the lease and leave its routes.
    const failed = await this.transact(
      {
        TransactItems: [
          {
            Update: {
              TableName: this.tableName,
              Key: { pk: subnetKey(lease.subnet) },
              UpdateExpression: ipv6 ? 'SET routes = :r, ipv6Subnet = :v6' : 'SET routes = :r',
              ConditionExpression: 'instanceId = :i',
              ExpressionAttributeValues: {
                ':r': routes.map(routeItem),
                ':i': lease.instanceId,
                ...(ipv6 ? { ':v6': ipv6 } : {}),
              },
            },
          },
        ],
      },
      { onConflict: 'throw' },
    );
    if (failed !== undefined) return undefined;
    return { ...lease, routes: [...routes] };
  }

  async delete(lease: Lease, options: { onlyIfExpiredAt?: Date } = {}): Promise<boolean> {
    const subnet = formatCidr(lease.subnet);
    const values = { ':i': lease.instanceId, ':s': subnet };
    const subnetDelete = {
      Delete: {
        TableName: this.tableName,
        Key: { pk: subnetKey(lease.subnet) },
        ConditionExpression:
          options.onlyIfExpiredAt === undefined ? 'instanceId = :i' : 'instanceId = :i AND expiresAt < :now',
        ExpressionAttributeValues:
          options.onlyIfExpiredAt === undefined
            ? values
            : { ...values, ':now': options.onlyIfExpiredAt.getTime() },
      },
    };
    // The instance's claim is deleted only while it still describes this lease: after an
    // expiry it may already belong to a newer lease. The lease item's place goes back with it.
    const claimDelete = {
      Delete: {
        TableName: this.tableName,
        Key: { pk: instanceKey(lease.instanceId) },
        ConditionExpression: 'instanceId = :i AND subnet = :s',
        ExpressionAttributeValues: values,
      },
    };
    let items: TransactItem[] = [subnetDelete, claimDelete, this.capacity.giveBack()];
    for (let attempt = 0; attempt < 3; attempt++) {
      // Only a failed condition drops an item; a lasting conflict throws (all or nothing).
      const failed = await this.transact({ TransactItems: items }, { onConflict: 'throw' });
      if (failed === undefined) return true;
      if (failed.some((f) => f.index === 0)) return false; // the subnet is not (or no longer expired and) ours
      items = items.filter((_, i) => !failed.some((f) => f.index === i));
    }
    return false;
  }

  /**
   * Records a new grant of the instance at `now`, only if its last one was at or before
   * `notAfter` (or there was none): one conditional put, so of two concurrent new grants of
   * one instance only one passes. The item expires (TTL) a day later; nothing reads `ttl`.
   */
  async recordGrant(instanceId: string, now: Date, notAfter: Date): Promise<boolean> {
    return this.conditional(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: grantKey(instanceId),
          grantedAt: now.getTime(),
          [TTL_ATTRIBUTE]: Math.floor(now.getTime() / 1000) + 24 * 3600,
        },
        // absent (first grant), or its last grant is old enough
        ConditionExpression: 'attribute_not_exists(pk) OR grantedAt <= :notAfter',
        ExpressionAttributeValues: { ':notAfter': notAfter.getTime() },
      }),
    );
  }

  /** A single conditional write: true when it happened, false when its condition failed. */
  private async conditional(command: PutCommand): Promise<boolean> {
    try {
      await this.send(command);
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
  // ------------------------------------------------------------ plumbing

  /**
   * Runs a transaction; undefined on success, else the items whose condition failed (with
   * the old item where the write asked for ALL_OLD). A TransactionConflict (another
   * transaction on the same item in flight) is retried a few times with jitter, then
   * reported as a failure of that item, or, with `onConflict: 'throw'`, thrown as
   * ServiceUnavailableError (503, retry): for callers that read a failed item as "not ours
   * any more" (renew, delete), a conflict proves nothing of the kind.
   */
  private async transact(
    input: TransactWriteCommandInput,
    options: { onConflict?: 'report' | 'throw' } = {},
  ): Promise<FailedItem[] | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.send(new TransactWriteCommand(input));
        return undefined;
      } catch (error) {
        if (errorName(error) !== 'TransactionCanceledException') throw error;
        const reasons: { Code?: string; Item?: Record<string, unknown> }[] =
          (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
        const conditionFailed = reasons.flatMap((r, index) =>
          r.Code === 'ConditionalCheckFailed' ? [{ index, old: r.Item }] : [],
        );
        if (conditionFailed.length > 0) return conditionFailed;
        const conflicted = reasons.flatMap((r, index) =>
          r.Code === 'TransactionConflict' ? [{ index, old: undefined }] : [],
        );
        if (attempt >= 3) {
          if (options.onConflict === 'throw') {
            throw new ServiceUnavailableError(
              'DynamoDB kept cancelling the lease update for conflicting concurrent writes; the lease is unchanged. Retry after 1 s.',
              1,
              { cause: error, details: { service: 'DynamoDB', awsError: 'TransactionConflict' } },
            );
          }
          return conflicted.length > 0 ? conflicted : [{ index: 0, old: undefined }];
        }
        await new Promise((r) => setTimeout(r, Math.random() * 20 * 2 ** attempt));
      }
    }
  }

  private async *scan(
    filter: string,
    values: Record<string, unknown>,
  ): AsyncGenerator<Record<string, unknown>> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: filter,
          ExpressionAttributeValues: values,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) yield item;
      start = out.LastEvaluatedKey;
    } while (start);
  }

  // biome-ignore lint/suspicious/noExplicitAny: one funnel for every command type
  private async send(command: any): Promise<any> {
    try {
      return await this.client.send(command);
    } catch (error) {
      throw toDomainError('DynamoDB', error);
    }
  }
}

function toItem(lease: NewLease): LeaseItem {
  const expiresAt = lease.expiresAt.getTime();
  return {
    pk: subnetKey(lease.subnet),
    subnet: formatCidr(lease.subnet),
    ...(lease.ipv6Subnet ? { ipv6Subnet: formatCidr(lease.ipv6Subnet) } : {}),
    instanceId: lease.instanceId,
    privateIp: lease.privateIp,
    networkInterfaceId: lease.networkInterfaceId,
    expiresAt,
    routes: lease.routes.map(routeItem),
    ttl: ttlFor(expiresAt),
  };
}

function toLease(item: LeaseItem): Lease {
  return {
    subnet: parseCidr(item.subnet),
    ...(item.ipv6Subnet ? { ipv6Subnet: parseIpv6Cidr(item.ipv6Subnet) } : {}),
    instanceId: item.instanceId,
    privateIp: item.privateIp,
    networkInterfaceId: item.networkInterfaceId,
    expiresAt: new Date(Number(item.expiresAt)),
    routes: (item.routes ?? []).map(routeItem),
  };
}

/** A route state as stored: `family` only on IPv6 routes (items written before dual stack have none). */
const routeItem = (r: LeaseRoute): LeaseRoute =>
  Number(r.family) === 6
    ? { routeTableId: r.routeTableId, state: r.state, family: 6 }
    : { routeTableId: r.routeTableId, state: r.state };

function toStoredConfig(item: Record<string, unknown>): StoredConfig {
  return {
    config: parseNetworkConfig(item.config),
    version: Number(item.version),
    updatedAt: new Date(item.updatedAt as string),
  };
}

function toSnapshot(item: Record<string, unknown>): RouteTableSnapshot {
  return {
    tables: (
      item.tables as { routeTableId: string; foreignRoutes: number; foreignIpv6Routes?: number }[]
    ).map((t) => ({
      routeTableId: t.routeTableId,
      foreignRoutes: Number(t.foreignRoutes),
      ...(t.foreignIpv6Routes !== undefined ? { foreignIpv6Routes: Number(t.foreignIpv6Routes) } : {}),
    })),
    ...(Array.isArray(item.foreignClaims)
      ? { foreignClaims: (item.foreignClaims as unknown[]).map(String) }
      : {}),
    refreshedAt: new Date(item.refreshedAt as string),
  };
}

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const GRANT_CONFLICTS: readonly GrantConflict[] = ['subnet-taken', 'instance-has-lease', 'no-capacity'];

/** The grant's conflicts, from the indexes of its failed items (subnet, claim, capacity). */
const conflictsOf = (indexes: readonly number[]): GrantConflict[] =>
  indexes.map((i) => GRANT_CONFLICTS[i]).filter((c): c is GrantConflict => c !== undefined);

/** A number attribute, unmarshalled or (in a cancelled transaction's old item) marshalled. */
const numberOf = (value: unknown): number =>
  Number(typeof value === 'object' && value !== null && 'N' in value ? (value as { N: string }).N : value);

const ttlFor = (expiresAtMs: number) => Math.floor(expiresAtMs / 1000) + TTL_GRACE_SECONDS;

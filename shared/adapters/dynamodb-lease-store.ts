/**
 * LeaseStore on one DynamoDB table (layout in dynamodb-schema.ts).
 *
 * A lease is three items written in one transaction, so that each invariant of
 * DESIGN.md is a condition on one item:
 *   SUBNET#<cidr>   no subnet is held by two live leases        (invariant 1)
 *   INSTANCE#<id>   an instance holds at most one lease          (invariant 2)
 *   SLOT#<n>        at most `capacity` live leases (n < capacity) (invariant 3)
 * Each item carries the lease's `expiresAt` (epoch ms); an item whose `expiresAt` is in
 * the past may be taken over. DynamoDB's TTL deletion can lag by days, so every
 * decision compares `expiresAt` with the caller's clock, never the item's existence.
 */
import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { type Cidr, formatCidr, parseCidr } from '../cidr.js';
import { ConflictError, ServiceUnavailableError } from '../errors.js';
import type { Lease, LeaseRoute } from '../lease.js';
import { type NetworkConfig, parseNetworkConfig, toFlannelJson } from '../network-config.js';
import type {
  GrantConflict,
  GrantResult,
  LeaseStore,
  NewLease,
  Occupancy,
  RouteTableSnapshot,
  StoredConfig,
} from '../ports.js';
import { errorName, toDomainError } from './aws-errors.js';
import { TTL_ATTRIBUTE } from './dynamodb-schema.js';

const CONFIG_KEY = 'CONFIG';
const TABLES_KEY = 'TABLES';
const subnetKey = (subnet: Cidr) => `SUBNET#${formatCidr(subnet)}`;
const instanceKey = (instanceId: string) => `INSTANCE#${instanceId}`;
const slotKey = (slot: number) => `SLOT#${slot}`;
/** the instance's last new grant (DESIGN.md grant interval); outlives the lease, so a release does not reset it */
const grantKey = (instanceId: string) => `GRANT#${instanceId}`;

/** Items stay around a week after expiry for forensics, then DynamoDB TTL may delete them. */
const TTL_GRACE_SECONDS = 7 * 24 * 3600;

interface LeaseItem {
  pk: string;
  subnet: string;
  instanceId: string;
  privateIp: string;
  networkInterfaceId: string;
  expiresAt: number;
  slot: number;
  routes: LeaseRoute[];
  ttl: number;
}

export class DynamoDbLeaseStore implements LeaseStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

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
  ): Promise<StoredConfig> {
    const version = (expectedVersion ?? 0) + 1;
    try {
      await this.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: CONFIG_KEY, config: toFlannelJson(config), version, updatedAt: now.toISOString() },
          // Optimistic concurrency: two operators publishing at once cannot overwrite each other blindly.
          ...(expectedVersion === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': expectedVersion } }),
        }),
      );
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') {
        throw new ConflictError(
          'The network config was changed by someone else meanwhile; read it again and retry.',
          {
            cause: error,
          },
        );
      }
      throw error;
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

  /** CONFIG, TABLES and the instance's claim in one round trip (the hot path of PUT /v1/lease). */
  async getLeaseContext(instanceId: string): Promise<{
    config: StoredConfig | undefined;
    snapshot: RouteTableSnapshot | undefined;
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
    return leases.sort(compareLeases);
  }

  async occupancy(now: Date): Promise<Occupancy> {
    const subnets = new Set<string>();
    const slots = new Set<number>();
    const expiredSubnets = new Set<string>();
    const expiredSlots = new Map<number, { subnet: string; instanceId: string }>();
    const blockedSlots = new Set<number>();
    for await (const item of this.scan('begins_with(pk, :s) OR begins_with(pk, :l)', {
      ':s': 'SUBNET#',
      ':l': 'SLOT#',
    })) {
      const expired = (item.expiresAt as number) <= now.getTime();
      const pk = item.pk as string;
      const subnet = item.subnet as string;
      if (pk.startsWith('SLOT#')) {
        const slot = Number(pk.slice(5));
        slots.add(slot);
        if (item.blocked === true) blockedSlots.add(slot);
        else if (expired) expiredSlots.set(slot, { subnet, instanceId: item.instanceId as string });
      } else {
        subnets.add(subnet);
        if (expired) expiredSubnets.add(subnet);
      }
    }
    return { subnets, slots, expiredSubnets, expiredSlots, blockedSlots };
  }

  // ------------------------------------------------------------ writes

  async grant(lease: NewLease, now: Date): Promise<GrantResult> {
    const item = toItem(lease);
    const shared = {
      expiresAt: item.expiresAt,
      ttl: item.ttl,
      subnet: item.subnet,
      instanceId: item.instanceId,
    };
    // Each Put may create its item or take over one whose lease has expired (expiresAt < now).
    // `attribute_not_exists(pk)`: nobody ever held it (or it was released);
    // `expiresAt < :now`: the previous holder's lease ran out, so it is free to take.
    const free = 'attribute_not_exists(pk) OR expiresAt < :now';
    const values = { ':now': now.getTime() };
    const input: TransactWriteCommandInput = {
      TransactItems: [
        {
          Put: {
            TableName: this.tableName,
            Item: item,
            ConditionExpression: free,
            ExpressionAttributeValues: values,
          },
        },
        {
          Put: {
            TableName: this.tableName,
            Item: { pk: instanceKey(lease.instanceId), ...shared, slot: lease.slot },
            ConditionExpression: free,
            ExpressionAttributeValues: values,
          },
        },
        {
          // A slot stands for one route in each table. An expired lease's route is still there
          // until it is reclaimed, so its slot may only be taken over for the same subnet (whose
          // route the new lease replaces); otherwise the old lease must be reclaimed first.
          Put: {
            TableName: this.tableName,
            Item: { pk: slotKey(lease.slot), ...shared },
            ConditionExpression: 'attribute_not_exists(pk) OR (expiresAt < :now AND subnet = :subnet)',
            ExpressionAttributeValues: { ...values, ':subnet': item.subnet },
          },
        },
      ],
    };
    const failed = await this.transact(input);
    if (failed === undefined) return { granted: true, lease: toLease(item) };
    const names: GrantConflict[] = ['subnet-taken', 'instance-has-lease', 'slot-taken'];
    return { granted: false, conflicts: failed.map((i) => names[i]!).filter(Boolean) };
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
    // All three items must still be this holder's: a lease that expired and lost its slot or
    // subnet to someone else is not renewed here; the caller acquires again instead. A lasting
    // conflict is no such proof, and must not send the caller down that path: it throws.
    const failed = await this.transact(
      {
        TransactItems: [
          update(subnetKey(lease.subnet), 'instanceId = :i AND subnet = :s'),
          update(instanceKey(lease.instanceId), 'instanceId = :i AND subnet = :s'),
          update(slotKey(lease.slot), 'instanceId = :i AND subnet = :s'),
        ],
      },
      { onConflict: 'throw' },
    );
    return failed === undefined ? { ...lease, expiresAt } : undefined;
  }

  async updateRoutes(lease: Lease, routes: readonly LeaseRoute[]): Promise<Lease | undefined> {
    try {
      await this.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: { pk: subnetKey(lease.subnet) },
                UpdateExpression: 'SET routes = :r',
                ConditionExpression: 'instanceId = :i',
                ExpressionAttributeValues: { ':r': routes, ':i': lease.instanceId },
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (errorName(error) === 'TransactionCanceledException') return undefined;
      throw error;
    }
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
    // The instance and slot items are deleted only while they still describe this lease:
    // after an expiry either may already belong to a newer lease.
    const claimDelete = (pk: string) => ({
      Delete: {
        TableName: this.tableName,
        Key: { pk },
        ConditionExpression: 'instanceId = :i AND subnet = :s',
        ExpressionAttributeValues: values,
      },
    });
    let slot = lease.slot;
    let items = [subnetDelete, claimDelete(instanceKey(lease.instanceId)), claimDelete(slotKey(slot))];
    for (let attempt = 0; attempt < 3; attempt++) {
      // Only a failed condition drops an item; a lasting conflict throws (all or nothing).
      const failed = await this.transact({ TransactItems: items }, { onConflict: 'throw' });
      if (failed === undefined) return true;
      if (failed.includes(0)) return false; // the subnet is not (or no longer expired and) ours
      // A RouteLimit change may have moved the lease to another slot (moveSlot) since the caller
      // read it: delete the slot the lease holds now, rather than leave it behind.
      const slotIndex = items.findIndex((item) => item.Delete.Key.pk === slotKey(slot));
      const current = failed.includes(slotIndex) ? await this.getBySubnet(lease.subnet) : undefined;
      if (current?.instanceId === lease.instanceId && current.slot !== slot) {
        slot = current.slot;
        items = items.flatMap((item, i) =>
          i === slotIndex ? [claimDelete(slotKey(slot))] : failed.includes(i) ? [] : [item],
        );
        continue;
      }
      items = items.filter((_, i) => !failed.includes(i));
    }
    return false;
  }

  async moveSlot(lease: Lease, slot: number, now: Date): Promise<Lease | undefined> {
    const subnet = formatCidr(lease.subnet);
    const expiresAt = lease.expiresAt.getTime();
    const holder = { ':i': lease.instanceId, ':s': subnet, ':old': lease.slot };
    const failed = await this.transact({
      TransactItems: [
        {
          Put: {
            TableName: this.tableName,
            Item: {
              pk: slotKey(slot),
              subnet,
              instanceId: lease.instanceId,
              expiresAt,
              ttl: ttlFor(expiresAt),
            },
            // the same rule as in grant: free, or expired and taken for this very subnet
            ConditionExpression: 'attribute_not_exists(pk) OR (expiresAt < :now AND subnet = :s)',
            ExpressionAttributeValues: { ':now': now.getTime(), ':s': subnet },
          },
        },
        {
          // The slot left behind is above the capacity: block it, so no grant that read an
          // older, larger capacity can land there.
          Put: {
            TableName: this.tableName,
            Item: { pk: slotKey(lease.slot), blocked: true },
            ConditionExpression: 'instanceId = :i AND subnet = :s',
            ExpressionAttributeValues: { ':i': lease.instanceId, ':s': subnet },
          },
        },
        ...[subnetKey(lease.subnet), instanceKey(lease.instanceId)].map((pk) => ({
          Update: {
            TableName: this.tableName,
            Key: { pk },
            UpdateExpression: 'SET slot = :new',
            ConditionExpression: 'instanceId = :i AND subnet = :s AND slot = :old',
            ExpressionAttributeValues: { ...holder, ':new': slot },
          },
        })),
      ],
    });
    return failed === undefined ? { ...lease, slot } : undefined;
  }

  async blockSlot(slot: number): Promise<boolean> {
    return this.conditional(
      new PutCommand({
        TableName: this.tableName,
        // no expiresAt: neither "free" nor "expired" in any grant condition, so never taken
        Item: { pk: slotKey(slot), blocked: true },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async unblockSlot(slot: number): Promise<boolean> {
    return this.conditional(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { pk: slotKey(slot) },
        ConditionExpression: 'blocked = :t',
        ExpressionAttributeValues: { ':t': true },
      }),
    );
  }

  async deleteStaleSlot(
    slot: number,
    holder: { subnet: string; instanceId: string },
    now: Date,
  ): Promise<boolean> {
    return this.conditional(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { pk: slotKey(slot) },
        ConditionExpression: 'expiresAt < :now AND instanceId = :i AND subnet = :s',
        ExpressionAttributeValues: { ':now': now.getTime(), ':i': holder.instanceId, ':s': holder.subnet },
      }),
    );
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

  // ------------------------------------------------------------ plumbing

  /** A single conditional write: true when it happened, false when its condition failed. */
  private async conditional(command: PutCommand | DeleteCommand): Promise<boolean> {
    try {
      await this.send(command);
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /**
   * Runs a transaction; undefined on success, else the indexes of the items whose
   * condition failed. A TransactionConflict (another transaction on the same item in
   * flight) is retried a few times with jitter, then reported as a failure of that item,
   * or, with `onConflict: 'throw'`, thrown as ServiceUnavailableError (503, retry): for
   * callers that read a failed item as "not ours any more" (renew, delete), a conflict
   * proves nothing of the kind.
   */
  private async transact(
    input: TransactWriteCommandInput,
    options: { onConflict?: 'report' | 'throw' } = {},
  ): Promise<number[] | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.send(new TransactWriteCommand(input));
        return undefined;
      } catch (error) {
        if (errorName(error) !== 'TransactionCanceledException') throw error;
        const reasons: { Code?: string }[] =
          (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
        const conditionFailed = reasons.flatMap((r, i) => (r.Code === 'ConditionalCheckFailed' ? [i] : []));
        if (conditionFailed.length > 0) return conditionFailed;
        const conflicted = reasons.flatMap((r, i) => (r.Code === 'TransactionConflict' ? [i] : []));
        if (attempt >= 3) {
          if (options.onConflict === 'throw') {
            throw new ServiceUnavailableError(
              'DynamoDB kept cancelling the lease update for conflicting concurrent writes; the lease is unchanged. Retry after 1 s.',
              1,
              { cause: error, details: { service: 'DynamoDB', awsError: 'TransactionConflict' } },
            );
          }
          return conflicted.length > 0 ? conflicted : [0];
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
    instanceId: lease.instanceId,
    privateIp: lease.privateIp,
    networkInterfaceId: lease.networkInterfaceId,
    expiresAt,
    slot: lease.slot,
    routes: [...lease.routes],
    ttl: ttlFor(expiresAt),
  };
}

function toLease(item: LeaseItem): Lease {
  return {
    subnet: parseCidr(item.subnet),
    instanceId: item.instanceId,
    privateIp: item.privateIp,
    networkInterfaceId: item.networkInterfaceId,
    expiresAt: new Date(Number(item.expiresAt)),
    slot: Number(item.slot),
    routes: (item.routes ?? []).map((r) => ({ routeTableId: r.routeTableId, state: r.state })),
  };
}

function toStoredConfig(item: Record<string, unknown>): StoredConfig {
  return {
    config: parseNetworkConfig(item.config),
    version: Number(item.version),
    updatedAt: new Date(item.updatedAt as string),
  };
}

function toSnapshot(item: Record<string, unknown>): RouteTableSnapshot {
  return {
    tables: (item.tables as { routeTableId: string; foreignRoutes: number }[]).map((t) => ({
      routeTableId: t.routeTableId,
      foreignRoutes: Number(t.foreignRoutes),
    })),
    ...(Array.isArray(item.foreignClaims)
      ? { foreignClaims: (item.foreignClaims as unknown[]).map(String) }
      : {}),
    refreshedAt: new Date(item.refreshedAt as string),
  };
}

const ttlFor = (expiresAtMs: number) => Math.floor(expiresAtMs / 1000) + TTL_GRACE_SECONDS;

function compareLeases(a: Lease, b: Lease): number {
  return a.subnet.base < b.subnet.base ? -1 : a.subnet.base > b.subnet.base ? 1 : 0;
}

/**
 * The route limit's ledger (CapacityLedger) on the lease table: one item,
 *
 *   CAPACITY   { used, capacity, routeLimit }
 *
 * `used` counts the lease items (SUBNET#…, live or expired: an expired lease's routes stay
 * in the tables until it is reclaimed). It changes only inside the store's transactions,
 * together with the lease item it counts: a grant that creates a SUBNET# item adds one
 * (`take`, on condition `used < capacity`), a delete of one takes one away (`giveBack`),
 * and taking over an expired lease's subnet leaves it as it is (the new lease replaces
 * that lease's route, it adds none). So `used` is always the number of lease items, and no
 * grant can pass `capacity`, whatever runs concurrently.
 *
 * `capacity` (RouteLimit minus the foreign routes of the fullest table) is set by the config
 * publish, in the transaction that publishes (`publish`, on condition `used <= capacity`: a
 * RouteLimit below current use is refused, also when hosts join during the publish), and by
 * `resize` when a reconcile finds other foreign routes. `routeLimit` records which config's
 * RouteLimit the capacity comes from, so that a reconcile that read an older config cannot
 * undo a publish.
 *
 * Why one item and not one per place (slots) or several counters: measured in the lease
 * storm (docs/design.md, "Route capacity"), one counter needs the fewest requests and grant
 * attempts per lease, and it needs no re-aligning when the capacity changes.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { CapacityLedger, CapacityUsage } from '../ports.js';
import { errorName, toDomainError } from './aws-errors.js';

export const CAPACITY_KEY = 'CAPACITY';

/** One element of TransactItems (lib-dynamodb's shape, attribute values unmarshalled). */
export interface LedgerTransactItem {
  Update: {
    TableName: string;
    Key: { pk: string };
    UpdateExpression: string;
    ConditionExpression: string;
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues: Record<string, unknown>;
    ReturnValuesOnConditionCheckFailure?: 'ALL_OLD';
  };
}

export class DynamoDbCapacityLedger implements CapacityLedger {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Takes a place: fails while every place is held (or before the first resize). Returns the item then. */
  take(): LedgerTransactItem {
    return {
      Update: {
        TableName: this.tableName,
        Key: { pk: CAPACITY_KEY },
        UpdateExpression: 'ADD used :one',
        // both are attributes of the item: a capacity set meanwhile is the one that counts
        ConditionExpression: 'used < #capacity',
        ExpressionAttributeNames: { '#capacity': 'capacity' },
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /** Gives a place back, with the delete of the lease item that held it. */
  giveBack(): LedgerTransactItem {
    return {
      Update: {
        TableName: this.tableName,
        Key: { pk: CAPACITY_KEY },
        UpdateExpression: 'ADD used :minusOne',
        // never below zero, and never creates the item (ADD would, with used = -1)
        ConditionExpression: 'used > :zero',
        ExpressionAttributeValues: { ':minusOne': -1, ':zero': 0 },
      },
    };
  }

  /** Sets the capacity a config publish gives, only if no more places are held than it admits. */
  publish(capacity: number, routeLimit: number): LedgerTransactItem {
    return {
      Update: {
        TableName: this.tableName,
        Key: { pk: CAPACITY_KEY },
        UpdateExpression: 'SET #capacity = :capacity, routeLimit = :routeLimit',
        ConditionExpression: 'used <= :capacity',
        ExpressionAttributeNames: { '#capacity': 'capacity' },
        ExpressionAttributeValues: { ':capacity': capacity, ':routeLimit': routeLimit },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  async usage(): Promise<CapacityUsage | undefined> {
    const out = await this.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: CAPACITY_KEY }, ConsistentRead: true }),
    );
    return toUsage(out.Item);
  }

  async resize(capacity: number, routeLimit: number): Promise<CapacityUsage | undefined> {
    try {
      const out = await this.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: CAPACITY_KEY },
          UpdateExpression: 'SET #capacity = :capacity',
          ConditionExpression: 'routeLimit = :routeLimit',
          ExpressionAttributeNames: { '#capacity': 'capacity' },
          ExpressionAttributeValues: { ':capacity': capacity, ':routeLimit': routeLimit },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toUsage(out.Attributes);
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
    }
    if (await this.usage()) return undefined; // another RouteLimit was published meanwhile
    return this.create(capacity, routeLimit);
  }

  /** Makes sure the item exists before a transaction that conditions on it (a config publish). */
  async ensure(capacity: number, routeLimit: number): Promise<void> {
    if (!(await this.usage())) await this.create(capacity, routeLimit);
  }

  /**
   * The first resize of a table: counts the lease items already there (a table written before
   * the ledger existed), then creates the item. Until it exists no grant can take a place, so
   * the count cannot grow meanwhile; a lease deleted meanwhile can only leave it one too high.
   */
  private async create(capacity: number, routeLimit: number): Promise<CapacityUsage | undefined> {
    let used = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'begins_with(pk, :lease)',
          ExpressionAttributeValues: { ':lease': 'SUBNET#' },
          Select: 'COUNT',
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      used += out.Count ?? 0;
      start = out.LastEvaluatedKey;
    } while (start);
    try {
      await this.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: CAPACITY_KEY, used, capacity, routeLimit },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { used, capacity };
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
      return undefined; // created concurrently, by a publish or another resize
    }
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

/**
 * The usage an item holds: the item read (unmarshalled), or the old item a cancelled
 * transaction returned (marshalled: CancellationReasons are not unmarshalled by lib-dynamodb).
 */
export function toUsage(item: Record<string, unknown> | undefined): CapacityUsage | undefined {
  if (!item || item.used === undefined || item.capacity === undefined) return undefined;
  const number = (value: unknown) =>
    Number(typeof value === 'object' && value !== null && 'N' in value ? (value as { N: string }).N : value);
  return { used: number(item.used), capacity: number(item.capacity) };
}

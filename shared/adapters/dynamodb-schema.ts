/**
 * The one DynamoDB table. Single-table layout, every item keyed by `pk` alone
 * (spreading keys over partitions keeps a join storm off one hot partition):
 *
 *   CONFIG                  the published network config and its version
 *   TABLES                  route-table snapshot (foreign routes per table) the grant path reads
 *   SUBNET#10.244.7.0/24    a lease, keyed by subnet            (invariant 1)
 *   INSTANCE#i-0abc...      the instance's claim on its lease   (invariant 2)
 *   CAPACITY                places held / admitted in the routes (invariant 3, dynamodb-capacity-ledger.ts)
 *
 * `ttl` (epoch seconds) lets DynamoDB tidy up expired items eventually; no decision reads it.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export const TTL_ATTRIBUTE = 'ttl';

export const tableDefinition = (tableName: string): CreateTableCommandInput => ({
  TableName: tableName,
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
});

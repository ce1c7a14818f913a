/**
 * The moto the project launches replaces TransactWriteItems' whole-table rollback with one
 * in proportion to the items written (scripts/lib/moto_dynamodb_fast_tx.py). These pin the
 * semantics the store relies on, as DynamoDB documents them: all or nothing, one
 * CancellationReason per item in order, the old item under ReturnValuesOnConditionCheckFailure.
 */
import { PutCommand, ScanCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { useMoto } from '../support/aws.js';

describe('TransactWriteItems in the launched moto', () => {
  const aws = useMoto();
  let table: string;

  beforeEach(async () => {
    table = await aws.newTable();
    for (const [pk, n] of [
      ['KEPT', 1],
      ['UPDATED', 10],
      ['DELETED', 100],
    ] as const)
      await aws.dynamo.send(new PutCommand({ TableName: table, Item: { pk, n } }));
  });

  const items = async () =>
    ((await aws.dynamo.send(new ScanCommand({ TableName: table }))).Items ?? []).sort((a, b) =>
      String(a.pk).localeCompare(String(b.pk)),
    );

  /** A put of a new item, an update, a delete, and last a put whose condition is `check`. */
  const transaction = (check: string) =>
    new TransactWriteCommand({
      TransactItems: [
        {
          Put: {
            TableName: table,
            Item: { pk: 'NEW', n: 0 },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Update: {
            TableName: table,
            Key: { pk: 'UPDATED' },
            UpdateExpression: 'ADD n :one',
            ConditionExpression: 'n < :limit',
            ExpressionAttributeValues: { ':one': 1, ':limit': 11 },
          },
        },
        { Delete: { TableName: table, Key: { pk: 'DELETED' }, ConditionExpression: 'attribute_exists(pk)' } },
        {
          Put: {
            TableName: table,
            Item: { pk: 'KEPT', n: 2 },
            ConditionExpression: check,
            ExpressionAttributeValues: { ':n': 1 },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
      ],
    });

  it('writes every item when every condition holds', async () => {
    await aws.dynamo.send(transaction('n = :n'));

    expect(await items()).toEqual([
      { pk: 'KEPT', n: 2 },
      { pk: 'NEW', n: 0 },
      { pk: 'UPDATED', n: 11 },
    ]);
  });

  it('writes nothing when the last condition fails, and names that item with its old value', async () => {
    const before = await items();

    const error = await aws.dynamo.send(transaction('n <> :n')).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'TransactionCanceledException' });
    const reasons = (error as { CancellationReasons: { Code: string; Item?: unknown }[] })
      .CancellationReasons;
    expect(reasons.map((r) => r.Code)).toEqual(['None', 'None', 'None', 'ConditionalCheckFailed']);
    expect(reasons[3]?.Item).toEqual({ pk: { S: 'KEPT' }, n: { N: '1' } });
    expect(await items()).toEqual(before);
  });

  it('reports every failed condition, not only the first, and writes nothing', async () => {
    await aws.dynamo.send(new PutCommand({ TableName: table, Item: { pk: 'NEW', n: 5 } }));
    const before = await items();

    const error = await aws.dynamo.send(transaction('n <> :n')).catch((e: unknown) => e);

    const reasons = (error as { CancellationReasons: { Code: string }[] }).CancellationReasons;
    expect(reasons.map((r) => r.Code)).toEqual([
      'ConditionalCheckFailed',
      'None',
      'None',
      'ConditionalCheckFailed',
    ]);
    expect(await items()).toEqual(before);
  });

  it('refuses two operations on one item with a ValidationException, and writes nothing', async () => {
    const before = await items();

    const error = await aws.dynamo
      .send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: table, Item: { pk: 'NEW', n: 1 } } },
            { Delete: { TableName: table, Key: { pk: 'UPDATED' } } },
            { Put: { TableName: table, Item: { pk: 'NEW', n: 2 } } },
          ],
        }),
      )
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'ValidationException' });
    expect(await items()).toEqual(before);
  });
});

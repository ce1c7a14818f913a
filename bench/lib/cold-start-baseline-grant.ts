/**
 * The lease function's fair cold-start baseline: the same SDK clients (DynamoDB through the
 * document client, EC2) and the same request sequence as the measured invocation, a new
 * grant — 4 DynamoDB and 3 EC2 requests, in the grant's order — and nothing else: no
 * project code, no Powertools, no middy, no checks. The lease function over this baseline is
 * then the cost of vpc-lease's own code and bundle, not of moto answering 7 requests instead
 * of 2 (#16).
 *
 * Its writes stay out of the project's way: DynamoDB items under `BASELINE#` (the project
 * reads only its own keys and prefixes), routes in a route table of their own that no
 * network config names. The event (written by cold-start-suite.ts) says which.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateRouteCommand,
  DescribeInstancesCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
} from '@aws-sdk/client-ec2';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';

export interface GrantBaselineEvent {
  /** a running instance of the scene (the host whose grant the lease function served) */
  readonly instanceId: string;
  /** the baseline's own route table */
  readonly routeTableId: string;
  /** a destination not used before in that table */
  readonly destination: string;
}

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const ec2 = new EC2Client({});

export const handler = async (event: GrantBaselineEvent): Promise<{ statusCode: number }> => {
  const TableName = process.env.TABLE_NAME!;
  const now = Date.now();
  const subnetKey = `BASELINE#SUBNET#${event.destination}`;
  const instanceKey = `BASELINE#INSTANCE#${event.instanceId}`;
  const grantKey = `BASELINE#GRANT#${event.instanceId}`;
  // 1. the context read: the same shared items the lease function reads, plus two absent keys
  await dynamo.send(
    new BatchGetCommand({
      RequestItems: {
        [TableName]: {
          Keys: [
            { pk: 'CONFIG' },
            { pk: 'TABLES' },
            { pk: 'CAPACITY' },
            { pk: instanceKey },
            { pk: grantKey },
          ],
          ConsistentRead: true,
        },
      },
    }),
  );
  // 2. the instance
  const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [event.instanceId] }));
  const networkInterfaceId =
    described.Reservations?.[0]?.Instances?.[0]?.NetworkInterfaces?.[0]?.NetworkInterfaceId;
  // 3. a conditional put (the grant turn)
  await dynamo.send(
    new PutCommand({
      TableName,
      Item: { pk: grantKey, grantedAt: now, ttl: Math.floor(now / 1000) },
      ConditionExpression: 'attribute_not_exists(pk) OR grantedAt <= :notAfter',
      ExpressionAttributeValues: { ':notAfter': now },
    }),
  );
  // 4. a three-item transaction (the grant)
  await dynamo.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Put: {
            TableName,
            Item: { pk: subnetKey, instanceId: event.instanceId, subnet: event.destination, expiresAt: now },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Put: {
            TableName,
            Item: { pk: instanceKey, instanceId: event.instanceId, subnet: event.destination },
          },
        },
        {
          Update: {
            TableName,
            Key: { pk: 'BASELINE#CAPACITY' },
            UpdateExpression: 'ADD used :one',
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
    }),
  );
  // 5. the source/destination check off, 6. the route
  await ec2.send(
    new ModifyNetworkInterfaceAttributeCommand({
      NetworkInterfaceId: networkInterfaceId,
      SourceDestCheck: { Value: false },
    }),
  );
  await ec2.send(
    new CreateRouteCommand({
      RouteTableId: event.routeTableId,
      DestinationCidrBlock: event.destination,
      NetworkInterfaceId: networkInterfaceId,
    }),
  );
  // 7. the route states, in a one-item transaction
  await dynamo.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName,
            Key: { pk: subnetKey },
            UpdateExpression: 'SET routes = :r',
            ConditionExpression: 'instanceId = :i',
            ExpressionAttributeValues: {
              ':r': [{ routeTableId: event.routeTableId, state: 'active' }],
              ':i': event.instanceId,
            },
          },
        },
      ],
    }),
  );
  return { statusCode: 200 };
};

/**
 * The cold-start baseline: the same SDK clients the functions hold (DynamoDB through the
 * document client, EC2) and nothing else; its one invocation sends one request on each.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const ec2 = new EC2Client({});

export const handler = async (): Promise<{ statusCode: number }> => {
  await dynamo.send(new GetCommand({ TableName: process.env.TABLE_NAME, Key: { pk: 'CONFIG' } }));
  await ec2.send(
    new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [process.env.VPC_ID!] }] }),
  );
  return { statusCode: 200 };
};

/** API Gateway HTTP API (payload v2) events, as API Gateway sends them with AWS_IAM auth. */
import type { Context } from 'aws-lambda';
import type { HostIdentityPolicy } from '../../shared/caller-identity.js';
import type { HttpEvent } from '../../shared/http/middleware.js';

/** The host identity the handlers under test trust: role vpc-lease-host of account 123456789012. */
export const TEST_HOSTS: HostIdentityPolicy = {
  accountId: '123456789012',
  hostRoleNames: ['vpc-lease-host'],
};

export const hostArn = (instanceId: string) =>
  `arn:aws:sts::123456789012:assumed-role/vpc-lease-host/${instanceId}`;
export const OPERATOR_ARN = 'arn:aws:sts::123456789012:assumed-role/vpc-lease-operator/alice';

export function httpEvent(options: {
  method: string;
  path: string;
  /** the route template, e.g. /v1/admin/leases/{subnet}; defaults to path */
  route?: string;
  body?: string | object;
  headers?: Record<string, string>;
  /** undefined = no IAM identity */
  userArn?: string | undefined;
  pathParameters?: Record<string, string>;
  queryStringParameters?: Record<string, string>;
}): HttpEvent {
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return {
    version: '2.0',
    routeKey: `${options.method} ${options.route ?? options.path}`,
    rawPath: options.path,
    rawQueryString: new URLSearchParams(options.queryStringParameters ?? {}).toString(),
    headers: { 'content-type': 'application/json', ...(options.headers ?? {}) },
    ...(options.queryStringParameters ? { queryStringParameters: options.queryStringParameters } : {}),
    ...(options.pathParameters ? { pathParameters: options.pathParameters } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'test',
      domainName: 'test.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'test',
      http: {
        method: options.method,
        path: options.path,
        protocol: 'HTTP/1.1',
        sourceIp: '10.0.0.1',
        userAgent: 'vitest',
      },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: `${options.method} ${options.route ?? options.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      ...(options.userArn !== undefined ? { authorizer: { iam: { userArn: options.userArn } } } : {}),
    },
    ...(body !== undefined ? { body } : {}),
    isBase64Encoded: false,
  } as HttpEvent;
}

/** EventBridge's "EC2 Instance State-change Notification" for one instance. */
export function instanceStateEvent(
  instanceId: string,
  state: string,
  id = `evt-${Math.random().toString(36).slice(2)}`,
) {
  return {
    version: '0',
    id,
    'detail-type': 'EC2 Instance State-change Notification' as const,
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId as unknown, state: state as unknown },
  };
}

/** The scheduler's event for the reconcile (rate 5 minutes). */
export function scheduledEvent() {
  return {
    version: '0',
    id: `evt-${Math.random().toString(36).slice(2)}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/vpc-lease-reconcile'],
    detail: {},
  };
}

export const lambdaContext = (functionName = 'vpc-lease-test'): Context =>
  ({
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `aws-${Math.random().toString(36).slice(2)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

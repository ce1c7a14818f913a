/**
 * The events API Gateway (HTTP API, payload 2.0, AWS_IAM auth) hands the functions, and
 * the EventBridge / scheduler events of the other functions: what the cold-start runs and
 * the simulated agents send.
 */
import type { HttpEvent } from '../../shared/http/middleware.js';

export const hostArn = (instanceId: string) =>
  `arn:aws:sts::123456789012:assumed-role/vpc-lease-host/${instanceId}`;
export const OPERATOR_ARN = 'arn:aws:sts::123456789012:assumed-role/vpc-lease-operator/bench';

export function httpEvent(options: {
  method: string;
  path: string;
  userArn: string;
  body?: object;
}): HttpEvent {
  const routeKey = `${options.method} ${options.path}`;
  return {
    version: '2.0',
    routeKey,
    rawPath: options.path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      accountId: '123456789012',
      apiId: 'bench',
      domainName: 'bench.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'bench',
      http: {
        method: options.method,
        path: options.path,
        protocol: 'HTTP/1.1',
        sourceIp: '10.0.0.1',
        userAgent: 'bench',
      },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      authorizer: { iam: { userArn: options.userArn } },
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    isBase64Encoded: false,
  } as HttpEvent;
}

export function instanceStateEvent(instanceId: string, state: string) {
  return {
    version: '0',
    id: `bench-${Math.random().toString(36).slice(2)}`,
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
  };
}

export function scheduledEvent() {
  return {
    version: '0',
    id: `bench-${Math.random().toString(36).slice(2)}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/vpc-lease-reconcile'],
    detail: {},
  };
}

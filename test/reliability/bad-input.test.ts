/**
 * Hostile and broken requests over every route of the lease and admin functions, through
 * their real middy chains on moto: wrong types, huge and deeply nested JSON, unicode and
 * control characters, prototype keys, CIDR edge cases, path traversal in {subnet}, wrong
 * identity shapes, odd and repeated headers, base64 bodies, bodies at and over 8 KiB.
 *
 * Each must get a 4xx with an error code and a message for a person, change nothing (a
 * full scan of the lease table and every route table of the VPC, compared before and
 * after), and log nothing at error level and no stack trace at any level (the Powertools
 * logger's own output, captured).
 */
import { DescribeRouteTablesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminHandler } from '../../functions/admin.js';
import { buildLeaseHandler } from '../../functions/lease.js';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import { MAX_BODY_BYTES } from '../../shared/http/contract.js';
import type { HttpEvent } from '../../shared/http/middleware.js';
import { useMoto } from '../support/aws.js';
import { type ControlPlane, createControlPlane } from '../support/control-plane.js';
import { hostArn, httpEvent, lambdaContext, OPERATOR_ARN, TEST_HOSTS } from '../support/events.js';
import { scanItems } from '../support/invariants.js';
import { CapturingLogger } from '../support/log-capture.js';

const aws = useMoto();
const log = new CapturingLogger();
let plane: ControlPlane;
let host: LaunchedInstance;
/** holds a lease with routes: what an impersonator would release or take over */
let victim: LaunchedInstance;
let lease: (event: HttpEvent) => Promise<{ statusCode?: number; body?: string }>;
let admin: (event: HttpEvent) => Promise<{ statusCode?: number; body?: string }>;
let stateBefore: string;

const LEASE_ROUTE = '/v1/admin/leases/{subnet}';

/** Everything a request could change: every item of the table, every route of the VPC. */
async function state(): Promise<string> {
  const items = await scanItems({ client: aws.dynamo, tableName: plane.environment.tableName });
  const tables = await aws.ec2.send(
    new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [plane.vpc.vpcId] }] }),
  );
  const routes = (tables.RouteTables ?? [])
    .map((t) => ({ id: t.RouteTableId, routes: t.Routes }))
    .sort((a, b) => String(a.id).localeCompare(String(b.id)));
  return JSON.stringify({ items, routes });
}

beforeAll(async () => {
  plane = await createControlPlane(aws, {
    config: { Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc', RouteLimit: 20 } },
  });
  const hosts = await plane.launch(3);
  host = hosts[0]!;
  victim = hosts[1]!;
  // Some state to protect: two hosts hold leases with routes; the first host holds none.
  for (const h of hosts.slice(1)) await plane.leases.acquire(h.instanceId, { privateIp: h.privateIp });
  const service = plane.admin;
  const leaseHandler = buildLeaseHandler({ leases: plane.leases, hosts: TEST_HOSTS, logger: log });
  const adminHandler = buildAdminHandler({ admin: service, hosts: TEST_HOSTS, logger: log });
  lease = (event) => leaseHandler(event, lambdaContext('vpc-lease-test-lease'));
  admin = (event) => adminHandler(event, lambdaContext('vpc-lease-test-admin'));
  stateBefore = await state();
});

afterAll(() => {
  // Nothing reached Object.prototype through a parsed body.
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(({} as Record<string, unknown>).privateIp).toBeUndefined();
});

// ---------------------------------------------------------------- building hostile requests

interface Case {
  name: string;
  fn: 'lease' | 'admin';
  event: () => HttpEvent;
  /** the status expected, when the design fixes it; else any 4xx */
  status?: number;
  code?: string;
}

const put = (body: unknown, extra: Partial<Parameters<typeof httpEvent>[0]> = {}) =>
  httpEvent({
    method: 'PUT',
    path: '/v1/lease',
    body: body as string | object,
    userArn: hostArn(host.instanceId),
    ...extra,
  });

/** A PUT /v1/lease body with the caller's own IP: anything refused is refused for `extra` alone. */
const own = (extra: Record<string, unknown>) => ({ privateIp: host.privateIp, ...extra });

const operator = (method: string, path: string, extra: Partial<Parameters<typeof httpEvent>[0]> = {}) =>
  httpEvent({ method, path, userArn: OPERATOR_ARN, ...extra });

const leaseKey = (method: 'GET' | 'DELETE', key: string) =>
  operator(method, `/v1/admin/leases/${key}`, { route: LEASE_ROUTE, pathParameters: { subnet: key } });

/** As a local emulator sends it: no route template, only the raw path. */
const rawPath = (method: string, path: string): HttpEvent => ({
  ...operator(method, path),
  routeKey: '$default',
  requestContext: { ...operator(method, path).requestContext, routeKey: '$default' },
});

/** Sessions that name an instance but are not that instance's host-role session (issue: impersonation). */
function hostileIdentities(): [string, (instanceId: string) => string][] {
  return [
    ['another account', (id) => `arn:aws:sts::999999999999:assumed-role/vpc-lease-host/${id}`],
    [
      'another role of the account (ci-deploy)',
      (id) => `arn:aws:sts::123456789012:assumed-role/ci-deploy/${id}`,
    ],
    ['a role path', (id) => `arn:aws:sts::123456789012:assumed-role/team/vpc-lease-host/${id}`],
    ['a session of i- plus junk', (id) => `arn:aws:sts::123456789012:assumed-role/vpc-lease-host/${id}-junk`],
    ['an empty session', () => 'arn:aws:sts::123456789012:assumed-role/vpc-lease-host/'],
    ['an unknown partition', (id) => `arn:aws-iso:sts::123456789012:assumed-role/vpc-lease-host/${id}`],
  ];
}

/** The same request under another identity. */
const asIdentity = (event: HttpEvent, userArn: string): HttpEvent => ({
  ...event,
  requestContext: { ...event.requestContext, authorizer: { iam: { userArn } } },
});

const withArn = (userArn: string | undefined, method = 'PUT') =>
  httpEvent({
    method,
    path: '/v1/lease',
    ...(method === 'PUT' ? { body: { privateIp: '10.0.0.9' } } : {}),
    userArn,
  });

const base64 = (event: HttpEvent): HttpEvent => ({
  ...event,
  body: Buffer.from(event.body ?? '').toString('base64'),
  isBase64Encoded: true,
});

/** A JSON object of exactly `bytes` bytes: the given fields, padded with whitespace. */
function bodyOfBytes(fields: Record<string, unknown>, bytes: number): string {
  const json = JSON.stringify(fields);
  const body = `${json.slice(0, -1)}${' '.repeat(bytes - Buffer.byteLength(json))}}`;
  expect(Buffer.byteLength(body)).toBe(bytes);
  return body;
}

const nested = (depth: number, leaf: string) => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
const nestedObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const config = (overrides: Record<string, unknown>, backend: Record<string, unknown> = {}) => ({
  Network: '10.244.0.0/16',
  ...overrides,
  Backend: { Type: 'aws-vpc', ...backend },
});
const putConfig = (body: unknown, headers?: Record<string, string>) =>
  operator('PUT', '/v1/admin/config', { body: body as object, ...(headers ? { headers } : {}) });

const UNKNOWN_INSTANCE = 'i-0123456789abcdef0';
const LONG_ARN = `arn:aws:sts::123456789012:assumed-role/${'r'.repeat(5000)}/${UNKNOWN_INSTANCE}`;

const CASES: Case[] = [
  // -- PUT /v1/lease: wrong types and shapes
  { name: 'privateIp as a number', fn: 'lease', event: () => put({ privateIp: 167772161 }), status: 400 },
  { name: 'privateIp null', fn: 'lease', event: () => put({ privateIp: null }), status: 400 },
  {
    name: 'privateIp as an array',
    fn: 'lease',
    event: () => put({ privateIp: [host.privateIp] }),
    status: 400,
  },
  {
    name: 'privateIp as an object',
    fn: 'lease',
    event: () => put({ privateIp: { ip: host.privateIp } }),
    status: 400,
  },
  { name: 'privateIp true', fn: 'lease', event: () => put({ privateIp: true }), status: 400 },
  {
    name: 'previousSubnet as a number',
    fn: 'lease',
    event: () => put(own({ previousSubnet: 24 })),
    status: 400,
  },
  { name: 'a JSON string body', fn: 'lease', event: () => put('"10.0.0.5"'), status: 400 },
  { name: 'a JSON null body', fn: 'lease', event: () => put('null'), status: 400 },
  { name: 'a JSON number body', fn: 'lease', event: () => put('42'), status: 400 },
  { name: 'a JSON true body', fn: 'lease', event: () => put('true'), status: 400 },
  { name: 'an empty body', fn: 'lease', event: () => put(''), status: 400 },
  { name: 'a whitespace body', fn: 'lease', event: () => put('   \n\t '), status: 400 },
  { name: 'no body at all', fn: 'lease', event: () => ({ ...put({}), body: undefined }), status: 400 },
  {
    name: 'duplicate keys, the last one invalid',
    fn: 'lease',
    event: () => put(`{"privateIp":"${host.privateIp}","privateIp":7}`),
    status: 400,
  },
  // -- huge and deep
  { name: 'a 1 MB body', fn: 'lease', event: () => put(own({ pad: 'x'.repeat(1 << 20) })), status: 413 },
  {
    name: '5000 two-byte characters (10 KB, 5000 chars)',
    fn: 'lease',
    event: () => put(own({ pad: 'é'.repeat(5000) })),
    status: 413,
  },
  {
    name: 'an array nested 4000 deep',
    fn: 'lease',
    event: () => put(`{"privateIp":${nested(4000, '"10.0.0.5"')}}`),
    status: 400,
  },
  { name: 'objects nested 1000 deep', fn: 'lease', event: () => put(nestedObject(1000)), status: 400 },
  {
    name: 'arrays nested 100000 deep (over the size limit)',
    fn: 'lease',
    event: () => put(nested(100_000, '1')),
    status: 413,
  },
  {
    name: 'a body of exactly 8 KiB (accepted for size; the IP is not the caller’s)',
    fn: 'lease',
    event: () => put(bodyOfBytes({ privateIp: '10.0.0.250' }, MAX_BODY_BYTES)),
    status: 403,
    code: 'Forbidden',
  },
  {
    name: 'a body of 8 KiB + 1',
    fn: 'lease',
    event: () => put(bodyOfBytes({ privateIp: host.privateIp }, MAX_BODY_BYTES + 1)),
    status: 413,
    code: 'PayloadTooLarge',
  },
  // -- unicode and control characters
  {
    name: 'fullwidth digits in privateIp',
    fn: 'lease',
    event: () => put({ privateIp: '１０.０.０.５' }),
    status: 400,
  },
  {
    name: 'a right-to-left override in privateIp',
    fn: 'lease',
    event: () => put({ privateIp: `\u202e${host.privateIp}` }),
    status: 400,
  },
  {
    name: 'a zero-width space in privateIp',
    fn: 'lease',
    event: () => put({ privateIp: `${host.privateIp}\u200b` }),
    status: 400,
  },
  {
    name: 'a NUL byte in privateIp',
    fn: 'lease',
    event: () => put({ privateIp: `${host.privateIp}\u0000` }),
    status: 400,
  },
  {
    name: 'a lone surrogate in privateIp',
    fn: 'lease',
    event: () => put('{"privateIp":"\\ud800"}'),
    status: 400,
  },
  {
    name: 'an unescaped control character inside a JSON string',
    fn: 'lease',
    event: () => put(`{"privateIp":"10.0.0.5\u0001"}`),
    status: 400,
  },
  {
    name: 'a byte-order mark before the JSON',
    fn: 'lease',
    event: () => put(`\ufeff${JSON.stringify(own({}))}`),
    status: 400,
  },
  { name: 'an emoji field name', fn: 'lease', event: () => put(own({ '🔥': 1 })), status: 400 },
  {
    name: 'a newline and a forged log line in a field name',
    fn: 'lease',
    event: () => put(own({ 'x\n{"level":"ERROR"}': 1 })),
    status: 400,
  },
  // -- prototype keys
  {
    name: '__proto__ holding the field',
    fn: 'lease',
    event: () => put(`{"__proto__":{"privateIp":"${host.privateIp}"}}`),
    status: 400,
  },
  {
    name: '__proto__ next to a valid field',
    fn: 'lease',
    event: () => put(`{"privateIp":"${host.privateIp}","__proto__":{"polluted":true}}`),
    status: 400,
  },
  {
    name: 'constructor.prototype next to a valid field',
    fn: 'lease',
    event: () => put(`{"privateIp":"${host.privateIp}","constructor":{"prototype":{"polluted":true}}}`),
    status: 400,
  },
  // -- CIDR edge cases in previousSubnet
  {
    name: 'previousSubnet /33',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '10.244.0.0/33' })),
    status: 400,
  },
  { name: 'previousSubnet -1', fn: 'lease', event: () => put(own({ previousSubnet: '-1' })), status: 400 },
  {
    name: 'previousSubnet with prefix -1',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '10.244.7.0/-1' })),
    status: 400,
  },
  {
    name: 'previousSubnet IPv6',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '2001:db8::/64' })),
    status: 400,
  },
  {
    name: 'previousSubnet without a prefix',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '10.244.7.0' })),
    status: 400,
  },
  {
    name: 'previousSubnet with an octet over 255',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '10.244.256.0/24' })),
    status: 400,
  },
  {
    name: 'previousSubnet with a leading zero',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '10.244.07.0/24' })),
    status: 400,
  },
  {
    name: 'previousSubnet with two prefixes',
    fn: 'lease',
    event: () => put(own({ previousSubnet: '10.244.7.0/24/24' })),
    status: 400,
  },
  {
    name: 'previousSubnet with spaces',
    fn: 'lease',
    event: () => put(own({ previousSubnet: ' 10.244.7.0/24' })),
    status: 400,
  },
  {
    name: 'privateIp 0.0.0.0 (not an address of the caller)',
    fn: 'lease',
    event: () => put({ privateIp: '0.0.0.0' }),
    status: 403,
  },
  { name: 'privateIp IPv6', fn: 'lease', event: () => put({ privateIp: '::1' }), status: 400 },
  // -- identity shapes
  {
    name: 'an IAM user ARN',
    fn: 'lease',
    event: () => withArn('arn:aws:iam::123456789012:user/alice'),
    status: 403,
  },
  {
    name: 'a session name that is not an instance id',
    fn: 'lease',
    event: () => withArn('arn:aws:sts::123456789012:assumed-role/vpc-lease-host/alice'),
    status: 403,
  },
  {
    name: 'an upper-case instance id',
    fn: 'lease',
    event: () => withArn('arn:aws:sts::123456789012:assumed-role/vpc-lease-host/I-0123456789ABCDEF0'),
    status: 403,
  },
  {
    name: 'an 11-digit account',
    fn: 'lease',
    event: () => withArn(`arn:aws:sts::12345678901:assumed-role/vpc-lease-host/${UNKNOWN_INSTANCE}`),
    status: 403,
  },
  {
    name: 'a federated user',
    fn: 'lease',
    event: () => withArn(`arn:aws:sts::123456789012:federated-user/${UNKNOWN_INSTANCE}`),
    status: 403,
  },
  {
    name: 'a trailing newline after the instance id',
    fn: 'lease',
    event: () => withArn(`${hostArn(host.instanceId)}\n`),
    status: 403,
  },
  {
    name: 'an extra path segment after the instance id',
    fn: 'lease',
    event: () => withArn(`${hostArn(host.instanceId)}/x`),
    status: 403,
  },
  { name: 'an empty ARN', fn: 'lease', event: () => withArn(''), status: 403 },
  { name: 'no IAM identity', fn: 'lease', event: () => withArn(undefined), status: 403 },
  { name: 'a 5 KB ARN', fn: 'lease', event: () => withArn(LONG_ARN), status: 403 },
  {
    name: 'a well-formed instance that does not exist',
    fn: 'lease',
    event: () => withArn(hostArn(UNKNOWN_INSTANCE)),
    status: 403,
  },
  {
    name: 'DELETE with a user ARN',
    fn: 'lease',
    event: () => withArn('arn:aws:iam::123456789012:user/alice', 'DELETE'),
    status: 403,
  },
  {
    name: 'DELETE with no IAM identity',
    fn: 'lease',
    event: () => withArn(undefined, 'DELETE'),
    status: 403,
  },
  {
    name: 'GET /v1/config with no IAM identity',
    fn: 'lease',
    event: () => httpEvent({ method: 'GET', path: '/v1/config' }),
    status: 403,
  },
  // -- impersonation: the victim's instance id in a session that is not the victim's instance profile
  ...hostileIdentities().flatMap(([name, arn]) => [
    {
      name: `PUT as the victim from ${name}`,
      fn: 'lease' as const,
      event: () =>
        httpEvent({
          method: 'PUT',
          path: '/v1/lease',
          body: { privateIp: victim.privateIp },
          userArn: arn(victim.instanceId),
        }),
      status: 403,
      code: 'Forbidden',
    },
    {
      name: `DELETE as the victim from ${name}`,
      fn: 'lease' as const,
      event: () => httpEvent({ method: 'DELETE', path: '/v1/lease', userArn: arn(victim.instanceId) }),
      status: 403,
      code: 'Forbidden',
    },
  ]),
  // -- headers and encodings
  {
    name: 'a form content type',
    fn: 'lease',
    event: () => put(own({}), { headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    status: 415,
  },
  {
    name: 'a repeated content type, joined by API Gateway',
    fn: 'lease',
    event: () => put(own({}), { headers: { 'content-type': 'application/json,text/plain' } }),
    status: 415,
  },
  {
    name: 'application/jsonp',
    fn: 'lease',
    event: () => put(own({}), { headers: { 'content-type': 'application/jsonp' } }),
    status: 415,
  },
  {
    name: 'multipart',
    fn: 'lease',
    event: () => put(own({}), { headers: { 'content-type': 'multipart/form-data; boundary=x' } }),
    status: 415,
  },
  {
    name: 'two content-type headers in different case',
    fn: 'lease',
    event: () => put({ privateIp: 5 }, { headers: { 'Content-Type': 'text/xml' } }),
  },
  {
    name: 'a base64 body of broken JSON',
    fn: 'lease',
    event: () => base64(put('{"privateIp": ')),
    status: 400,
  },
  {
    name: 'the base64 flag on a body that is not base64',
    fn: 'lease',
    event: () => ({ ...put(own({})), body: '!!!', isBase64Encoded: true }),
    status: 400,
  },
  {
    name: 'a base64 body decoding to 8 KiB + 1',
    fn: 'lease',
    event: () => base64(put(bodyOfBytes(own({}), MAX_BODY_BYTES + 1))),
    status: 413,
  },
  {
    name: 'a base64 body with an address that is not the caller’s',
    fn: 'lease',
    event: () => base64(put({ privateIp: '10.0.0.250' })),
    status: 403,
  },
  // -- host paths with another method (405), host routes that do not exist (404)
  {
    name: 'PATCH /v1/lease',
    fn: 'lease',
    event: () => put(own({}), { method: 'PATCH' }),
    status: 405,
    code: 'MethodNotAllowed',
  },
  { name: 'a trailing slash', fn: 'lease', event: () => put(own({}), { path: '/v1/lease/' }), status: 404 },
  {
    name: 'a traversal in the host path',
    fn: 'lease',
    event: () => put(own({}), { path: '/v1/lease/../admin/config' }),
    status: 404,
  },

  // -- admin: {subnet}
  { name: 'subnet ..%2F..%2Fetc', fn: 'admin', event: () => leaseKey('GET', '..%2F..%2Fetc'), status: 400 },
  {
    name: 'subnet 10.244.7.0-24/../ (DELETE)',
    fn: 'admin',
    event: () => leaseKey('DELETE', '10.244.7.0-24/../'),
    status: 400,
  },
  {
    name: 'raw path /v1/admin/leases/10.244.7.0-24/../config (DELETE)',
    fn: 'admin',
    event: () => rawPath('DELETE', '/v1/admin/leases/10.244.7.0-24/../config'),
    status: 400,
  },
  { name: 'subnet %2e%2e', fn: 'admin', event: () => leaseKey('DELETE', '%2e%2e'), status: 400 },
  {
    name: 'subnet with bad percent-encoding',
    fn: 'admin',
    event: () => leaseKey('GET', '%E0%A4%A'),
    status: 400,
  },
  {
    name: 'subnet with an encoded slash',
    fn: 'admin',
    event: () => leaseKey('DELETE', '10.244.7.0%2F24'),
    status: 400,
  },
  {
    name: 'subnet with an encoded NUL',
    fn: 'admin',
    event: () => leaseKey('GET', '10.244.7.0-24%00'),
    status: 400,
  },
  { name: 'subnet -33', fn: 'admin', event: () => leaseKey('GET', '10.244.7.0-33'), status: 400 },
  {
    name: 'subnet with host bits',
    fn: 'admin',
    event: () => leaseKey('DELETE', '10.244.7.1-24'),
    status: 400,
  },
  { name: 'subnet IPv6', fn: 'admin', event: () => leaseKey('GET', '2001:db8::-64'), status: 400 },
  {
    name: 'subnet in fullwidth digits',
    fn: 'admin',
    event: () => leaseKey('GET', '１０.244.7.0-24'),
    status: 400,
  },
  { name: 'a 5 KB subnet', fn: 'admin', event: () => leaseKey('DELETE', '1'.repeat(5000)), status: 400 },
  {
    name: 'subnet 0.0.0.0-0 that no lease holds (DELETE)',
    fn: 'admin',
    event: () => leaseKey('DELETE', '0.0.0.0-0'),
    status: 404,
  },
  {
    name: 'a free subnet (DELETE)',
    fn: 'admin',
    event: () => leaseKey('DELETE', '10.244.250.0-24'),
    status: 404,
  },
  // -- admin: queries
  {
    name: 'limit=0',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/leases', { queryStringParameters: { limit: '0' } }),
    status: 400,
  },
  {
    name: 'limit=-1',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/leases', { queryStringParameters: { limit: '-1' } }),
    status: 400,
  },
  {
    name: 'limit=1e3',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/leases', { queryStringParameters: { limit: '1e3' } }),
    status: 400,
  },
  {
    name: 'limit=1001',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/leases', { queryStringParameters: { limit: '1001' } }),
    status: 400,
  },
  {
    name: 'limit repeated (joined with a comma)',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/leases', { queryStringParameters: { limit: '10,20' } }),
    status: 400,
  },
  {
    name: 'a garbage nextToken',
    fn: 'admin',
    event: () =>
      operator('GET', '/v1/admin/leases', { queryStringParameters: { nextToken: '../../etc/passwd' } }),
    status: 400,
  },
  {
    name: 'a 5 KB nextToken',
    fn: 'admin',
    event: () =>
      operator('GET', '/v1/admin/leases', { queryStringParameters: { nextToken: 'A'.repeat(5000) } }),
    status: 400,
  },
  {
    name: 'a constructor query parameter',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/leases', { queryStringParameters: { constructor: '1' } }),
    status: 400,
  },
  // -- admin: config
  {
    name: 'config Network /33',
    fn: 'admin',
    event: () => putConfig(config({ Network: '10.244.0.0/33' })),
    status: 400,
  },
  { name: 'config Network -1', fn: 'admin', event: () => putConfig(config({ Network: '-1' })), status: 400 },
  {
    name: 'config Network IPv6',
    fn: 'admin',
    event: () => putConfig(config({ Network: '2001:db8::/32' })),
    status: 400,
  },
  {
    name: 'config Network 0.0.0.0/0 (overlaps the VPC)',
    fn: 'admin',
    event: () => putConfig(config({ Network: '0.0.0.0/0' })),
    status: 400,
  },
  // -- admin: config, IPv6 junk in every dual-stack field. The first entries are the whole
  // dual-stack part; the others go on top of a good one (EnableIPv6 + fd00:10:244::/56).
  ...[
    ...([
      ['EnableIPv6 "true" (a string)', { EnableIPv6: 'true', IPv6Network: 'fd00:10:244::/56' }],
      ['EnableIPv6 1', { EnableIPv6: 1, IPv6Network: 'fd00:10:244::/56' }],
      ['EnableIPv6 null', { EnableIPv6: null, IPv6Network: 'fd00:10:244::/56' }],
      ['IPv6Network without EnableIPv6', { IPv6Network: 'fd00:10:244::/56' }],
      ['IPv6SubnetLen with EnableIPv6 false', { EnableIPv6: false, IPv6SubnetLen: 64 }],
      ['EnableIPv6 without IPv6Network', { EnableIPv6: true }],
    ] as [string, Record<string, unknown>][]),
    ...(
      [
        ['IPv6Network as a number', { IPv6Network: 42 }],
        ['IPv6Network an IPv4 CIDR', { IPv6Network: '10.244.0.0/16' }],
        ['IPv6Network ::/0', { IPv6Network: '::/0' }],
        ['IPv6Network with host bits', { IPv6Network: 'fd00:10:244::1/56' }],
        ['IPv6Network /129', { IPv6Network: 'fd00:10:244::/129' }],
        ['IPv6Network /125 (too small)', { IPv6Network: 'fd00:10:244::/125' }],
        ['IPv6Network global (not unique local)', { IPv6Network: '2001:db8::/56' }],
        ['IPv6Network with two ::', { IPv6Network: 'fd00::10::/56' }],
        ['IPv6Network with a zone id', { IPv6Network: 'fd00:10:244::%eth0/56' }],
        ['IPv6Network in fullwidth colons', { IPv6Network: 'fd00：10：244::/56' }],
        ['IPv6Network 5000 characters', { IPv6Network: `fd00${':0'.repeat(2500)}/56` }],
        ['IPv6SubnetLen "64" (a string)', { IPv6SubnetLen: '64' }],
        ['IPv6SubnetLen 64.5', { IPv6SubnetLen: 64.5 }],
        ['IPv6SubnetLen 127', { IPv6SubnetLen: 127 }],
        ['IPv6SubnetLen 57 (fewer than four subnets)', { IPv6SubnetLen: 57 }],
        ['IPv6SubnetLen -64', { IPv6SubnetLen: -64 }],
        ['IPv6SubnetMin misaligned', { IPv6SubnetMin: 'fd00:10:244:1::1' }],
        ['IPv6SubnetMin outside IPv6Network', { IPv6SubnetMin: 'fd00:10:245::' }],
        ['IPv6SubnetMin an IPv4 address', { IPv6SubnetMin: '10.244.1.0' }],
        ['IPv6SubnetMin as a number', { IPv6SubnetMin: 1 }],
        [
          'IPv6SubnetMax below IPv6SubnetMin',
          { IPv6SubnetMin: 'fd00:10:244:20::', IPv6SubnetMax: 'fd00:10:244:10::' },
        ],
        ['IPv6SubnetMax with a prefix length', { IPv6SubnetMax: 'fd00:10:244:ff::/64' }],
        ['IPv6 range smaller than the IPv4 range', { IPv6Network: 'fd00:10:244::/60' }],
        ['an unknown IPv6 field', { IPv6Networks: 'fd00:10:244::/56' }],
      ] as [string, Record<string, unknown>][]
    ).map(
      ([name, fields]) => [name, { EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', ...fields }] as const,
    ),
  ].map(
    ([name, fields]): Case => ({
      name: `config ${name}`,
      fn: 'admin',
      event: () => putConfig(config(fields)),
      status: 400,
      code: 'ValidationError',
    }),
  ),
  {
    name: 'config SubnetLen 33',
    fn: 'admin',
    event: () => putConfig(config({ SubnetLen: 33 })),
    status: 400,
  },
  {
    name: 'config SubnetLen as a string',
    fn: 'admin',
    event: () => putConfig(config({ SubnetLen: '24' })),
    status: 400,
  },
  {
    name: 'config Backend vxlan',
    fn: 'admin',
    event: () => putConfig(config({}, { Type: 'vxlan' })),
    status: 400,
  },
  {
    name: 'config RouteLimit 0',
    fn: 'admin',
    event: () => putConfig(config({}, { RouteLimit: 0 })),
    status: 400,
  },
  {
    name: 'config RouteLimit 1e309 (Infinity)',
    fn: 'admin',
    event: () => putConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"aws-vpc","RouteLimit":1e309}}'),
    status: 400,
  },
  {
    name: 'config RouteLimit as a string',
    fn: 'admin',
    event: () => putConfig(config({}, { RouteLimit: '50' })),
    status: 400,
  },
  {
    name: 'config RouteTableID with a traversal',
    fn: 'admin',
    event: () => putConfig(config({}, { RouteTableID: 'rtb-../../etc' })),
    status: 400,
  },
  {
    name: 'config RouteTableID of a table that does not exist',
    fn: 'admin',
    event: () => putConfig(config({}, { RouteTableID: 'rtb-0123456789abcdef0' })),
    status: 400,
  },
  {
    name: 'config with a __proto__ key',
    fn: 'admin',
    event: () =>
      putConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"aws-vpc"},"__proto__":{"RouteLimit":1}}'),
    status: 400,
  },
  {
    name: 'config with a constructor key in Backend',
    fn: 'admin',
    event: () =>
      putConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"aws-vpc","constructor":{"prototype":{}}}}'),
    status: 400,
  },
  {
    name: 'config Backend nested 1000 deep',
    fn: 'admin',
    event: () => putConfig(`{"Network":"10.244.0.0/16","Backend":${nestedObject(1000)}}`),
    status: 400,
  },
  {
    name: 'config as an array',
    fn: 'admin',
    event: () => putConfig('[{"Network":"10.244.0.0/16"}]'),
    status: 400,
  },
  {
    name: 'config of 8 KiB + 1',
    fn: 'admin',
    event: () => putConfig(bodyOfBytes(config({}), MAX_BODY_BYTES + 1)),
    status: 413,
  },
  {
    name: 'config as text/plain',
    fn: 'admin',
    event: () => putConfig(config({}), { 'content-type': 'text/plain' }),
    status: 415,
  },
  {
    name: 'config with If-Match W/"1"',
    fn: 'admin',
    event: () => putConfig(config({}), { 'if-match': 'W/"1"' }),
    status: 400,
  },
  {
    name: 'config with If-Match *',
    fn: 'admin',
    event: () => putConfig(config({}), { 'if-match': '*' }),
    status: 400,
  },
  {
    name: 'config with a stale If-Match',
    fn: 'admin',
    event: () => putConfig(config({}), { 'if-match': '"99"' }),
    status: 409,
  },
  // -- admin: methods, paths, identity
  {
    name: 'GET /v1/admin/reconcile',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/reconcile'),
    status: 405,
  },
  {
    name: 'DELETE /v1/admin/config',
    fn: 'admin',
    event: () => operator('DELETE', '/v1/admin/config'),
    status: 405,
  },
  {
    name: 'PUT /v1/admin/routes',
    fn: 'admin',
    event: () => operator('PUT', '/v1/admin/routes', { body: {} }),
    status: 405,
  },
  {
    name: 'an unknown admin path',
    fn: 'admin',
    event: () => operator('GET', '/v1/admin/../../etc/passwd'),
    status: 404,
  },
  {
    name: 'POST /v1/admin/reconcile without an IAM identity',
    fn: 'admin',
    event: () => httpEvent({ method: 'POST', path: '/v1/admin/reconcile' }),
    status: 403,
  },
  {
    name: 'DELETE a lease with an empty ARN',
    fn: 'admin',
    event: () => ({
      ...leaseKey('DELETE', '10.244.7.0-24'),
      requestContext: {
        ...leaseKey('DELETE', '10.244.7.0-24').requestContext,
        authorizer: { iam: { userArn: '' } },
      },
    }),
    status: 403,
  },
  {
    name: 'a host reconciling through the admin API',
    fn: 'admin',
    event: () =>
      httpEvent({ method: 'POST', path: '/v1/admin/reconcile', userArn: hostArn(host.instanceId) }),
    status: 403,
    code: 'Forbidden',
  },
  {
    name: 'a host revoking another lease through the admin API',
    fn: 'admin',
    event: () => asIdentity(leaseKey('DELETE', '10.244.7.0-24'), hostArn(host.instanceId)),
    status: 403,
    code: 'Forbidden',
  },
  {
    name: 'a host publishing a config through the admin API',
    fn: 'admin',
    event: () => asIdentity(putConfig(config({})), hostArn(host.instanceId)),
    status: 403,
    code: 'Forbidden',
  },
  {
    name: 'PUT /v1/admin/config without an IAM identity',
    fn: 'admin',
    event: () => ({
      ...putConfig(config({})),
      requestContext: { ...putConfig(config({})).requestContext, authorizer: null },
    }),
    status: 403,
  },
];

describe('bad-input corpus: every hostile request gets a 4xx with a code, changes nothing, logs no error', () => {
  it('has at least 50 requests, over every route of both functions', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50);
    const routes = new Set(
      CASES.map((c) => {
        const e = c.event();
        return `${e.requestContext.http.method} ${e.routeKey.endsWith('{subnet}') ? LEASE_ROUTE : e.rawPath}`;
      }),
    );
    for (const route of [
      'GET /v1/config',
      'PUT /v1/lease',
      'DELETE /v1/lease',
      'GET /v1/admin/leases',
      `GET ${LEASE_ROUTE}`,
      `DELETE ${LEASE_ROUTE}`,
      'PUT /v1/admin/routes',
      'PUT /v1/admin/config',
      'DELETE /v1/admin/config',
      'POST /v1/admin/reconcile',
    ]) {
      expect(routes, route).toContain(route);
    }
  });

  it.each(CASES)('$fn: $name', async (c) => {
    log.clear();
    const result = await (c.fn === 'lease' ? lease : admin)(c.event());

    const status = result.statusCode ?? 200;
    const text = result.body ?? '';
    if (c.status !== undefined) expect(status, text).toBe(c.status);
    expect(status, text).toBeGreaterThanOrEqual(400);
    expect(status, text).toBeLessThan(500);
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    expect(body.error?.code).toEqual(expect.stringMatching(/^[A-Z][A-Za-z]+$/));
    if (c.code) expect(body.error?.code).toBe(c.code);
    expect(body.error?.message).toEqual(expect.stringMatching(/\S/));
    expect(text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules/); // no stack in the answer
    expect(text.length).toBeLessThan(2048); // the answer does not echo a huge input back

    expect(log.lines.map((l) => l.text).join('\n'), 'the refusal is logged').toMatch(/request refused/);
    expect(log.errors(), 'error-level log lines').toEqual([]);
    expect(log.withStackTraces(), 'log lines with a stack trace').toEqual([]);
    expect(await state(), 'table items or routes changed').toBe(stateBefore);
  });

  it('(the log capture sees what a bug would log: an error line with its stack, and a generic 500)', async () => {
    const broken = buildLeaseHandler({
      leases: {
        acquire: async () => {
          throw new TypeError('a bug');
        },
      } as unknown as ControlPlane['leases'],
      hosts: TEST_HOSTS,
      logger: log,
    });
    log.clear();
    const result = await broken(put(own({})), lambdaContext('vpc-lease-test-lease'));
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toMatch(/a bug|\n\s+at /);
    expect(log.errors()).toHaveLength(1);
    expect(log.withStackTraces()).toHaveLength(1);
  });

  it('admin: a __proto__ query parameter is refused like any unknown one', async () => {
    const result = await admin(
      operator('GET', '/v1/admin/leases', {
        queryStringParameters: JSON.parse('{"__proto__":"1"}') as Record<string, string>,
      }),
    );
    expect(result.statusCode).toBe(400);
  });
});

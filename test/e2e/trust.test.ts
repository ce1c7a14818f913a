/**
 * The trust boundary over HTTP, on the real local stack (moto, serverless-offline, the bundled
 * handlers): every attack of the security review, as an attacker would send it. Identities are
 * serverless-offline's authorizer override header; locally the host role is vpc-lease-host in
 * account 000000000000.
 */
import { CreateRouteCommand, DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalStack,
  localClients,
  operatorHeaders,
  startLocalStack,
} from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import { type ErrorJson, type LeaseJson, offlineIdentityHeader } from '../../shared/http/contract.js';

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

describe('the trust boundary over HTTP (local stack)', () => {
  let stack: LocalStack;
  let ec2: EC2Client;
  let victim: LaunchedInstance;
  let other: LaunchedInstance;
  let victimLease: LeaseJson;

  const call = async <T = unknown>(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: unknown,
  ) => {
    const response = await fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text === '' ? undefined : JSON.parse(text)) as T,
    };
  };
  const routes = async () => {
    const out = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [stack.vpc.vpcId] }] }),
    );
    return (out.RouteTables ?? []).flatMap((t) =>
      (t.Routes ?? []).map(
        (r) => `${t.RouteTableId} ${r.DestinationCidrBlock} ${r.NetworkInterfaceId ?? r.GatewayId}`,
      ),
    );
  };
  const leases = async () =>
    (await call<{ leases: LeaseJson[] }>('GET', '/v1/admin/leases', operatorHeaders())).body.leases.map(
      (l) => `${l.subnet} ${l.instanceId} ${l.expiresAt}`,
    );

  beforeAll(async () => {
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    process.env.VPCLEASE_GRANT_INTERVAL_SECONDS = '30';
    stack = await startLocalStack({ apiPort, motoPort, lambdaPort, quiet: true });
    const clients = localClients(stack.motoEndpoint);
    clients.dynamo.destroy();
    ec2 = clients.ec2;
    [victim, other] = (await launchInstances(ec2, stack.vpc.subnetId, 2)) as [
      LaunchedInstance,
      LaunchedInstance,
    ];
    const granted = await call<LeaseJson>('PUT', '/v1/lease', offlineIdentityHeader(victim.instanceId), {
      privateIp: victim.privateIp,
    });
    expect(granted.status).toBe(200);
    victimLease = granted.body;
  }, 180_000);

  afterAll(async () => {
    ec2?.destroy();
    await stack?.stop();
  }, 30_000);

  const impostors: [string, Record<string, string>][] = [
    ['another account', { account: '999999999999' }],
    ['another role of the account (ci-deploy)', { role: 'ci-deploy' }],
    ['a role path', { role: 'team/vpc-lease-host' }],
  ].map(([name, options]) => [name as string, options as Record<string, string>]);

  for (const [name, options] of impostors) {
    it(`refuses DELETE and PUT of the victim's lease from ${name} with 403, changing nothing`, async () => {
      const before = { leases: await leases(), routes: await routes() };
      const headers = offlineIdentityHeader(victim.instanceId, options);

      const released = await call<ErrorJson>('DELETE', '/v1/lease', headers);
      const renewed = await call<ErrorJson>('PUT', '/v1/lease', headers, { privateIp: victim.privateIp });

      expect(released.status).toBe(403);
      expect(released.body.error.code).toBe('Forbidden');
      expect(renewed.status).toBe(403);
      expect({ leases: await leases(), routes: await routes() }).toEqual(before);
    });
  }

  it('refuses a session named i- plus junk with 403', async () => {
    const answer = await call<ErrorJson>(
      'DELETE',
      '/v1/lease',
      offlineIdentityHeader(`${victim.instanceId}0`),
    );
    expect(answer.status).toBe(403);
  });

  it('refuses a host on the admin routes with 403, whatever IAM would allow', async () => {
    const host = offlineIdentityHeader(victim.instanceId);
    const revoke = await call<ErrorJson>(
      'DELETE',
      `/v1/admin/leases/${victimLease.subnet.replace('/', '-')}`,
      host,
    );
    const reconcile = await call<ErrorJson>('POST', '/v1/admin/reconcile', host);
    expect(revoke.status).toBe(403);
    expect(reconcile.status).toBe(403);
    expect(reconcile.body.error.code).toBe('Forbidden');
  });

  it('never takes over a gateway route nor deletes hand-made routes: previousSubnet under one gets another subnet', async () => {
    const table = stack.vpc.routeTableId;
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: table,
        DestinationCidrBlock: '10.244.250.0/24',
        GatewayId: stack.vpc.internetGatewayId,
      }),
    );
    for (const destination of ['10.244.0.0/16', '10.244.9.0/25']) {
      await ec2.send(
        new CreateRouteCommand({
          RouteTableId: table,
          DestinationCidrBlock: destination,
          NetworkInterfaceId: victim.networkInterfaceId,
        }),
      );
    }
    const reconciled = await call<{ changes: unknown[] }>('POST', '/v1/admin/reconcile', operatorHeaders());
    expect(reconciled.status).toBe(200);
    expect(reconciled.body.changes).toEqual([]);

    const answer = await call<LeaseJson>('PUT', '/v1/lease', offlineIdentityHeader(other.instanceId), {
      privateIp: other.privateIp,
      previousSubnet: '10.244.250.0/24',
    });
    expect(answer.status).toBe(200);
    expect(answer.body.subnet).not.toBe('10.244.250.0/24');
    expect(await routes()).toEqual(
      expect.arrayContaining([
        `${table} 10.244.250.0/24 ${stack.vpc.internetGatewayId}`,
        `${table} 10.244.0.0/16 ${victim.networkInterfaceId}`,
        `${table} 10.244.9.0/25 ${victim.networkInterfaceId}`,
      ]),
    );
    const view = await call<{ tables: { routeTableId: string; foreignClaims: string[] }[] }>(
      'GET',
      '/v1/admin/routes',
      operatorHeaders(),
    );
    expect(view.body.tables.find((t) => t.routeTableId === table)?.foreignClaims).toEqual([
      '10.244.250.0/24',
      '10.244.9.0/25',
    ]);
  });

  it('answers a release and an immediate new lease 429 with Retry-After, leaving the subnet free', async () => {
    const host = offlineIdentityHeader(other.instanceId);
    expect((await call('DELETE', '/v1/lease', host)).status).toBe(204);

    const again = await call<ErrorJson>('PUT', '/v1/lease', host, { privateIp: other.privateIp });

    expect(again.status).toBe(429);
    expect(again.body.error.code).toBe('TooManyRequests');
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await leases()).some((l) => l.includes(other.instanceId))).toBe(false);
  });

  it('refuses a public or link-local Network with 400', async () => {
    for (const network of ['52.94.0.0/16', '169.254.0.0/16']) {
      const answer = await call<ErrorJson>('PUT', '/v1/admin/config', operatorHeaders(), {
        Network: network,
        Backend: { Type: 'aws-vpc' },
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('ValidationError');
    }
  });
});

/**
 * The admin CLI against the real local stack: `main()` of admin/cli.ts with
 * `--local --api-url`, serverless-offline serving the bundled admin function, moto behind
 * it. Each command is checked as text and as JSON, refusals by exit code and stderr.
 */
import { Readable } from 'node:stream';
import { DeleteRouteCommand, DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../admin/cli.js';
import { type LocalStack, localClients, startLocalStack } from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import {
  type LeaseJson,
  offlineIdentityHeader,
  type ReconcileReportJson,
  type RouteUsageJson,
} from '../../shared/http/contract.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

describe('vpc-lease (admin CLI) against the local stack', () => {
  let stack: LocalStack;
  let ec2: EC2Client;
  let stopClients: () => void;
  /** the three hosts and their leases, in subnet order */
  let held: (LaunchedInstance & { subnet: string })[];

  const cli = async (args: string[], stdin = ''): Promise<Run> => {
    let stdout = '';
    let stderr = '';
    const code = await main([...args, '--local', '--api-url', stack.apiUrl], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      stdin: Readable.from([stdin]),
      env: {},
    });
    return { code, stdout, stderr };
  };

  const destinationsByTable = async (): Promise<Map<string, string[]>> => {
    const out = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [stack.vpc.vpcId] }] }),
    );
    return new Map(
      (out.RouteTables ?? []).map((t) => [
        t.RouteTableId!,
        (t.Routes ?? []).map((r) => r.DestinationCidrBlock!),
      ]),
    );
  };

  beforeAll(async () => {
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    stack = await startLocalStack({ apiPort, motoPort, lambdaPort, quiet: true });
    const clients = localClients(stack.motoEndpoint);
    ec2 = clients.ec2;
    stopClients = () => {
      clients.ec2.destroy();
      clients.dynamo.destroy();
    };
    const hosts = await launchInstances(ec2, stack.vpc.subnetId, 3);
    held = [];
    for (const host of hosts) {
      const response = await fetch(`${stack.apiUrl}/v1/lease`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...offlineIdentityHeader(host.instanceId) },
        body: JSON.stringify({ privateIp: host.privateIp }),
      });
      expect(response.status).toBe(200);
      held.push({ ...host, subnet: ((await response.json()) as LeaseJson).subnet });
    }
    held.sort((a, b) => a.subnet.localeCompare(b.subnet, 'en', { numeric: true }));
  }, 180_000);

  afterAll(async () => {
    stopClients?.();
    await stack?.stop();
  }, 60_000);

  it('leases: a table of every lease, and the same leases as JSON', async () => {
    const text = await cli(['leases']);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(/^SUBNET\s+INSTANCE\s+PRIVATE IP\s+INTERFACE\s+EXPIRES\s+ROUTES$/);
    for (const [i, host] of held.entries()) {
      expect(lines[i + 1]).toMatch(
        new RegExp(
          `^${host.subnet}\\s+${host.instanceId}\\s+${host.privateIp}\\s+${host.networkInterfaceId}\\s+in 23h 59m\\s+rtb-`,
        ),
      );
    }
    expect(text.stdout).toContain('\n3 leases\n');

    const json = await cli(['leases', '--json']);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { leases: LeaseJson[] };
    expect(body.leases.map((l) => l.subnet)).toEqual(held.map((h) => h.subnet));
    expect(
      body.leases.every((l) => l.routes.length === 2 && l.routes.every((r) => r.state === 'active')),
    ).toBe(true);

    const limited = await cli(['leases', '--limit', '2']);
    expect(limited.stdout).toContain('2 leases shown; more exist (raise --limit)');
  });

  it('lease <subnet>: one lease, by CIDR or key; exit 3 when none', async () => {
    const host = held[0]!;
    const text = await cli(['lease', host.subnet]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^subnet\\s+${host.subnet}$`, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^instance\\s+${host.instanceId}$`, 'm'));
    expect(text.stdout).toMatch(/^network\s+10\.244\.0\.0\/16$/m);

    const json = await cli(['lease', host.subnet.replace('/', '-'), '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ subnet: host.subnet, instanceId: host.instanceId });

    const none = await cli(['lease', '10.244.250.0/24']);
    expect(none).toEqual({
      code: 3,
      stdout: '',
      stderr:
        'error: NotFound: No lease holds 10.244.250.0/24.\n' +
        'Run "vpc-lease --local leases" to see which subnets are leased.\n',
    });
  });

  it('routes: usage of both tables of the VPC, as a table and as JSON', async () => {
    const json = await cli(['routes', '--json']);
    expect(json.code).toBe(0);
    const usage = JSON.parse(json.stdout) as RouteUsageJson;
    const publicTable = usage.tables.find((t) => t.routeTableId === stack.vpc.routeTableId)!;
    const mainTable = usage.tables.find((t) => t.routeTableId !== stack.vpc.routeTableId)!;
    expect(usage.tables).toHaveLength(2);
    // public: local + igw + 3 lease routes; main: local + 3 lease routes
    expect(publicTable).toMatchObject({ limit: 50, used: 5, owned: 3, foreign: 2, blackholes: 0, free: 45 });
    expect(mainTable).toMatchObject({ limit: 50, used: 4, owned: 3, foreign: 1, blackholes: 0, free: 46 });

    const text = await cli(['routes']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ROUTE TABLE\s+USED\/LIMIT\s+USE\s+OWNED\s+FOREIGN\s+BLACKHOLES\s+FREE$/m);
    expect(text.stdout).toMatch(
      new RegExp(`^${stack.vpc.routeTableId}\\s+5/50\\s+10%\\s+3\\s+2\\s+0\\s+45$`, 'm'),
    );
    expect(text.stdout).toMatch(
      new RegExp(`^${mainTable.routeTableId}\\s+4/50\\s+8%\\s+3\\s+1\\s+0\\s+46$`, 'm'),
    );
  });

  it('config get: the published config with defaults, the same JSON in both modes', async () => {
    const text = await cli(['config', 'get']);
    expect(text.code).toBe(0);
    expect(JSON.parse(text.stdout)).toEqual({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.244.1.0',
      SubnetMax: '10.244.255.0',
      Backend: { Type: 'aws-vpc', RouteLimit: 50 },
    });
    expect((await cli(['config', 'get', '--json'])).stdout).toBe(text.stdout);
  });

  it('config set: `config get | config set -` round-trips; a changed RouteLimit is published', async () => {
    const got = await cli(['config', 'get']);
    const roundTrip = await cli(['config', 'set', '-'], got.stdout);
    expect(roundTrip.code).toBe(0);
    expect(roundTrip.stdout).toBe(`Published the network config.\n${got.stdout}`);

    const raised = { ...JSON.parse(got.stdout), Backend: { Type: 'aws-vpc', RouteLimit: 60 } };
    const set = await cli(['config', 'set', '-', '--json'], JSON.stringify(raised));
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual(raised);
    expect(JSON.parse((await cli(['config', 'get'])).stdout)).toEqual(raised);
  });

  it('config set: refuses a Network that overlaps the VPC (exit 1), and a config that strands leases (exit 4)', async () => {
    const before = (await cli(['config', 'get'])).stdout;

    const overlap = await cli(
      ['config', 'set', '-'],
      '{"Network": "10.0.0.0/8", "Backend": {"Type": "aws-vpc"}}',
    );
    expect(overlap.code).toBe(1);
    expect(overlap.stdout).toBe('');
    expect(overlap.stderr).toMatch(
      /^error: ValidationError: Network 10\.0\.0\.0\/8 overlaps 10\.0\.0\.0\/16/,
    );

    const strand = await cli(
      ['config', 'set', '-'],
      '{"Network": "10.245.0.0/16", "Backend": {"Type": "aws-vpc"}}',
    );
    expect(strand.code).toBe(4);
    expect(strand.stderr).toMatch(/^error: Conflict: This config would strand 3 live lease/);
    for (const host of held) expect(strand.stderr).toContain(host.subnet);

    expect((await cli(['config', 'get'])).stdout).toBe(before);
  });

  it('reconcile: writes back a route deleted by hand and says so; then nothing to do', async () => {
    const host = held[1]!;
    await ec2.send(
      new DeleteRouteCommand({ RouteTableId: stack.vpc.routeTableId, DestinationCidrBlock: host.subnet }),
    );

    const text = await cli(['reconcile']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Reconcile started \S+: 1 change, 0 errors\.$/m);
    expect(text.stdout).toMatch(
      new RegExp(
        `^route-created\\s+${stack.vpc.routeTableId}\\s+${host.subnet}\\s+${host.instanceId}\\s`,
        'm',
      ),
    );
    expect((await destinationsByTable()).get(stack.vpc.routeTableId)).toContain(host.subnet);

    const json = await cli(['reconcile', '--json']);
    const report = JSON.parse(json.stdout) as ReconcileReportJson;
    expect(report).toMatchObject({ changes: [], errors: [] });
  });

  it('revoke: the route disappears from every table and the lease is gone; exit 3 the second time', async () => {
    const [first, second] = held;

    const text = await cli(['revoke', first!.subnet]);
    expect(text).toEqual({
      code: 0,
      stdout: `Revoked ${first!.subnet} (held by ${first!.instanceId}): routes removed, lease deleted.\n`,
      stderr: '',
    });
    for (const destinations of (await destinationsByTable()).values()) {
      expect(destinations).not.toContain(first!.subnet);
      expect(destinations).toContain(second!.subnet);
    }
    expect((await cli(['lease', first!.subnet])).code).toBe(3);
    expect((await cli(['revoke', first!.subnet])).code).toBe(3);

    const json = await cli(['revoke', second!.subnet.replace('/', '-'), '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      subnet: second!.subnet,
      instanceId: second!.instanceId,
      routes: [],
    });
    const left = JSON.parse((await cli(['leases', '--json'])).stdout) as { leases: LeaseJson[] };
    expect(left.leases.map((l) => l.subnet)).toEqual([held[2]!.subnet]);
  });
});

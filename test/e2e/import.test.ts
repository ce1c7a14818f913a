/**
 * Migration from flannel, end to end: a flannel registry in a real etcd (flanneld's keys on
 * etcd leases), `vpc-lease import` (admin/cli.ts `main()`) against the local stack
 * (serverless-offline serving the bundled admin function, moto behind it), then the host
 * agent taking over with flannel's subnet.env.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateRouteCommand, DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../admin/cli.js';
import { type LocalStack, localClients, startLocalStack } from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import type { ImportReportJson, LeaseListJson } from '../../shared/http/contract.js';
import { type EtcdServer, FLANNEL_PREFIX, startEtcd } from '../support/etcd.js';

const AGENT_BIN = fileURLToPath(new URL('../../agent/bin/vpc-lease-agent.mjs', import.meta.url));
const MTU = 9001;
const FLANNEL_CONFIG = JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' } });

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

/** subnet.env as flanneld wrote it for a /24 of 10.244.0.0/16 (no --ip-masq). */
const flannelSubnetEnv = (subnet: string) =>
  'FLANNEL_NETWORK=10.244.0.0/16\n' +
  `FLANNEL_SUBNET=${subnet.replace(/\.0\/24$/, '.1/24')}\n` +
  `FLANNEL_MTU=${MTU}\n` +
  'FLANNEL_IPMASQ=false\n';

describe('vpc-lease import: a flannel registry adopted on the local stack', () => {
  let stack: LocalStack;
  let etcd: EtcdServer;
  let ec2: EC2Client;
  let stopClients: () => void;
  let workDir: string;
  let a: LaunchedInstance;
  let b: LaunchedInstance;
  let publicTable: string;
  let mainTable: string;

  const cli = async (args: string[]): Promise<Run> => {
    let stdout = '';
    let stderr = '';
    const code = await main([...args, '--local', '--api-url', stack.apiUrl], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      stdin: Readable.from(['']),
      env: {},
    });
    return { code, stdout, stderr };
  };
  const importFrom = (...extra: string[]) => cli(['import', '--etcd-endpoints', etcd.endpoint, ...extra]);

  const routes = async (): Promise<Record<string, Record<string, string>>> => {
    const out = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [stack.vpc.vpcId] }] }),
    );
    return Object.fromEntries(
      (out.RouteTables ?? []).map((t) => [
        t.RouteTableId!,
        Object.fromEntries(
          (t.Routes ?? [])
            .filter((r) => r.DestinationCidrBlock?.startsWith('10.244.'))
            .map((r) => [
              r.DestinationCidrBlock!,
              r.NetworkInterfaceId ?? r.InstanceId ?? r.GatewayId ?? '?',
            ]),
        ),
      ]),
    );
  };
  const leases = async () => {
    const run = await cli(['leases', '--json']);
    expect(run.code).toBe(0);
    return (JSON.parse(run.stdout) as LeaseListJson).leases.map((l) => [l.subnet, l.instanceId, l.expiresAt]);
  };

  beforeAll(async () => {
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    [stack, etcd] = await Promise.all([
      startLocalStack({ apiPort, motoPort, lambdaPort, quiet: true }),
      startEtcd(),
    ]);
    const clients = localClients(stack.motoEndpoint);
    ec2 = clients.ec2;
    stopClients = () => {
      clients.ec2.destroy();
      clients.dynamo.destroy();
    };
    workDir = await mkdtemp(join(tmpdir(), 'vpc-lease-import-'));
    [a, b] = (await launchInstances(ec2, stack.vpc.subnetId, 2)) as [LaunchedInstance, LaunchedInstance];
    publicTable = stack.vpc.routeTableId;
    mainTable = Object.keys(await routes()).find((id) => id !== publicTable)!;

    // flannel's routes, in the table its hosts' subnet uses: to a's ENI, and to b's instance
    // as flannel before 0.8 wrote them.
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: publicTable,
        DestinationCidrBlock: '10.244.1.0/24',
        NetworkInterfaceId: a.networkInterfaceId,
      }),
    );
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: publicTable,
        DestinationCidrBlock: '10.244.2.0/24',
        InstanceId: b.instanceId,
      }),
    );
    await etcd.put(`${FLANNEL_PREFIX}/config`, FLANNEL_CONFIG);
    await etcd.putSubnet('10.244.1.0-24', a.privateIp, { ttlSeconds: 86_000 });
    await etcd.putSubnet('10.244.2.0-24', b.privateIp, { ttlSeconds: 86_000 });
    // a host that is gone: its key outlives it until its TTL runs out
    await etcd.putSubnet('10.244.3.0-24', '10.0.0.250', { ttlSeconds: 86_000 });
  }, 240_000);

  afterAll(async () => {
    stopClients?.();
    await Promise.all([stack?.stop(), etcd?.stop()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it('the dry run prints the plan as a table, exits 6 for the skipped lease and changes nothing', async () => {
    const before = await routes();

    const run = await importFrom();

    expect(run).toMatchObject({ code: 6, stderr: '' });
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(
      'Dry run: nothing was changed. Run again with --apply to adopt the leases marked "adopt".',
    );
    expect(run.stdout).toContain("Network config: the registry's matches the published one (10.244.0.0/16).");
    expect(run.stdout).toMatch(/^SUBNET\s+PUBLIC IP\s+INSTANCE\s+ENI\s+ROUTE TARGET\s+ACTION$/m);
    const row = (subnet: string) => lines.find((line) => line.startsWith(`${subnet} `)) ?? '';
    const targets = (tables: Record<string, string>) =>
      Object.entries(tables)
        .map(([id, target]) => `${id}=${target}`)
        .join(' ');
    // the route tables in the order the API lists them
    const tableOrder = JSON.parse((await importFrom('--json')).stdout).leases[0].routes.map(
      (r: { routeTableId: string }) => r.routeTableId,
    ) as string[];
    const inOrder = (pairs: Record<string, string>) =>
      targets(Object.fromEntries(tableOrder.map((id) => [id, pairs[id]!])));
    expect(row('10.244.1.0/24').split(/\s{2,}/)).toEqual([
      '10.244.1.0/24',
      a.privateIp,
      a.instanceId,
      a.networkInterfaceId,
      inOrder({ [publicTable]: a.networkInterfaceId, [mainTable]: 'none' }),
      tableOrder[0] === publicTable ? 'adopt (keep route, create route)' : 'adopt (create route, keep route)',
    ]);
    expect(row('10.244.2.0/24')).toContain(`${publicTable}=${b.instanceId}`);
    expect(row('10.244.3.0/24').split(/\s{2,}/)).toEqual([
      '10.244.3.0/24',
      '10.0.0.250',
      '-',
      '-',
      '-',
      'skip: no-instance',
    ]);
    expect(run.stdout).toContain(
      '  10.244.3.0/24: no-instance: no instance of the VPC has the private IP 10.0.0.250.',
    );
    expect(run.stdout).toMatch(/\n2 to adopt, 0 unchanged, 1 to skip\.\n$/);

    expect(await leases()).toEqual([]);
    expect(await routes()).toEqual(before);
  });

  it('--apply adopts the two live hosts on their own subnets, with routes in every table to them', async () => {
    const run = await importFrom('--apply', '--json');

    expect(run.code).toBe(6);
    const report = JSON.parse(run.stdout) as ImportReportJson;
    expect(report.summary).toEqual({ adopt: 0, adopted: 2, unchanged: 0, skipped: 1 });
    expect(report.leases.map((l) => [l.subnet, l.action, l.instanceId])).toEqual([
      ['10.244.1.0/24', 'adopted', a.instanceId],
      ['10.244.2.0/24', 'adopted', b.instanceId],
      ['10.244.3.0/24', 'skip', null],
    ]);
    expect((await leases()).map(([subnet, instanceId]) => [subnet, instanceId])).toEqual([
      ['10.244.1.0/24', a.instanceId],
      ['10.244.2.0/24', b.instanceId],
    ]);
    expect(await routes()).toEqual({
      [publicTable]: { '10.244.1.0/24': a.networkInterfaceId, '10.244.2.0/24': b.instanceId },
      [mainTable]: { '10.244.1.0/24': a.networkInterfaceId, '10.244.2.0/24': b.networkInterfaceId },
    });
  });

  it('a second --apply changes nothing', async () => {
    const leasesBefore = await leases();
    const routesBefore = await routes();

    const run = await importFrom('--apply');

    expect(run.code).toBe(6);
    expect(run.stdout).toMatch(/^10\.244\.1\.0\/24 .*\bunchanged$/m);
    expect(run.stdout).toMatch(/\n0 adopted, 2 unchanged, 1 skipped\.\n$/);
    expect(await leases()).toEqual(leasesBefore);
    expect(await routes()).toEqual(routesBefore);
  });

  it('exits 0 when every lease of the registry is adopted', async () => {
    await etcd.put('/clean/network/config', FLANNEL_CONFIG);
    await etcd.putSubnet('10.244.1.0-24', a.privateIp, { ttlSeconds: 86_000, prefix: '/clean/network' });

    const run = await importFrom('--etcd-prefix', '/clean/network/', '--apply');

    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/\n0 adopted, 1 unchanged, 0 skipped\.\n$/);
  });

  it("the agent replacing flanneld renews the adopted lease and leaves flannel's subnet.env as it was", async () => {
    const subnetFile = join(workDir, 'subnet.env');
    await writeFile(subnetFile, flannelSubnetEnv('10.244.1.0/24'));
    const [before] = (await leases()).filter(([subnet]) => subnet === '10.244.1.0/24');

    await promisify(execFile)(
      process.execPath,
      [
        AGENT_BIN,
        '--api-url',
        stack.apiUrl,
        '--local-instance-id',
        a.instanceId,
        '--private-ip',
        a.privateIp,
        '--subnet-file',
        subnetFile,
        '--mtu',
        String(MTU),
        '--once',
      ],
      { timeout: 60_000 },
    );

    expect(await readFile(subnetFile, 'utf8')).toBe(flannelSubnetEnv('10.244.1.0/24'));
    const [after] = (await leases()).filter(([subnet]) => subnet === '10.244.1.0/24');
    expect(after?.[1]).toBe(a.instanceId);
    expect(Date.parse(String(after?.[2]))).toBeGreaterThan(Date.parse(String(before?.[2])));
  });

  it('refuses a registry whose config differs from the published one: exit 4 with the differences', async () => {
    await etcd.put(
      '/other/network/config',
      JSON.stringify({ Network: '10.245.0.0/16', Backend: { Type: 'aws-vpc' } }),
    );
    await etcd.putSubnet('10.245.1.0-24', b.privateIp, { ttlSeconds: 86_000, prefix: '/other/network' });
    const leasesBefore = await leases();

    const run = await importFrom('--etcd-prefix', '/other/network', '--apply');

    expect(run.code).toBe(4);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^error: Conflict: The registry's network config differs from the one vpc-lease has published: Network is 10\.245\.0\.0\/16 in the registry, 10\.244\.0\.0\/16 in vpc-lease;/,
    );
    expect(await leases()).toEqual(leasesBefore);
  });

  it('says clearly when etcd cannot be reached, and exits 5', async () => {
    const closed = await freePort();

    const run = await cli(['import', '--etcd-endpoints', `http://127.0.0.1:${closed}`]);

    expect(run).toEqual({
      code: 5,
      stdout: '',
      stderr: `error: Cannot reach etcd: http://127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed}.\n`,
    });
  });
});

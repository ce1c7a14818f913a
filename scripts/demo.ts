/**
 * `npm run demo`: the guided tour. On a fresh local stack (or the one VPCLEASE_API_URL
 * points at, when it answers), hosts join through the real agent, an operator looks at
 * leases and route tables with the real admin CLI, an instance terminates and its
 * state-change event goes to the real instanceState Lambda, and a full route table
 * refuses the next host with RouteLimitExceeded. Everything it starts, it stops: also on
 * Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type RouteTable,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { main as adminCli } from '../admin/cli.js';
import { isLoopbackUrl } from '../shared/http/api-client.js';
import type { LeaseJson, LeaseListJson, RouteUsageJson } from '../shared/http/contract.js';
import {
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  localClients,
  operatorHeaders,
  startLocalStack,
} from './lib/local-stack.js';
import { freePort } from './lib/moto.js';
import { findLocalVpc, type LaunchedInstance, launchInstances } from './lib/seed.js';

// Node 20 here: the SDK's notice that its 2027 releases need Node 22 is noise for a person
// at the terminal (the versions in the lock file work). Child processes inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const AGENT_BIN = join(REPO_ROOT, 'agent/bin/vpc-lease-agent.mjs');
/** an agent with --once retries transient errors forever; the demo gives up after this */
const AGENT_TIMEOUT_MS = 90_000;
/** hosts that join first; one of them then terminates */
const FIRST_HOSTS = 3;
/** room left once it has: the next ROOM_AFTER hosts get a lease, the one after is refused */
const ROOM_AFTER = 2;
const ROOM = FIRST_HOSTS - 1 + ROOM_AFTER;
/** published with EnableIPv6 unless the config is dual stack already: a unique local /56 */
const DEMO_IPV6_NETWORK = 'fd00:10:244::/56';

export interface DemoOptions {
  /** where the tour is written (stdout for `npm run demo`) */
  out: (text: string) => void;
  /** Ctrl-C: stops the agents and the stack, then runDemo rejects */
  signal?: AbortSignal;
  /** VPCLEASE_API_URL and friends; default process.env */
  env?: NodeJS.ProcessEnv;
  /** child output of the stack while it starts (default: none) */
  log?: (text: string) => void;
}

interface DemoStack {
  apiUrl: string;
  motoEndpoint: string;
  lambdaEndpoint: string;
  vpcId: string;
  subnetId: string;
  /** started by the demo: stopped at the end. Otherwise the demo undoes its changes instead */
  started: boolean;
  stop(): Promise<void>;
}

interface AgentRun {
  host: LaunchedInstance;
  code: number | null;
  subnetEnv: string | undefined;
  /** the message of the agent's last error line, if any */
  error: string | undefined;
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { out, signal } = options;
  const env = options.env ?? process.env;
  const children = new Set<ChildProcess>();
  const killChildren = () => {
    for (const child of children)
      if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
  };
  signal?.addEventListener('abort', killChildren, { once: true });
  const checkAborted = () => {
    if (signal?.aborted) throw new Error('Demo interrupted.');
  };
  const heading = (text: string) => out(`\n== ${text}\n\n`);
  const indent = (text: string) =>
    text
      .split('\n')
      .map((line) => (line === '' ? line : `  ${line}`))
      .join('\n');

  const workDir = await mkdtemp(join(tmpdir(), 'vpc-lease-demo-'));
  let stack: DemoStack | undefined;
  let ec2: EC2Client | undefined;
  let destroyClients = () => {};
  const launched: LaunchedInstance[] = [];
  let originalConfig: { body: unknown; etag: string | null } | undefined;

  try {
    heading('vpc-lease guided tour: the local stack');
    stack = await acquireStack(env, { out, signal, log: options.log });
    const clients = localClients(stack.motoEndpoint);
    ec2 = clients.ec2;
    destroyClients = () => {
      clients.ec2.destroy();
      clients.dynamo.destroy();
    };
    out(
      indent(
        [
          `HTTP API        ${stack.apiUrl}`,
          `Lambda invoke   ${stack.lambdaEndpoint}`,
          `moto_server     ${stack.motoEndpoint}   (EC2 + DynamoDB)`,
          `VPC             ${stack.vpcId}, subnet ${stack.subnetId}`,
          '',
        ].join('\n'),
      ),
    );
    const apiUrl = stack.apiUrl;
    const admin = async (...args: string[]) => {
      let text = '';
      const code = await adminCli([...args, '--local', '--api-url', apiUrl], {
        stdout: { write: (chunk: string) => (text += chunk) },
        stderr: { write: (chunk: string) => (text += chunk) },
        env: {},
      });
      return { code, text };
    };
    const showAdmin = async (...args: string[]) => {
      out(`$ vpc-lease ${args.join(' ')}\n`);
      const { code, text } = await admin(...args);
      out(indent(text));
      if (code !== 0) throw new Error(`vpc-lease ${args.join(' ')} exited ${code}.`);
    };

    // ------------------------------------------------------------ 1. config
    checkAborted();
    heading('1. Dual stack, and a small route limit, so that a handful of hosts fill a table');
    const current = await fetch(`${apiUrl}/v1/admin/config`, { headers: operatorHeaders() });
    originalConfig = { body: await current.json(), etag: current.headers.get('etag') };
    const routeLimit = await demoRouteLimit(apiUrl, ROOM);
    out(
      indent(
        `Backend.RouteLimit is the "Routes per route table" quota (50 by default). Publishing ${routeLimit}\n` +
          `leaves room for ${ROOM} leases next to the routes already in the fullest table.\n` +
          `EnableIPv6 gives every host a /64 of IPv6Network too, routed to its ENI beside the IPv4 route\n` +
          '(AWS counts IPv4 and IPv6 routes apart, each against the quota).\n\n',
      ),
    );
    const published = originalConfig.body as Record<string, unknown>;
    const config = {
      ...published,
      ...(published.EnableIPv6 === true ? {} : { EnableIPv6: true, IPv6Network: DEMO_IPV6_NETWORK }),
      Backend: { ...((published as { Backend: object }).Backend ?? {}), RouteLimit: routeLimit },
    };
    const configFile = join(workDir, 'network.json');
    await writeJson(configFile, config);
    await showAdmin('config', 'set', configFile);

    // ------------------------------------------------------------ 2. hosts join
    checkAborted();
    heading(`2. ${FIRST_HOSTS} instances start, each runs vpc-lease-agent --once`);
    const first = await launchInstances(ec2, stack.subnetId, FIRST_HOSTS);
    launched.push(...first);
    const firstRuns = await runAgents(first, { apiUrl, workDir, children, signal });
    for (const run of firstRuns) {
      out(indent(`${run.host.instanceId} (${run.host.privateIp}): ${describeRun(run)}\n`));
      if (run.code !== 0)
        throw new Error(`The agent of ${run.host.instanceId} failed: ${run.error ?? run.code}`);
    }

    // ------------------------------------------------------------ 3. leases and routes
    checkAborted();
    heading('3. Who holds which subnet');
    await showAdmin('leases');
    heading(
      '4. The VPC route tables (DescribeRouteTables): two routes per lease (IPv4, IPv6), to the host ENI',
    );
    out(indent(formatRouteTables(await routeTables(ec2, stack.vpcId), launched)));
    out('\n');
    await showAdmin('routes');

    // ------------------------------------------------------------ 5. termination
    checkAborted();
    const victim = first[0]!;
    const { subnet: victimSubnet, ipv6Subnet: victimIpv6Subnet } = await leaseOf(apiUrl, victim.instanceId);
    heading(`5. ${victim.instanceId} terminates; EventBridge delivers its state change`);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [victim.instanceId] }));
    out(indent(`TerminateInstances ${victim.instanceId}\n`));
    const outcome = await invokeInstanceState(stack.lambdaEndpoint, victim.instanceId, 'terminated');
    out(indent(`instanceState Lambda answered: ${JSON.stringify(outcome)}\n\n`));
    const tablesAfter = await routeTables(ec2, stack.vpcId);
    out(indent(formatRouteTables(tablesAfter, launched)));
    const left = tablesAfter.filter((t) =>
      t.Routes?.some(
        (r) =>
          r.DestinationCidrBlock === victimSubnet ||
          (victimIpv6Subnet !== undefined && r.DestinationIpv6CidrBlock === victimIpv6Subnet),
      ),
    );
    const victimRoutes = victimIpv6Subnet ? `${victimSubnet} and ${victimIpv6Subnet}` : victimSubnet;
    out(
      indent(
        left.length === 0
          ? `\nThe routes to ${victimRoutes} are gone from every table, and so is the lease:\n\n`
          : `\nA route to ${victimRoutes} is STILL in ${left.map((t) => t.RouteTableId).join(', ')}.\n\n`,
      ),
    );
    if (left.length > 0) throw new Error(`The route of the terminated ${victim.instanceId} was not removed.`);
    await showAdmin('leases');

    // ------------------------------------------------------------ 6. full table
    checkAborted();
    heading(`6. ${ROOM_AFTER + 1} more instances: the table has room for ${ROOM_AFTER}`);
    const more = await launchInstances(ec2, stack.subnetId, ROOM_AFTER + 1);
    launched.push(...more);
    // one after the other, so that the last one is the one refused
    const moreRuns: AgentRun[] = [];
    for (const host of more) {
      const [run] = await runAgents([host], { apiUrl, workDir, children, signal });
      moreRuns.push(run!);
      out(indent(`${host.instanceId} (${host.privateIp}): ${describeRun(run!)}\n`));
    }
    out('\n');
    await showAdmin('routes');
    const refused = moreRuns.at(-1)!;
    if (refused.code === 0 || !refused.error?.includes('Route table full')) {
      throw new Error(
        `Expected the last host to be refused with RouteLimitExceeded; its agent said: ${describeRun(refused)}`,
      );
    }

    heading('Done');
    out(
      indent(
        'Leases and routes came from the control plane only; a terminated host lost its route by\n' +
          'its state-change event; a full table refused the next host before any route was written.\n',
      ),
    );
  } finally {
    killChildren();
    if (stack && !stack.started)
      await undoOnSharedStack(stack, ec2, launched, originalConfig).catch(() => {});
    destroyClients();
    if (stack?.started) {
      out('\nStopping the local stack...\n');
      await stack.stop();
      out('Stopped; nothing left running.\n');
    }
    await rm(workDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the stack

async function acquireStack(
  env: NodeJS.ProcessEnv,
  options: {
    out: (text: string) => void;
    signal?: AbortSignal | undefined;
    log?: ((text: string) => void) | undefined;
  },
): Promise<DemoStack> {
  const url = env.VPCLEASE_API_URL;
  if (url && isLoopbackUrl(url) && (await answers(url))) {
    const motoEndpoint = env.AWS_ENDPOINT_URL ?? `http://127.0.0.1:${env.VPCLEASE_MOTO_PORT ?? '5000'}`;
    const { ec2, dynamo } = localClients(motoEndpoint);
    try {
      const vpcId = await findLocalVpc(ec2);
      if (!vpcId)
        throw new Error(`No VPC tagged Name=vpc-lease-local at ${motoEndpoint} (AWS_ENDPOINT_URL).`);
      const subnets = await ec2.send(
        new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
      );
      options.out(`  Using the running local stack at ${url} (VPCLEASE_API_URL).\n`);
      return {
        apiUrl: url.replace(/\/$/, ''),
        motoEndpoint,
        lambdaEndpoint: `http://127.0.0.1:${env.VPCLEASE_LAMBDA_PORT ?? '3002'}`,
        vpcId,
        subnetId: subnets.Subnets![0]!.SubnetId!,
        started: false,
        stop: async () => {},
      };
    } finally {
      ec2.destroy();
      dynamo.destroy();
    }
  }
  if (url) options.out(`  VPCLEASE_API_URL=${url} does not answer; starting a fresh stack instead.\n`);
  options.out('  Starting moto_server and serverless-offline on free ports (about 20 s)...\n');
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [apiPort, motoPort, lambdaPort] = [...ports];
  const stack = await startLocalStack({
    apiPort,
    motoPort,
    lambdaPort,
    quiet: options.log === undefined,
    ...(options.log ? { log: options.log } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return {
    apiUrl: stack.apiUrl,
    motoEndpoint: stack.motoEndpoint,
    lambdaEndpoint: stack.lambdaEndpoint,
    vpcId: stack.vpc.vpcId,
    subnetId: stack.vpc.subnetId,
    started: true,
    stop: () => stack.stop(),
  };
}

/** On a stack the demo did not start: revoke its leases, terminate its instances, restore the config. */
async function undoOnSharedStack(
  stack: DemoStack,
  ec2: EC2Client | undefined,
  launched: readonly LaunchedInstance[],
  original: { body: unknown; etag: string | null } | undefined,
): Promise<void> {
  const mine = new Set(launched.map((h) => h.instanceId));
  const response = await fetch(`${stack.apiUrl}/v1/admin/leases?limit=1000`, { headers: operatorHeaders() });
  const { leases } = (await response.json()) as LeaseListJson;
  for (const lease of leases.filter((l) => mine.has(l.instanceId))) {
    await fetch(`${stack.apiUrl}/v1/admin/leases/${lease.subnet.replace('/', '-')}`, {
      method: 'DELETE',
      headers: operatorHeaders(),
    });
  }
  if (ec2 && launched.length > 0) {
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: launched.map((h) => h.instanceId) }));
  }
  if (original) {
    await fetch(`${stack.apiUrl}/v1/admin/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...operatorHeaders() },
      body: JSON.stringify(original.body),
    });
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url.replace(/\/$/, '')}/v1/admin/config`, {
      headers: operatorHeaders(),
      signal: AbortSignal.timeout(2000),
    });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * RouteLimit = routes in the fullest table that are not leases' + live leases + `room`:
 * the config service accepts it (it strands nothing) and the table is full after `room`
 * more leases.
 */
async function demoRouteLimit(apiUrl: string, room: number): Promise<number> {
  const usage = (await (
    await fetch(`${apiUrl}/v1/admin/routes`, { headers: operatorHeaders() })
  ).json()) as RouteUsageJson;
  const leases = await fetch(`${apiUrl}/v1/admin/leases?limit=1000`, { headers: operatorHeaders() });
  const now = Date.now();
  const live = ((await leases.json()) as LeaseListJson).leases.filter(
    (l) => Date.parse(l.expiresAt) > now,
  ).length;
  // AWS counts a table's IPv4 and IPv6 routes apart: the fuller family decides.
  const foreign = Math.max(0, ...usage.tables.flatMap((t) => [t.foreign, t.ipv6?.foreign ?? 0]));
  return foreign + live + room;
}

// ---------------------------------------------------------------- agents and events

async function runAgents(
  hosts: readonly LaunchedInstance[],
  context: { apiUrl: string; workDir: string; children: Set<ChildProcess>; signal: AbortSignal | undefined },
): Promise<AgentRun[]> {
  if (context.signal?.aborted) throw new Error('Demo interrupted.');
  return Promise.all(
    hosts.map(async (host) => {
      const subnetFile = join(context.workDir, `${host.instanceId}.env`);
      const env = { ...process.env };
      for (const name of Object.keys(env)) if (name.startsWith('VPCLEASE_')) delete env[name];
      const child = spawn(
        process.execPath,
        [
          AGENT_BIN,
          '--api-url',
          context.apiUrl,
          '--local-instance-id',
          host.instanceId,
          '--private-ip',
          host.privateIp,
          '--subnet-file',
          subnetFile,
          '--mtu',
          '9001',
          '--log-format',
          'json',
          '--once',
        ],
        { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      context.children.add(child);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), AGENT_TIMEOUT_MS);
      const interrupt = () => child.kill('SIGTERM');
      context.signal?.addEventListener('abort', interrupt, { once: true });
      const code = await new Promise<number | null>((done) => child.once('close', (status) => done(status)));
      clearTimeout(timer);
      context.signal?.removeEventListener('abort', interrupt);
      context.children.delete(child);
      const subnetEnv = code === 0 ? await readFile(subnetFile, 'utf8').catch(() => undefined) : undefined;
      return { host, code, subnetEnv, error: lastError(stderr) };
    }),
  );
}

function lastError(stderr: string): string | undefined {
  let message: string | undefined;
  for (const line of stderr.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string; error?: unknown };
      if (entry.level === 'error')
        message = [entry.message, entry.error].filter((p) => typeof p === 'string').join(': ');
    } catch {
      // not a log line (the SDK's Node version warning, say)
    }
  }
  return message;
}

async function leaseOf(apiUrl: string, instanceId: string): Promise<LeaseJson> {
  const response = await fetch(`${apiUrl}/v1/admin/leases?limit=1000`, { headers: operatorHeaders() });
  const lease = ((await response.json()) as LeaseListJson).leases.find((l) => l.instanceId === instanceId);
  if (!lease) throw new Error(`${instanceId} holds no lease.`);
  return lease;
}

function describeRun(run: AgentRun): string {
  if (run.code === 0) {
    const line = /^FLANNEL_SUBNET=.*$/m.exec(run.subnetEnv ?? '')?.[0];
    const ipv6 = /^FLANNEL_IPV6_SUBNET=.*$/m.exec(run.subnetEnv ?? '')?.[0];
    return `subnet.env written, ${line ?? 'no FLANNEL_SUBNET line'}${ipv6 ? `, ${ipv6}` : ''}`;
  }
  return `agent exited ${run.code ?? 'on a signal'}: ${run.error ?? 'no error logged'}`;
}

/** What EventBridge would deliver for the instance, through serverless-offline's Lambda invoke API. */
async function invokeInstanceState(
  lambdaEndpoint: string,
  instanceId: string,
  state: string,
): Promise<unknown> {
  const event = {
    version: '0',
    id: randomUUID(),
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account: LOCAL_ACCOUNT,
    time: new Date().toISOString(),
    region: LOCAL_REGION,
    resources: [`arn:aws:ec2:${LOCAL_REGION}:${LOCAL_ACCOUNT}:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
  };
  const response = await fetch(
    `${lambdaEndpoint}/2015-03-31/functions/vpc-lease-local-instanceState/invocations`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(30_000),
    },
  );
  const text = await response.text();
  if (!response.ok) throw new Error(`Invoking instanceState failed with ${response.status}: ${text}`);
  // Lambda's Invoke answers 200 for a failed invocation too (a timeout included); this header says so.
  const functionError = response.headers.get('x-amz-function-error');
  if (functionError) throw new Error(`instanceState failed (${functionError}): ${text.slice(0, 300)}`);
  return text === '' ? undefined : JSON.parse(text);
}

// ---------------------------------------------------------------- output

async function routeTables(ec2: EC2Client, vpcId: string): Promise<RouteTable[]> {
  const out = await ec2.send(
    new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  return [...(out.RouteTables ?? [])].sort((a, b) =>
    (a.RouteTableId ?? '').localeCompare(b.RouteTableId ?? ''),
  );
}

function formatRouteTables(tables: readonly RouteTable[], hosts: readonly LaunchedInstance[]): string {
  const byEni = new Map(hosts.map((h) => [h.networkInterfaceId, h.instanceId]));
  return tables.map((table) => formatRouteTable(table, byEni)).join('\n');
}

function formatRouteTable(table: RouteTable, byEni: ReadonlyMap<string, string>): string {
  const main = table.Associations?.some((a) => a.Main) ? ' (main)' : '';
  const rows = (table.Routes ?? []).map((route) => {
    const destination =
      route.DestinationCidrBlock ?? route.DestinationIpv6CidrBlock ?? route.DestinationPrefixListId ?? '?';
    const target =
      route.NetworkInterfaceId !== undefined
        ? `${route.NetworkInterfaceId}${byEni.has(route.NetworkInterfaceId) ? ` (${byEni.get(route.NetworkInterfaceId)})` : ''}`
        : (route.GatewayId ?? route.NatGatewayId ?? route.InstanceId ?? route.VpcPeeringConnectionId ?? '?');
    return [destination, target] as const;
  });
  const width = Math.max(0, ...rows.map(([destination]) => destination.length));
  return `${table.RouteTableId}${main}\n${rows.map(([d, t]) => `  ${d.padEnd(width)}  -> ${t}`).join('\n')}\n`;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

// ---------------------------------------------------------------- npm run demo

async function cli(): Promise<void> {
  const interrupted = new AbortController();
  let firstSignalAt = 0;
  const onSignal = () => {
    if (interrupted.signal.aborted) {
      // Ctrl-C reaches us twice at once under npm/tsx (the group, then tsx's relay): only a
      // later, deliberate second one means "stop waiting for the cleanup".
      if (Date.now() - firstSignalAt > 1000) process.exit(130);
      return;
    }
    firstSignalAt = Date.now();
    process.stderr.write('\nInterrupted: stopping everything the demo started...\n');
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo({ out: (text) => process.stdout.write(text), signal: interrupted.signal });
    process.exitCode = 0;
  } catch (error) {
    if (interrupted.signal.aborted) {
      process.stderr.write('\nDemo interrupted.\n');
      process.exitCode = 130;
      return;
    }
    process.stderr.write(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await cli();

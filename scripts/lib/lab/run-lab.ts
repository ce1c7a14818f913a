/**
 * The data path lab: packets over vpc-lease's routes, on one machine (see scripts/lab.ts).
 *
 *  1. the local stack on free ports; N moto instances;
 *  2. a router namespace, an internet namespace, one namespace per host at its private IP;
 *  3. in each host, a loopback relay to the API and the real agent (--ip-masq), which leases a
 *     subnet, installs its masquerade rules there and writes subnet.env;
 *  4. the router's routes mirrored from moto's route table;
 *  5. one container per host, attached by the real bridge + host-local plugins as flannel's
 *     CNI plugin configures them from subnet.env;
 *  6. what it shows: container to container with the sender's address (over IPv6 too, in
 *     dual stack, the default), egress masqueraded to
 *     the host's address, MTU, rules re-asserted after someone deletes them, a terminated
 *     host and a revoked lease cut off, and the rules gone with the lease on release.
 *
 * Everything it made is removed at the end, also on failure and on abort (Ctrl-C).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  type EC2Client,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { MASQ_CHAIN } from '../../../agent/masq-rules.js';
import { cidrOf, formatCidr, parseIpv6Cidr } from '../../../shared/cidr.js';
import type { LeaseJson, LeaseListJson } from '../../../shared/http/contract.js';
import {
  DUAL_STACK_NETWORK_CONFIG,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  localClients,
  operatorHeaders,
  startLocalStack,
} from '../local-stack.js';
import { freePort } from '../moto.js';
import { launchInstances } from '../seed.js';
import { type BridgeDelegateConf, cniAdd, cniDel, flannelDelegateConf } from './cni.js';
import { checkLabPrerequisites } from './preflight.js';
import { applyRouterRoutes, formatKernelRoutes, planRouterRoutes } from './router-routes.js';
import { inNs, type LabProcess, ProcessSet, pollUntil, waitForOutput } from './shell.js';
import {
  attachHost,
  buildRouter,
  enableIpv6,
  hostIpv6Index,
  INTERNET_IP,
  labNames,
  linkMtu,
  Namespaces,
  natChain,
  sweepDeadLabs,
  vpcIpv6Address,
} from './topology.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const AGENT_BIN = join(REPO_ROOT, 'agent/bin/vpc-lease-agent.mjs');
const HELPER = fileURLToPath(new URL('./netns-helper.mjs', import.meta.url));
/** the API's port inside each host namespace (its own loopback, so any port will do) */
const RELAY_PORT = 3000;
const ECHO_PORT = 7000;
const ASK_TIMEOUT_MS = 3_000;

export interface LabOptions {
  /** hosts (network namespaces); at least 3: one is terminated, one revoked, one released */
  hosts?: number;
  /** publish a dual-stack config and show IPv6 between containers too (default true) */
  dualStack?: boolean;
  /** progress for a person (stdout for `npm run lab`) */
  out?: (text: string) => void;
  signal?: AbortSignal;
}

export interface Ask {
  from: string;
  to: string;
  ok: boolean;
  /** the source address the receiver saw */
  peer?: string;
  error?: string;
}

export interface LabHostReport {
  instanceId: string;
  privateIp: string;
  ns: string;
  subnet: string;
  network: string;
  /** dual stack: the lease's IPv6 subnet and network */
  ipv6Subnet?: string;
  ipv6Network?: string;
  /** dual stack: the host's own IPv6 address on the "VPC" (the next hop of its IPv6 routes) */
  ipv6Address?: string;
  subnetEnv: string;
  /** `iptables -t nat -S VPCLEASE-POSTRTG` in the host, after the agent started */
  masqRules: string[];
  /** dual stack: `ip6tables -t nat -S VPCLEASE-POSTRTG` */
  masqRules6: string[];
  /** POSTROUTING rules in the host that jump to the chain */
  masqJumps: string[];
  container: { ns: string; ip: string; ipv6?: string; mtu: number };
}

export interface LabReport {
  runId: string;
  prefix: string;
  hosts: LabHostReport[];
  routerRoutes: string[];
  /** container i -> container i+1 */
  crossHost: Ask[];
  /** dual stack: container i -> container i+1 over IPv6 ([] in an IPv4-only lab) */
  crossHostIpv6: Ask[];
  /** container i -> the internet namespace */
  egress: Ask[];
  reassert: { host: string; rulesAfterFlush: number; rulesRestored: string[] };
  terminated: {
    instanceId: string;
    subnet: string;
    eventAnswer: unknown;
    routeInMoto: boolean;
    routerRoutes: string[];
    ask: Ask;
    /** dual stack: the IPv6 route and an IPv6 ask */
    ipv6?: { subnet: string; routeInMoto: boolean; ask: Ask };
  };
  revoked: {
    subnet: string;
    status: number;
    routeInMoto: boolean;
    routerRoutes: string[];
    ask: Ask;
    ipv6?: { subnet: string; routeInMoto: boolean; ask: Ask };
  };
  released: {
    instanceId: string;
    agentExit: number | string;
    rulesAfter: string[];
    rulesAfter6: string[];
    jumpsAfter: string[];
    subnetFileLeft: boolean;
    leaseLeft: boolean;
  };
  /** every process the lab started (agents, relays, echo servers), for the "nothing left" check */
  pids: number[];
  /** the local stack's serverless-offline process group */
  offlinePid: number;
  /** what cleanup could not remove (empty when everything went) */
  cleanupFailures: string[];
}

export async function runLab(options: LabOptions = {}): Promise<LabReport> {
  const hostCount = options.hosts ?? 3;
  if (!Number.isInteger(hostCount) || hostCount < 3 || hostCount > 20) {
    throw new Error('The lab needs 3 to 20 hosts (one is terminated, one revoked, one released).');
  }
  const dualStack = options.dualStack ?? true;
  const write = options.out ?? (() => {});
  const startedAt = Date.now();
  // Each step's elapsed time, so a slow machine shows where the time goes.
  const out = (text: string) =>
    write(
      text.startsWith('\n') || text.trim() === ''
        ? text
        : `[${Math.round((Date.now() - startedAt) / 1000)}s] ${text}`,
    );
  const signal = options.signal;
  const checkAborted = () => {
    if (signal?.aborted) throw new Error('Lab interrupted.');
  };
  await checkLabPrerequisites();
  const swept = await sweepDeadLabs(processAlive);
  if (swept.length > 0) out(`Removed namespaces left by labs that were killed: ${swept.join(', ')}\n`);

  const runId = randomBytes(3).toString('hex');
  const names = labNames(runId);
  const namespaces = new Namespaces();
  const processes = new ProcessSet();
  const workDir = await mkdtemp(join(tmpdir(), `vpc-lease-lab-${runId}-`));
  const containers: { hostNs: string; ns: string; id: string; conf: BridgeDelegateConf }[] = [];
  let relayServer: Server | undefined;
  let stack: Awaited<ReturnType<typeof startLocalStack>> | undefined;
  let ec2: EC2Client | undefined;
  const onAbort = () => void processes.stopAll(1_000);
  signal?.addEventListener('abort', onAbort, { once: true });
  const report: Partial<LabReport> & { cleanupFailures: string[] } = {
    runId,
    prefix: names.prefix,
    cleanupFailures: [],
  };

  try {
    // ------------------------------------------------------------ 1. control plane, instances
    out(`Lab ${runId}: namespaces ${names.prefix}*, work directory ${workDir}\n`);
    out('Starting the local stack on free ports (moto + serverless-offline)...\n');
    const ports = new Set<number>();
    while (ports.size < 3) ports.add(await freePort());
    const [apiPort, motoPort, lambdaPort] = [...ports] as [number, number, number];
    stack = await startLocalStack({
      apiPort,
      motoPort,
      lambdaPort,
      quiet: true,
      ...(dualStack ? { networkConfig: DUAL_STACK_NETWORK_CONFIG } : {}),
      ...(signal ? { signal } : {}),
    });
    report.offlinePid = stack.offlinePid;
    ec2 = localClients(stack.motoEndpoint).ec2;
    const vpc = await describeVpc(ec2, stack.vpc.vpcId, stack.vpc.subnetId);
    const instances = await launchInstances(ec2, stack.vpc.subnetId, hostCount);
    out(`VPC ${vpc.cidr}, subnet ${vpc.subnetCidr}, route table ${stack.vpc.routeTableId}\n`);
    checkAborted();

    // ------------------------------------------------------------ 2. namespaces
    // Dual stack: the hosts also get an address of the VPC's IPv6 block (its first /64), the
    // next hop the router uses for their IPv6 routes, as their ENI's IPv6 address would be.
    const ipv6SubnetCidr =
      dualStack && stack.vpc.ipv6Cidr
        ? formatCidr(cidrOf(6, parseIpv6Cidr(stack.vpc.ipv6Cidr).base, 64))
        : undefined;
    if (dualStack && !ipv6SubnetCidr)
      throw new Error('The seeded VPC has no IPv6 block; the dual-stack lab needs one.');
    const { gateway, gateway6 } = await buildRouter(namespaces, names, { ...vpc, ipv6SubnetCidr });
    const hosts = instances.map((instance, i) => ({
      instance,
      ns: names.host(i + 1),
      index: i + 1,
      ipv6Address: ipv6SubnetCidr ? vpcIpv6Address(ipv6SubnetCidr, hostIpv6Index(i + 1)) : undefined,
    }));
    const ipv6ByPrivateIp = new Map(
      hosts.flatMap((h) => (h.ipv6Address ? [[h.instance.privateIp, h.ipv6Address] as const] : [])),
    );
    for (const host of hosts) {
      await attachHost(
        namespaces,
        names.router,
        { ns: host.ns, privateIp: host.instance.privateIp },
        host.index,
        vpc.subnetCidr,
        gateway,
        host.ipv6Address && gateway6 ? { address: host.ipv6Address, gateway: gateway6 } : undefined,
      );
      out(
        `host ${host.ns}: ${host.instance.instanceId} at ${host.instance.privateIp}` +
          `${host.ipv6Address ? ` and ${host.ipv6Address}` : ''}\n`,
      );
    }
    checkAborted();

    // ------------------------------------------------------------ 3. relay + agents
    const socketPath = join(workDir, 'api.sock');
    relayServer = await serveUnixToTcp(socketPath, apiPort);
    const agents = new Map<string, LabProcess>();
    const subnetFileOf = (ns: string) => join(workDir, ns, 'subnet.env');
    await Promise.all(
      hosts.map(async (host) => {
        await mkdir(join(workDir, host.ns), { recursive: true });
        const relay = processes.start(`relay in ${host.ns}`, 'ip', [
          'netns',
          'exec',
          host.ns,
          process.execPath,
          HELPER,
          'relay',
          '127.0.0.1',
          String(RELAY_PORT),
          socketPath,
        ]);
        await waitForOutput(relay, 'listening', 15_000);
        const agent = processes.start(
          `agent in ${host.ns}`,
          'ip',
          [
            'netns',
            'exec',
            host.ns,
            process.execPath,
            AGENT_BIN,
            '--api-url',
            `http://127.0.0.1:${RELAY_PORT}`,
            '--local-instance-id',
            host.instance.instanceId,
            '--private-ip',
            host.instance.privateIp,
            '--subnet-file',
            subnetFileOf(host.ns),
            '--ip-masq',
            '--release-on-exit',
            '--log-format',
            'json',
          ],
          agentEnv(),
        );
        agents.set(host.ns, agent);
      }),
    );
    out(
      `Agents started in every host (vpc-lease-agent --ip-masq --release-on-exit); waiting for subnet.env...\n`,
    );
    const hostReports: LabHostReport[] = [];
    for (const host of hosts) {
      const agent = agents.get(host.ns)!;
      const subnetEnv = await pollUntil(
        `the agent in ${host.ns} wrote no subnet.env:\n${agent.output()}`,
        async () => {
          if (agent.child.exitCode !== null)
            throw new Error(`the agent in ${host.ns} exited:\n${agent.output()}`);
          return readFile(subnetFileOf(host.ns), 'utf8').catch(() => undefined);
        },
        60_000,
        signal,
      );
      const lease = await leaseOf(stack.apiUrl, host.instance.instanceId);
      hostReports.push({
        instanceId: host.instance.instanceId,
        privateIp: host.instance.privateIp,
        ns: host.ns,
        subnet: lease.subnet,
        network: lease.network,
        ...(lease.ipv6Subnet ? { ipv6Subnet: lease.ipv6Subnet, ipv6Network: lease.ipv6Network } : {}),
        ...(host.ipv6Address ? { ipv6Address: host.ipv6Address } : {}),
        subnetEnv,
        masqRules: await natChain(host.ns, MASQ_CHAIN),
        masqRules6: dualStack ? await natChain(host.ns, MASQ_CHAIN, 'ipv6') : [],
        masqJumps: await masqJumps(host.ns),
        container: { ns: names.container(host.index), ip: '', mtu: 0 },
      });
    }
    report.hosts = hostReports;
    for (const h of hostReports) {
      const leased = h.ipv6Subnet ? `${h.subnet} and ${h.ipv6Subnet}` : h.subnet;
      out(`\n${h.ns} (${h.instanceId}) leased ${leased}; subnet.env:\n${indent(h.subnetEnv)}`);
      out(`  iptables -t nat -S ${MASQ_CHAIN}:\n${indent(h.masqRules.join('\n'))}\n`);
      if (h.masqRules6.length > 0)
        out(`  ip6tables -t nat -S ${MASQ_CHAIN}:\n${indent(h.masqRules6.join('\n'))}\n`);
    }

    // ------------------------------------------------------------ 4. router routes
    const mirrored = new Set<string>();
    const mirror = async () => {
      const routes = await mirrorRoutes(
        ec2!,
        stack!.vpc.routeTableId,
        names.router,
        mirrored,
        ipv6ByPrivateIp,
      );
      out(`\nrouter routes (mirrored from ${stack!.vpc.routeTableId}):\n${indent(routes.join('\n'))}\n`);
      return routes;
    };
    report.routerRoutes = await mirror();

    // ------------------------------------------------------------ 5. containers
    for (const [i, h] of hostReports.entries()) {
      const containerId = `${runId}-h${i + 1}-c1`;
      await namespaces.add(h.container.ns);
      if (dualStack) await enableIpv6(h.container.ns, { forwarding: false });
      const conf = flannelDelegateConf(h.subnetEnv, join(workDir, 'cni', h.ns));
      containers.push({ hostNs: h.ns, ns: h.container.ns, id: containerId, conf });
      const attached = await cniAdd(h.ns, h.container.ns, containerId, conf);
      h.container.ip = attached.ip;
      if (attached.ipv6) h.container.ipv6 = attached.ipv6;
      h.container.mtu = await linkMtu(h.container.ns, 'eth0');
      out(
        `container ${h.container.ns}: ${attached.ip}${attached.ipv6 ? ` and ${attached.ipv6}` : ''} ` +
          `(gateway ${attached.gateway}), mtu ${h.container.mtu}\n`,
      );
    }
    out(`\nbridge plugin configuration of ${hostReports[0]!.ns} (what flannel's CNI plugin delegates):\n`);
    out(indent(JSON.stringify(containers[0]!.conf, null, 2)));
    out('\n');
    for (const h of hostReports) {
      // one echo server per family the container has
      const listens = [['echo', '0.0.0.0'], ...(h.container.ipv6 ? [['echo6', h.container.ipv6]] : [])];
      for (const [label, address] of listens) {
        const server = processes.start(`${label} in ${h.container.ns}`, 'ip', [
          'netns',
          'exec',
          h.container.ns,
          process.execPath,
          HELPER,
          'serve',
          address!,
          String(ECHO_PORT),
        ]);
        await waitForOutput(server, 'listening', 15_000);
      }
    }
    const internetServer = processes.start('echo in the internet', 'ip', [
      'netns',
      'exec',
      names.internet,
      process.execPath,
      HELPER,
      'serve',
      INTERNET_IP,
      String(ECHO_PORT),
    ]);
    await waitForOutput(internetServer, 'listening', 15_000);
    checkAborted();

    // ------------------------------------------------------------ 6. what it shows
    const ask = async (fromNs: string, fromLabel: string, toIp: string): Promise<Ask> => {
      const { stdout } = await inNs(fromNs, process.execPath, [
        HELPER,
        'ask',
        toIp,
        String(ECHO_PORT),
        String(ASK_TIMEOUT_MS),
      ]);
      const answer = JSON.parse(stdout.trim()) as { ok: boolean; peer?: string; error?: string };
      return { from: fromLabel, to: toIp, ...answer };
    };
    const showAsk = (a: Ask) =>
      out(`  ${a.from} -> ${a.to}: ${a.ok ? `arrived from ${a.peer}` : `failed (${a.error})`}\n`);

    out('\nContainer to container across hosts (the receiver reports the source it saw):\n');
    report.crossHost = [];
    for (const [i, h] of hostReports.entries()) {
      const next = hostReports[(i + 1) % hostReports.length]!;
      const a = await ask(h.container.ns, h.container.ip, next.container.ip);
      report.crossHost.push(a);
      showAsk(a);
    }

    report.crossHostIpv6 = [];
    if (dualStack) {
      out('\nThe same over IPv6 (the routes to the IPv6 subnets, beside the IPv4 ones):\n');
      for (const [i, h] of hostReports.entries()) {
        const next = hostReports[(i + 1) % hostReports.length]!;
        const a = await ask(h.container.ns, h.container.ipv6!, next.container.ipv6!);
        report.crossHostIpv6.push(a);
        showAsk(a);
      }
    }

    out(`\nEgress to the internet (${INTERNET_IP}, which drops sources outside ${vpc.cidr}):\n`);
    report.egress = [];
    for (const h of hostReports) {
      const a = await ask(h.container.ns, h.container.ip, INTERNET_IP);
      report.egress.push(a);
      showAsk(a);
    }

    // Someone flushes the agent's chain: the agent puts it back within its resync period.
    const first = hostReports[0]!;
    await inNs(first.ns, 'iptables', ['-w', '5', '-t', 'nat', '-F', MASQ_CHAIN]);
    const rulesAfterFlush = (await natChain(first.ns, MASQ_CHAIN)).length;
    out(
      `\niptables -t nat -F ${MASQ_CHAIN} in ${first.ns}: ${rulesAfterFlush} rules left; waiting for the agent...\n`,
    );
    const rulesRestored = await pollUntil(
      `the agent in ${first.ns} did not put its masquerade rules back`,
      async () => {
        const rules = await natChain(first.ns, MASQ_CHAIN);
        return rules.length === first.masqRules.length ? rules : undefined;
      },
      30_000,
      signal,
    );
    out(`  restored: ${rulesRestored.length} rules\n`);
    report.reassert = { host: first.ns, rulesAfterFlush, rulesRestored };
    checkAborted();

    // Dual stack: the host's IPv6 route is gone too, and its containers unreachable over IPv6.
    const ipv6CutOff = async (gone: LabHostReport) => {
      if (!gone.ipv6Subnet || !gone.container.ipv6 || !first.container.ipv6) return {};
      const askIpv6 = await ask(first.container.ns, first.container.ipv6, gone.container.ipv6);
      showAsk(askIpv6);
      return {
        ipv6: {
          subnet: gone.ipv6Subnet,
          routeInMoto: await routeExists(ec2!, stack!.vpc.routeTableId, gone.ipv6Subnet),
          ask: askIpv6,
        },
      };
    };

    // A host terminates: EC2 says so on EventBridge; the instanceState Lambda removes its route.
    const victim = hostReports[hostReports.length - 1]!;
    const victimAgent = agents.get(victim.ns)!;
    out(
      `\n${victim.instanceId} (${victim.ns}) terminates; its state-change event goes to the instanceState Lambda\n`,
    );
    await processes.kill(victimAgent); // the machine is gone: its agent does not get to say goodbye
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [victim.instanceId] }));
    const eventAnswer = await invokeInstanceState(stack.lambdaEndpoint, victim.instanceId, 'terminated');
    out(`  instanceState answered ${JSON.stringify(eventAnswer)}\n`);
    const afterTermination = await mirror();
    const askTerminated = await ask(first.container.ns, first.container.ip, victim.container.ip);
    showAsk(askTerminated);
    report.terminated = {
      instanceId: victim.instanceId,
      subnet: victim.subnet,
      eventAnswer,
      routeInMoto: await routeExists(ec2, stack.vpc.routeTableId, victim.subnet),
      routerRoutes: afterTermination,
      ask: askTerminated,
      ...(await ipv6CutOff(victim)),
    };

    // An operator revokes a lease: its route goes, and with it the host's containers.
    const revokedHost = hostReports[1]!;
    out(`\nAn operator revokes ${revokedHost.subnet} (${revokedHost.ns})\n`);
    const revoke = await fetch(`${stack.apiUrl}/v1/admin/leases/${revokedHost.subnet.replace('/', '-')}`, {
      method: 'DELETE',
      headers: operatorHeaders(),
      signal: AbortSignal.timeout(30_000),
    });
    await revoke.arrayBuffer();
    out(`  DELETE /v1/admin/leases/${revokedHost.subnet.replace('/', '-')}: ${revoke.status}\n`);
    const afterRevoke = await mirror();
    const askRevoked = await ask(first.container.ns, first.container.ip, revokedHost.container.ip);
    showAsk(askRevoked);
    report.revoked = {
      subnet: revokedHost.subnet,
      status: revoke.status,
      routeInMoto: await routeExists(ec2, stack.vpc.routeTableId, revokedHost.subnet),
      routerRoutes: afterRevoke,
      ask: askRevoked,
      ...(await ipv6CutOff(revokedHost)),
    };

    // The first host's agent stops with --release-on-exit: lease, routes and rules go.
    out(`\nThe agent of ${first.ns} stops (SIGTERM, --release-on-exit)\n`);
    const agentExit = await processes.stop(agents.get(first.ns)!);
    report.released = {
      instanceId: first.instanceId,
      agentExit,
      rulesAfter: await natChain(first.ns, MASQ_CHAIN),
      rulesAfter6: dualStack ? await natChain(first.ns, MASQ_CHAIN, 'ipv6') : [],
      jumpsAfter: await masqJumps(first.ns),
      subnetFileLeft: await stat(subnetFileOf(first.ns)).then(
        () => true,
        () => false,
      ),
      leaseLeft: (await leases(stack.apiUrl)).some((l) => l.instanceId === first.instanceId),
    };
    out(
      `  exit ${agentExit}; ${MASQ_CHAIN} rules left: ${report.released.rulesAfter.length}; ` +
        `subnet.env left: ${report.released.subnetFileLeft}; lease left: ${report.released.leaseLeft}\n`,
    );
  } finally {
    signal?.removeEventListener('abort', onAbort);
    out('\nCleaning up: agents, relays, echo servers, containers, namespaces, the local stack...\n');
    await processes.stopAll();
    for (const c of containers.reverse()) await cniDel(c.hostNs, c.ns, c.id, c.conf).catch(() => {});
    report.cleanupFailures.push(...(await namespaces.removeAll()));
    if (relayServer) await new Promise<void>((done) => relayServer!.close(() => done()));
    ec2?.destroy();
    await stack?.stop().catch((error: Error) => report.cleanupFailures.push(error.message));
    await rm(workDir, { recursive: true, force: true });
    report.pids = processes.pids;
    out(
      report.cleanupFailures.length === 0
        ? 'Nothing left behind.\n'
        : `Left behind: ${report.cleanupFailures.join('; ')}\n`,
    );
  }
  return report as LabReport;
}

// ---------------------------------------------------------------- helpers

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `  ${line}`))
    .join('\n');
}

/** The agent's environment: no VPCLEASE_* of the caller's shell leaks into the lab. */
function agentEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('VPCLEASE_')) delete env[name];
  return env;
}

async function masqJumps(ns: string): Promise<string[]> {
  const rules = await natChain(ns, 'POSTROUTING');
  return rules.filter((rule) => rule.includes(`-j ${MASQ_CHAIN}`));
}

async function describeVpc(
  ec2: EC2Client,
  vpcId: string,
  subnetId: string,
): Promise<{ cidr: string; subnetCidr: string }> {
  const [vpcs, subnets] = await Promise.all([
    ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] })),
    ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] })),
  ]);
  return { cidr: vpcs.Vpcs![0]!.CidrBlock!, subnetCidr: subnets.Subnets![0]!.CidrBlock! };
}

/** Unix socket in this namespace -> the API's TCP port on 127.0.0.1 (the host relays dial the socket). */
function serveUnixToTcp(socketPath: string, port: number): Promise<Server> {
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port });
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

async function leases(apiUrl: string): Promise<LeaseJson[]> {
  const response = await fetch(`${apiUrl}/v1/admin/leases?limit=1000`, {
    headers: operatorHeaders(),
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`GET /v1/admin/leases answered ${response.status}`);
  return ((await response.json()) as LeaseListJson).leases;
}

async function leaseOf(apiUrl: string, instanceId: string): Promise<LeaseJson> {
  const lease = (await leases(apiUrl)).find((l) => l.instanceId === instanceId);
  if (!lease) throw new Error(`no lease for ${instanceId} although its agent wrote subnet.env`);
  return lease;
}

async function routeExists(ec2: EC2Client, routeTableId: string, destination: string): Promise<boolean> {
  const out = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }));
  const routes = out.RouteTables?.[0]?.Routes ?? [];
  if (!destination.includes(':')) return routes.some((r) => r.DestinationCidrBlock === destination);
  // moto may print an IPv6 block with leading zeros: compare in RFC 5952 form
  const wanted = formatCidr(parseIpv6Cidr(destination));
  return routes.some(
    (r) =>
      r.DestinationIpv6CidrBlock !== undefined &&
      formatCidr(parseIpv6Cidr(r.DestinationIpv6CidrBlock)) === wanted,
  );
}

/** Copies moto's route table into the router namespace; returns the kernel routes it set. */
async function mirrorRoutes(
  ec2: EC2Client,
  routeTableId: string,
  routerNs: string,
  mirrored: Set<string>,
  /** dual stack: each host's IPv6 next hop, by its private IPv4 */
  ipv6ByPrivateIp: ReadonlyMap<string, string>,
): Promise<string[]> {
  const tables = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }));
  const routes = tables.RouteTables?.[0]?.Routes ?? [];
  const eniIds = [...new Set(routes.flatMap((r) => (r.NetworkInterfaceId ? [r.NetworkInterfaceId] : [])))];
  const eniAddress = new Map<string, string>();
  const eniAddress6 = new Map<string, string>();
  if (eniIds.length > 0) {
    const enis = await ec2.send(
      new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'network-interface-id', Values: eniIds }] }),
    );
    for (const eni of enis.NetworkInterfaces ?? []) {
      if (eni.NetworkInterfaceId && eni.PrivateIpAddress && eni.Status === 'in-use') {
        eniAddress.set(eni.NetworkInterfaceId, eni.PrivateIpAddress);
        const ipv6 = ipv6ByPrivateIp.get(eni.PrivateIpAddress);
        if (ipv6) eniAddress6.set(eni.NetworkInterfaceId, ipv6);
      }
    }
  }
  const planned = planRouterRoutes({
    routes,
    eniAddress,
    eniAddress6,
    internetVia: INTERNET_IP,
    previous: mirrored,
  });
  await applyRouterRoutes(routerNs, planned);
  for (const route of planned) mirrored.add(route.destination);
  return formatKernelRoutes(planned);
}

/** EventBridge's "EC2 Instance State-change Notification", delivered to the local instanceState Lambda. */
async function invokeInstanceState(
  lambdaEndpoint: string,
  instanceId: string,
  state: string,
): Promise<unknown> {
  const event = {
    version: '0',
    id: `lab-${randomBytes(8).toString('hex')}`,
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
  if (!response.ok) throw new Error(`invoking instanceState failed with ${response.status}: ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

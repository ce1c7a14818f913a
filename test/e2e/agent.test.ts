/**
 * Issue 4's host agent end to end: the real `vpc-lease-agent` CLI, run as child processes in
 * local mode, against one real local stack (moto, the seeded VPC, serverless-offline serving
 * the bundled handlers). Each host is an instance launched in moto's VPC.
 *
 * An API outage is a TCP proxy in front of the API that the test closes (refusing new
 * connections and cutting open ones) and reopens on the same port.
 *
 * The local API grants 24 h leases, and the agent renews no earlier than half-way to expiry
 * whatever --renew-margin says (agent/renewal.ts), so a running agent sends nothing for 12 h
 * after a grant. The outage is therefore met by an agent that restarts while the API is down.
 * That is when an agent really has to keep the file, retry and recover.
 */
import '../support/aws.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DescribeRouteTablesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_NETWORK_CONFIG,
  type LocalStack,
  localClients,
  operatorHeaders,
  startLocalStack,
} from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import { type LeaseJson, type LeaseListJson, offlineIdentityHeader } from '../../shared/http/contract.js';

const AGENT_BIN = fileURLToPath(new URL('../../agent/bin/vpc-lease-agent.mjs', import.meta.url));
const MTU = 9001;
/**
 * How long to wait for the exit after SIGTERM: a deadline for the event, not a measurement. An
 * agent that waited out its sleep (until the renewal, hours away) instead of stopping would miss
 * it by far; a busy machine does not.
 */
const STOP_DEADLINE_MS = 15_000;

interface LogLine {
  level: string;
  message: string;
  [field: string]: unknown;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One vpc-lease-agent process, its JSON log lines and its exit. */
class AgentProcess {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private stderr = '';
  private exit: Exit | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(args: readonly string[]) {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('VPCLEASE_')),
    );
    this.child = spawn(process.execPath, [AGENT_BIN, ...args, '--log-format', 'json'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let partial = '';
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const part of parts) {
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          // not a log line (a crash's stack): kept in stderr for the failure message
        }
      }
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Resolves with the first `count` log lines that match; fails on exit or at the deadline. */
  async logged(
    what: string,
    match: (line: LogLine) => boolean,
    options: { count?: number; timeoutMs?: number } = {},
  ): Promise<LogLine[]> {
    const count = options.count ?? 1;
    const found = () => this.lines.filter(match);
    await this.until(
      () => found().length >= count,
      `${count} log line(s): ${what}`,
      options.timeoutMs ?? 20_000,
    );
    return found().slice(0, count);
  }

  /** Resolves with the exit; fails with the log when the process is still running at the deadline. */
  async exitWithin(timeoutMs: number): Promise<Exit> {
    await this.until(() => !this.running, 'exit', timeoutMs);
    return this.exited;
  }

  /** SIGTERM; resolves with the exit, or fails with the log when the agent has not exited by the deadline. */
  async terminate(): Promise<Exit> {
    this.child.kill('SIGTERM');
    return this.exitWithin(STOP_DEADLINE_MS);
  }

  /** For afterEach: whatever is still running is killed, without ceremony. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  describe(): string {
    return `agent ${this.child.pid} (${this.exit ? `exited ${this.exit.code ?? this.exit.signal}` : 'running'}), stderr:\n${this.stderr.slice(-4000)}`;
  }

  private until(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) finish(resolve);
        else if (!this.running) finish(() => reject(new Error(`exited before ${what}; ${this.describe()}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no ${what} within ${timeoutMs} ms; ${this.describe()}`))),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** A TCP proxy on 127.0.0.1 in front of the API: `close()` is an API outage, `open()` its end. */
class ApiProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly targetPort: number,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<ApiProxy> {
    const proxy = new ApiProxy(targetPort, await freePort());
    await proxy.open();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        // Either side failing ends both; the agent sees a broken connection, as in a real outage.
        socket.once('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Refuses new connections and cuts the open ones (an agent's keep-alive connection included). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** Polls `probe` until it returns a value other than undefined; fails with `what` at the deadline. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await delay(100);
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** What flanneld writes for this lease: the subnet's first host address with its prefix length. */
function flannelFile(subnet: string, options: { ipMasq: boolean }): string {
  const match = /^(10\.244\.\d{1,3})\.0\/24$/.exec(subnet);
  if (!match) throw new Error(`expected a /24 of 10.244.0.0/16, got ${subnet}`);
  return (
    'FLANNEL_NETWORK=10.244.0.0/16\n' +
    `FLANNEL_SUBNET=${match[1]}.1/24\n` +
    `FLANNEL_MTU=${MTU}\n` +
    `FLANNEL_IPMASQ=${options.ipMasq}\n`
  );
}

const readIfPresent = async (path: string): Promise<string | undefined> => {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

async function statusOf(url: string): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  return response.status;
}

describe('vpc-lease-agent against the local stack', () => {
  let stack: LocalStack;
  let ec2: EC2Client;
  let hosts: LaunchedInstance[];
  let workDir: string;
  const agents = new Set<AgentProcess>();
  const proxies = new Set<ApiProxy>();
  let nextHost = 0;

  /** A host no other test has used. */
  const freshHost = (): LaunchedInstance => {
    const host = hosts[nextHost++];
    if (!host) throw new Error('launch more instances in beforeAll');
    return host;
  };
  const subnetFileOf = (host: LaunchedInstance) => join(workDir, `${host.instanceId}.env`);

  const startAgent = (host: LaunchedInstance, extra: readonly string[], apiUrl = stack.apiUrl) => {
    const agent = new AgentProcess([
      '--api-url',
      apiUrl,
      '--local-instance-id',
      host.instanceId,
      '--private-ip',
      host.privateIp,
      '--subnet-file',
      subnetFileOf(host),
      '--mtu',
      String(MTU),
      ...extra,
    ]);
    agents.add(agent);
    return agent;
  };

  /** --once with transient errors retries forever: bound the wait so that a hang fails with the log. */
  const expectExitedOk = async (agent: AgentProcess) => {
    const exit = await agent.exitWithin(30_000);
    expect(exit, agent.describe()).toEqual({ code: 0, signal: null });
  };

  const leases = async (): Promise<LeaseJson[]> => {
    const response = await fetch(`${stack.apiUrl}/v1/admin/leases?limit=1000`, {
      headers: operatorHeaders(),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as LeaseListJson;
    expect(body.nextToken).toBeUndefined();
    return body.leases;
  };
  const leaseOf = async (host: LaunchedInstance) =>
    (await leases()).find((l) => l.instanceId === host.instanceId);

  /** Destinations of the routes to the host's ENI in the stack's route table, both families. */
  const routesTo = async (host: LaunchedInstance): Promise<string[]> => {
    const out = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [stack.vpc.routeTableId] }));
    return (out.RouteTables?.[0]?.Routes ?? [])
      .filter((r) => r.NetworkInterfaceId === host.networkInterfaceId)
      .map((r) => r.DestinationCidrBlock ?? r.DestinationIpv6CidrBlock ?? '?')
      .sort();
  };

  /** PUT /v1/lease as `host`, the way an agent would, but from the test. */
  const acquireAs = async (host: LaunchedInstance, previousSubnet: string): Promise<LeaseJson> => {
    const response = await fetch(`${stack.apiUrl}/v1/lease`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...offlineIdentityHeader(host.instanceId) },
      body: JSON.stringify({ privateIp: host.privateIp, previousSubnet }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as LeaseJson;
  };

  beforeAll(async () => {
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    // Hosts here release and re-lease within seconds; the grant interval has its own tests (trust.test.ts).
    process.env.VPCLEASE_GRANT_INTERVAL_SECONDS = '0';
    stack = await startLocalStack({ apiPort, motoPort, lambdaPort, quiet: true });
    const clients = localClients(stack.motoEndpoint);
    clients.dynamo.destroy();
    ec2 = clients.ec2;
    hosts = await launchInstances(ec2, stack.vpc.subnetId, 10);
    workDir = await mkdtemp(join(tmpdir(), 'vpc-lease-agent-e2e-'));
  }, 180_000);

  afterEach(async () => {
    await Promise.all([...agents].map((agent) => agent.kill()));
    agents.clear();
    await Promise.all([...proxies].map((proxy) => proxy.close()));
    proxies.clear();
  });

  afterAll(async () => {
    ec2?.destroy();
    await stack?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it('five agents started at once with --once get five distinct subnets and write the five flannel files the API lists', async () => {
    const five = Array.from({ length: 5 }, () => freshHost());
    // No --ip-masq here: it would install iptables rules on this machine. The lab (test/lab) covers it.
    const runs = five.map((host) => startAgent(host, ['--once']));
    for (const run of runs) await expectExitedOk(run);

    const listed = await leases();
    const subnets: string[] = [];
    for (const host of five) {
      const lease = listed.find((l) => l.instanceId === host.instanceId);
      expect(lease, `a lease for ${host.instanceId}`).toMatchObject({
        network: '10.244.0.0/16',
        privateIp: host.privateIp,
        networkInterfaceId: host.networkInterfaceId,
      });
      expect(lease!.routes.length).toBeGreaterThan(0);
      expect(lease!.routes.every((r) => r.state === 'active')).toBe(true);
      subnets.push(lease!.subnet);

      const file = subnetFileOf(host);
      expect(await readFile(file, 'utf8')).toBe(flannelFile(lease!.subnet, { ipMasq: false }));
      expect((await stat(file)).mode & 0o777).toBe(0o644);
    }
    expect(new Set(subnets).size).toBe(5);
  }, 60_000);

  it('a restarted agent asks for the subnet of its old file and gets it back', async () => {
    const host = freshHost();
    await expectExitedOk(startAgent(host, ['--once']));
    const first = await readFile(subnetFileOf(host), 'utf8');
    const subnet = (await leaseOf(host))!.subnet;
    // Released, so the second start is a new grant (a renewal would return the same subnet anyway).
    const released = await fetch(`${stack.apiUrl}/v1/lease`, {
      method: 'DELETE',
      headers: offlineIdentityHeader(host.instanceId),
    });
    expect(released.status).toBe(204);
    expect(await leaseOf(host)).toBeUndefined();

    const restarted = startAgent(host, ['--once']);
    await expectExitedOk(restarted);

    expect(restarted.lines).toContainEqual(
      expect.objectContaining({ message: 'asking for the previous subnet again', previousSubnet: subnet }),
    );
    // The allocator picks at random among ~250 free subnets: without the hint this would rarely match.
    expect((await leaseOf(host))?.subnet).toBe(subnet);
    expect(await readFile(subnetFileOf(host), 'utf8')).toBe(first);
  });

  it('keeps the file through an API outage, also across a restart, and after its lease was revoked and its subnet taken writes the new lease once the API is back', async () => {
    const host = freshHost();
    const interloper = freshHost();
    const file = subnetFileOf(host);
    const proxy = await ApiProxy.start(stack.ports.api);
    proxies.add(proxy);
    const healthPort = await freePort();
    const health = (path: string) => statusOf(`http://127.0.0.1:${healthPort}${path}`);
    const daemonArgs = ['--healthz-port', String(healthPort)];

    // The daemon writes the file and turns ready.
    const daemon = startAgent(host, daemonArgs, proxy.url);
    await eventually('/readyz answers 200', async () =>
      (await health('/readyz').catch(() => 0)) === 200 ? true : undefined,
    );
    const lease = (await leaseOf(host))!;
    const written = flannelFile(lease.subnet, { ipMasq: false });
    expect(await readFile(file, 'utf8')).toBe(written);
    const { mtimeMs } = await stat(file);

    // The API goes away: the running daemon keeps its file, stays live and (its lease being valid) ready.
    await proxy.close();
    await expect(fetch(proxy.url, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    expect(await health('/healthz')).toBe(200);
    expect(await health('/readyz')).toBe(200);
    expect(daemon.running).toBe(true);

    // The host restarts during the outage; SIGTERM without --release-on-exit leaves file and lease.
    const stopped = await daemon.terminate();
    expect(stopped, daemon.describe()).toMatchObject({ code: 0, signal: null });
    expect(await readFile(file, 'utf8')).toBe(written);

    // Meanwhile an operator revokes the lease, and another host takes its subnet.
    const revoked = await fetch(`${stack.apiUrl}/v1/admin/leases/${lease.subnet.replace('/', '-')}`, {
      method: 'DELETE',
      headers: operatorHeaders(),
    });
    expect(revoked.status).toBe(200);
    expect((await acquireAs(interloper, lease.subnet)).subnet).toBe(lease.subnet);

    // Restarted while the API is still down: it keeps the file and keeps trying; live, not ready.
    const restarted = startAgent(host, daemonArgs, proxy.url);
    await restarted.logged(
      'failed attempts to reach the API',
      (l) => /^cannot get a lease yet/.test(l.message),
      {
        count: 2,
      },
    );
    expect(await readFile(file, 'utf8')).toBe(written);
    expect((await stat(file)).mtimeMs).toBe(mtimeMs);
    expect(await health('/healthz')).toBe(200);
    expect(await health('/readyz')).toBe(503);

    // The API comes back: the agent asks for its old subnet, is given another, and rewrites the file.
    await proxy.open();
    const rewritten = await eventually('the subnet file names a new subnet', async () => {
      const contents = await readIfPresent(file);
      return contents !== undefined && contents !== written ? contents : undefined;
    });
    const regranted = (await leaseOf(host))!;
    expect(regranted.subnet).not.toBe(lease.subnet);
    expect(rewritten).toBe(flannelFile(regranted.subnet, { ipMasq: false }));
    expect((await leaseOf(interloper))?.subnet).toBe(lease.subnet);
    expect(restarted.lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        previousSubnet: lease.subnet,
        subnet: regranted.subnet,
      }),
    );
    await eventually('/readyz answers 200 again', async () =>
      (await health('/readyz')) === 200 ? true : undefined,
    );
    expect(await health('/healthz')).toBe(200);

    const exit = await restarted.terminate();
    expect(exit, restarted.describe()).toMatchObject({ code: 0, signal: null });
    expect(await readFile(file, 'utf8')).toBe(rewritten);
    expect((await leaseOf(host))?.subnet).toBe(regranted.subnet);
  }, 60_000);

  it('on SIGTERM with --release-on-exit exits 0, having released the lease and removed the file', async () => {
    const host = freshHost();
    const file = subnetFileOf(host);
    const healthPort = await freePort();
    const agent = startAgent(host, ['--release-on-exit', '--healthz-port', String(healthPort)]);
    await eventually('/readyz answers 200', async () =>
      (await statusOf(`http://127.0.0.1:${healthPort}/readyz`).catch(() => 0)) === 200 ? true : undefined,
    );
    const subnet = (await leaseOf(host))!.subnet;
    expect(await readFile(file, 'utf8')).toBe(flannelFile(subnet, { ipMasq: false }));

    const exit = await agent.terminate();

    expect(exit, agent.describe()).toMatchObject({ code: 0, signal: null });
    expect(agent.lines).toContainEqual(expect.objectContaining({ message: 'lease released', subnet }));
    expect(await leaseOf(host)).toBeUndefined();
    expect(await readIfPresent(file)).toBeUndefined();
    await expect(statusOf(`http://127.0.0.1:${healthPort}/healthz`)).rejects.toThrow();
  });

  // Last: it publishes a dual-stack config for the rest of this stack's life.
  it('in dual stack writes both families, with the IPv6 route to its ENI beside the IPv4 one, and release removes both', async () => {
    const published = await fetch(`${stack.apiUrl}/v1/admin/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...operatorHeaders() },
      body: JSON.stringify({ ...DEFAULT_NETWORK_CONFIG, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56' }),
    });
    expect(published.status, await published.clone().text()).toBe(200);
    const host = freshHost();
    const file = subnetFileOf(host);
    const agent = startAgent(host, ['--release-on-exit']);
    const contents = await eventually('subnet.env written', () => readIfPresent(file));

    const lease = (await leaseOf(host))!;
    const [, third] = /^10\.244\.(\d+)\.0\/24$/.exec(lease.subnet)!;
    const group = Number(third).toString(16);
    expect(lease).toMatchObject({ ipv6Subnet: `fd00:10:244:${group}::/64`, ipv6Network: 'fd00:10:244::/56' });
    expect(contents).toBe(
      `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.${third}.1/24\n` +
        `FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:${group}::1/64\n` +
        `FLANNEL_MTU=${MTU}\nFLANNEL_IPMASQ=false\n`,
    );
    expect(await routesTo(host)).toEqual([lease.subnet, lease.ipv6Subnet].sort());

    expect(await agent.terminate(), agent.describe()).toMatchObject({ code: 0, signal: null });
    expect(await routesTo(host)).toEqual([]);
    expect(await leaseOf(host)).toBeUndefined();
  });
});

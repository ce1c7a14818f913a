/**
 * The data path lab (npm run lab) as a test: packets cross vpc-lease's routes between
 * network namespaces, through the real agent's masquerade rules and Debian's CNI plugins.
 * Needs root and the plugins; in CI (CI=true) it always runs, elsewhere it is skipped
 * without root, saying so.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASQ_CHAIN } from '../../agent/masq-rules.js';
import { type LabReport, runLab } from '../../scripts/lib/lab/run-lab.js';
import { HOST_MTU, INTERNET_IP, namespacesWithPrefix } from '../../scripts/lib/lab/topology.js';
import { groupAlive } from '../../scripts/lib/local-stack.js';

const isRoot = process.getuid?.() === 0;
const inCi = Boolean(process.env.CI);
const skipReason =
  !isRoot && !inCi ? ' (skipped: needs root for network namespaces; run as root or with CI=true)' : '';

const rootLinks = () =>
  spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);

const rootNatRules = () =>
  (spawnSync('iptables', ['-w', '5', '-t', 'nat', '-S'], { encoding: 'utf8' }).stdout ?? '') +
  (spawnSync('ip6tables', ['-w', '5', '-t', 'nat', '-S'], { encoding: 'utf8' }).stdout ?? '');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const masqRulesFor = (network: string, subnet: string, multicast = '224.0.0.0/4') => [
  `-A ${MASQ_CHAIN} -m mark --mark 0x4000/0x4000 -m comment --comment "vpc-lease masq" -j RETURN`,
  `-A ${MASQ_CHAIN} -s ${subnet} -d ${network} -m comment --comment "vpc-lease masq" -j RETURN`,
  `-A ${MASQ_CHAIN} -s ${network} -d ${subnet} -m comment --comment "vpc-lease masq" -j RETURN`,
  `-A ${MASQ_CHAIN} ! -s ${network} -d ${subnet} -m comment --comment "vpc-lease masq" -j RETURN`,
  `-A ${MASQ_CHAIN} -s ${network} ! -d ${multicast} -m comment --comment "vpc-lease masq" -j MASQUERADE --random-fully`,
  `-A ${MASQ_CHAIN} ! -s ${network} -d ${network} -m comment --comment "vpc-lease masq" -j MASQUERADE --random-fully`,
];

describe.skipIf(skipReason !== '')(`the data path lab${skipReason}`, () => {
  let report: LabReport;
  let linksBefore: string[];

  const abort = new AbortController();
  let running: Promise<LabReport> | undefined;

  beforeAll(async () => {
    linksBefore = rootLinks();
    running = runLab({ hosts: 3, signal: abort.signal });
    report = await running;
  }, 600_000);

  // Should the lab outlive its timeout, stop it and let it clean up before the worker goes.
  afterAll(async () => {
    abort.abort();
    await running?.catch(() => {});
  }, 120_000);

  it('gives every host a dual-stack lease, FLANNEL_IPMASQ=true and the agent masquerade rules of both families in its own namespace', () => {
    expect(report.hosts).toHaveLength(3);
    for (const host of report.hosts) {
      expect(host.network).toBe('10.244.0.0/16');
      expect(host.ipv6Network).toBe('fd00:10:244::/56');
      const [, third] = /^10\.244\.(\d+)\.0\/24$/.exec(host.subnet) ?? [];
      expect(third, host.subnet).toBeDefined();
      // IPv4 subnet i pairs with IPv6 subnet i: 10.244.<n>.0/24 <-> fd00:10:244:<n in hex>::/64
      const group = Number(third).toString(16);
      expect(host.ipv6Subnet).toBe(`fd00:10:244:${group}::/64`);
      expect(host.subnetEnv).toBe(
        `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.${third}.1/24\n` +
          `FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:${group}::1/64\n` +
          `FLANNEL_MTU=${HOST_MTU}\nFLANNEL_IPMASQ=true\n`,
      );
      expect(host.masqRules).toEqual(masqRulesFor('10.244.0.0/16', host.subnet));
      expect(host.masqRules6).toEqual(masqRulesFor('fd00:10:244::/56', host.ipv6Subnet!, 'ff00::/8'));
      expect(host.masqJumps).toEqual([
        `-A POSTROUTING -m comment --comment "vpc-lease masq" -j ${MASQ_CHAIN}`,
      ]);
    }
    expect(new Set(report.hosts.map((h) => h.subnet)).size).toBe(3);
  });

  it('attaches containers inside their host subnet with MTU = FLANNEL_MTU (the host interface MTU)', () => {
    for (const host of report.hosts) {
      expect(host.container.ip.startsWith(host.subnet.replace(/0\/24$/, ''))).toBe(true);
      expect(host.container.ipv6?.startsWith(host.ipv6Subnet!.replace(/\/64$/, ''))).toBe(true);
      expect(host.container.mtu).toBe(HOST_MTU);
    }
  });

  it('routes the VPC router by the lease routes in moto', () => {
    for (const host of report.hosts) {
      expect(report.routerRoutes).toContain(`${host.subnet} via ${host.privateIp}`);
      expect(report.routerRoutes).toContain(`${host.ipv6Subnet} via ${host.ipv6Address}`);
    }
    expect(report.routerRoutes).toContain(`0.0.0.0/0 via ${INTERNET_IP}`);
  });

  it('delivers container to container traffic across hosts with the sender container address', () => {
    expect(report.crossHost).toHaveLength(3);
    for (const [i, ask] of report.crossHost.entries()) {
      const from = report.hosts[i]!.container.ip;
      const to = report.hosts[(i + 1) % 3]!.container.ip;
      expect(ask).toEqual({ from, to, ok: true, peer: from });
    }
  });

  it('delivers container to container traffic over IPv6 too, with the sender container address', () => {
    expect(report.crossHostIpv6).toHaveLength(3);
    for (const [i, ask] of report.crossHostIpv6.entries()) {
      const from = report.hosts[i]!.container.ipv6!;
      const to = report.hosts[(i + 1) % 3]!.container.ipv6!;
      expect(ask).toEqual({ from, to, ok: true, peer: from });
    }
  });

  it('masquerades egress to the host address, which the internet gateway lets through', () => {
    for (const [i, ask] of report.egress.entries()) {
      const host = report.hosts[i]!;
      expect(ask).toEqual({ from: host.container.ip, to: INTERNET_IP, ok: true, peer: host.privateIp });
    }
  });

  it('puts back masquerade rules that someone flushed', () => {
    expect(report.reassert.rulesAfterFlush).toBe(0);
    expect(report.reassert.rulesRestored).toEqual(report.hosts[0]!.masqRules);
  });

  it('cuts off a terminated host once its state-change event removed the route', () => {
    const victim = report.hosts[2]!;
    const { terminated } = report;
    expect(terminated.instanceId).toBe(victim.instanceId);
    expect(terminated.eventAnswer).toMatchObject({ action: 'released', subnet: victim.subnet });
    expect(terminated.routeInMoto).toBe(false);
    expect(terminated.routerRoutes).toContain(`unreachable ${victim.subnet}`);
    expect(terminated.ask).toEqual({
      from: report.hosts[0]!.container.ip,
      to: victim.container.ip,
      ok: false,
      error: 'EHOSTUNREACH',
    });
    expect(terminated.routerRoutes).toContain(`unreachable ${victim.ipv6Subnet}`);
    expect(terminated.ipv6).toMatchObject({
      subnet: victim.ipv6Subnet,
      routeInMoto: false,
      ask: { from: report.hosts[0]!.container.ipv6, to: victim.container.ipv6, ok: false },
    });
  });

  it('cuts off the containers of a revoked lease', () => {
    const revoked = report.hosts[1]!;
    expect(report.revoked).toMatchObject({ subnet: revoked.subnet, status: 200, routeInMoto: false });
    expect(report.revoked.routerRoutes).toContain(`unreachable ${revoked.subnet}`);
    expect(report.revoked.ask).toEqual({
      from: report.hosts[0]!.container.ip,
      to: revoked.container.ip,
      ok: false,
      error: 'EHOSTUNREACH',
    });
    expect(report.revoked.ipv6).toMatchObject({
      subnet: revoked.ipv6Subnet,
      routeInMoto: false,
      ask: { from: report.hosts[0]!.container.ipv6, to: revoked.container.ipv6, ok: false },
    });
  });

  it('removes the masquerade rules with the lease on --release-on-exit', () => {
    expect(report.released).toEqual({
      instanceId: report.hosts[0]!.instanceId,
      agentExit: 0,
      rulesAfter: [],
      rulesAfter6: [],
      jumpsAfter: [],
      subnetFileLeft: false,
      leaseLeft: false,
    });
  });

  it('leaves nothing behind: namespaces, links, iptables rules, processes', async () => {
    expect(report.cleanupFailures).toEqual([]);
    expect(await namespacesWithPrefix(report.prefix)).toEqual([]);
    expect(rootLinks().filter((name) => !linksBefore.includes(name))).toEqual([]);
    expect(rootNatRules()).not.toMatch(/VPCLEASE|FLANNEL/);
    expect(report.pids.length).toBeGreaterThanOrEqual(3 * 3 + 1);
    expect(report.pids.filter(alive)).toEqual([]);
    expect(groupAlive(report.offlinePid)).toBe(false);
  });
});

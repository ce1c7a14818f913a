/**
 * The lab's network, all of it inside network namespaces it creates (nothing in this
 * machine's own namespace): a "VPC router", an "internet" behind it, and one namespace per
 * host at its moto instance's private IP.
 *
 *   host h1 (eth0 10.0.0.x/24, mtu 9001) --+
 *   host h2 (eth0 10.0.0.y/24)           --+-- vpc0 bridge 10.0.0.1/24  [router]  igw 198.51.100.1 -- 198.51.100.2 [internet]
 *   ...                                  --+
 *
 * The internet namespace drops every source outside the VPC CIDR, as an internet gateway
 * translates only the addresses the VPC gave the instances.
 */
import { formatIp, parseCidr, parseIpv6Cidr } from '../../../shared/cidr.js';
import { inNs, sh } from './shell.js';

export const INTERNET_ROUTER_IP = '198.51.100.1';
export const INTERNET_IP = '198.51.100.2';
/** what EC2 gives most instance types (jumbo frames inside the VPC) */
export const HOST_MTU = 9001;

export interface LabHostNet {
  ns: string;
  privateIp: string;
}

/**
 * Namespace names of one run: a unique prefix, so concurrent labs never collide. It starts
 * with the lab's pid, so that a later run can tell the leftovers of a killed lab (SIGKILL
 * gives no chance to clean up) from the namespaces of a lab still running.
 */
export function labNames(runId: string, ownerPid = process.pid) {
  const prefix = `vpclab-${ownerPid}-${runId}-`;
  return {
    prefix,
    router: `${prefix}router`,
    internet: `${prefix}internet`,
    host: (i: number) => `${prefix}h${i}`,
    container: (i: number) => `${prefix}h${i}-c1`,
  };
}

export class Namespaces {
  private readonly created: string[] = [];

  get names(): readonly string[] {
    return this.created;
  }

  async add(name: string): Promise<void> {
    await sh('ip', ['netns', 'add', name]);
    this.created.push(name);
    await inNs(name, 'ip', ['link', 'set', 'lo', 'up']);
  }

  /** Deletes every namespace this run created (their veths, bridges and iptables rules go with them). */
  async removeAll(): Promise<string[]> {
    const failures: string[] = [];
    for (const name of this.created.splice(0).reverse()) {
      const result = await sh('ip', ['netns', 'del', name], { allowFailure: true });
      if (result.code !== 0 && !/No such file/.test(result.stderr))
        failures.push(`${name}: ${result.stderr.trim()}`);
    }
    return failures;
  }
}

/** A veth pair created directly inside two namespaces: no device ever exists in this machine's namespace. */
async function veth(a: { ns: string; name: string }, b: { ns: string; name: string }, mtu: number) {
  await sh('ip', [
    'link',
    'add',
    'name',
    a.name,
    'netns',
    a.ns,
    'mtu',
    String(mtu),
    'type',
    'veth',
    'peer',
    'name',
    b.name,
    'netns',
    b.ns,
    'mtu',
    String(mtu),
  ]);
}

/**
 * IPv6 on in a namespace (a kernel or container runtime may start namespaces with it
 * disabled), forwarding on where asked, and no duplicate address detection: the lab's
 * addresses are unique by construction, and DAD would hold each new address back a while.
 */
export async function enableIpv6(ns: string, options: { forwarding: boolean }): Promise<void> {
  const settings = [
    'net.ipv6.conf.all.disable_ipv6=0',
    'net.ipv6.conf.default.disable_ipv6=0',
    'net.ipv6.conf.all.accept_dad=0',
    'net.ipv6.conf.default.accept_dad=0',
    ...(options.forwarding ? ['net.ipv6.conf.all.forwarding=1'] : []),
  ];
  await inNs(ns, 'sysctl', ['-qw', ...settings]);
}

/** The lab's IPv6 addressing of the "VPC" subnet: the router at ::1, host i at ::(100 + i). */
export function vpcIpv6Address(subnetCidr: string, index: number): string {
  const subnet = parseIpv6Cidr(subnetCidr);
  return formatIp(6, subnet.base + BigInt(index));
}

export const ROUTER_IPV6_INDEX = 1;
export const hostIpv6Index = (hostIndex: number): number => 100 + hostIndex;

export async function buildRouter(
  namespaces: Namespaces,
  names: { router: string; internet: string },
  vpc: { cidr: string; subnetCidr: string; ipv6SubnetCidr?: string | undefined },
): Promise<{ gateway: string; gateway6: string | undefined }> {
  const subnet = parseCidr(vpc.subnetCidr);
  // The VPC router is the subnet's first address (as in AWS: 10.0.0.1 for 10.0.0.0/24).
  const gateway = formatIp(subnet.family, subnet.base + 1n);
  await namespaces.add(names.router);
  await namespaces.add(names.internet);
  const r = (...args: string[]) => inNs(names.router, 'ip', args);
  if (vpc.ipv6SubnetCidr) await enableIpv6(names.router, { forwarding: true });
  await r('link', 'add', 'vpc0', 'mtu', String(HOST_MTU), 'type', 'bridge');
  await r('addr', 'add', `${gateway}/${subnet.prefix}`, 'dev', 'vpc0');
  const gateway6 = vpc.ipv6SubnetCidr ? vpcIpv6Address(vpc.ipv6SubnetCidr, ROUTER_IPV6_INDEX) : undefined;
  if (gateway6) await r('-6', 'addr', 'add', `${gateway6}/64`, 'dev', 'vpc0', 'nodad');
  await r('link', 'set', 'vpc0', 'up');
  await inNs(names.router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);

  await veth({ ns: names.router, name: 'igw' }, { ns: names.internet, name: 'eth0' }, 1500);
  await r('addr', 'add', `${INTERNET_ROUTER_IP}/24`, 'dev', 'igw');
  await r('link', 'set', 'igw', 'up');
  const i = (...args: string[]) => inNs(names.internet, 'ip', args);
  await i('addr', 'add', `${INTERNET_IP}/24`, 'dev', 'eth0');
  await i('link', 'set', 'eth0', 'up');
  await i('route', 'add', vpc.cidr, 'via', INTERNET_ROUTER_IP);
  // An internet gateway only carries the VPC's own addresses: anything else never arrives.
  await inNs(names.internet, 'iptables', ['-w', '5', '-A', 'INPUT', '!', '-s', vpc.cidr, '-j', 'DROP']);
  return { gateway, gateway6 };
}

export async function attachHost(
  namespaces: Namespaces,
  routerNs: string,
  host: LabHostNet,
  index: number,
  subnetCidr: string,
  gateway: string,
  /** dual stack: the host's IPv6 address on eth0 (a /64) and the router's */
  ipv6?: { address: string; gateway: string },
): Promise<void> {
  await namespaces.add(host.ns);
  if (ipv6) await enableIpv6(host.ns, { forwarding: true });
  const prefix = parseCidr(subnetCidr).prefix;
  const port = `h${index}`;
  await veth({ ns: host.ns, name: 'eth0' }, { ns: routerNs, name: port }, HOST_MTU);
  await inNs(routerNs, 'ip', ['link', 'set', port, 'master', 'vpc0']);
  await inNs(routerNs, 'ip', ['link', 'set', port, 'up']);
  const h = (...args: string[]) => inNs(host.ns, 'ip', args);
  await h('addr', 'add', `${host.privateIp}/${prefix}`, 'dev', 'eth0');
  await h('link', 'set', 'eth0', 'up');
  await h('route', 'add', 'default', 'via', gateway);
  if (ipv6) {
    await h('-6', 'addr', 'add', `${ipv6.address}/64`, 'dev', 'eth0', 'nodad');
    await h('-6', 'route', 'add', 'default', 'via', ipv6.gateway);
  }
  await inNs(host.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
}

/** The MTU of a device inside a namespace. */
export async function linkMtu(ns: string, device: string): Promise<number> {
  const { stdout } = await inNs(ns, 'cat', [`/sys/class/net/${device}/mtu`]);
  return Number(stdout.trim());
}

/** `iptables -t nat -S CHAIN` (ip6tables with `ipv6`) inside a namespace; [] when the chain does not exist. */
export async function natChain(
  ns: string,
  chain: string,
  family: 'ipv4' | 'ipv6' = 'ipv4',
): Promise<string[]> {
  const command = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const result = await inNs(ns, command, ['-w', '5', '-t', 'nat', '-S', chain], { allowFailure: true });
  if (result.code !== 0) return [];
  return result.stdout.split('\n').filter((line) => line.startsWith('-A '));
}

/** Namespaces whose name starts with `prefix` (what `ip netns list` shows). */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const { stdout } = await sh('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(prefix));
}

/**
 * Removes the namespaces of labs whose process is gone (killed before it could clean up),
 * and stops the processes still running inside them. Namespaces of live labs are left alone.
 */
export async function sweepDeadLabs(isAlive: (pid: number) => boolean): Promise<string[]> {
  const swept: string[] = [];
  for (const name of await namespacesWithPrefix('vpclab-')) {
    const owner = Number(/^vpclab-(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(owner) || isAlive(owner)) continue;
    const { stdout } = await sh('ip', ['netns', 'pids', name], { allowFailure: true });
    for (const pid of stdout
      .split('\n')
      .map(Number)
      .filter((p) => p > 0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sh('ip', ['netns', 'del', name], { allowFailure: true });
    swept.push(name);
  }
  return swept;
}

/**
 * Containers attached the way a container runtime does it on a flannel host: the flannel
 * CNI plugin reads subnet.env and delegates to the `bridge` plugin with `host-local` IPAM.
 * The lab calls Debian's real `bridge` plugin with exactly the configuration the flannel
 * plugin builds (flannel-io/cni-plugin, flannel_linux.go doCmdAdd / getDelegateIPAM) from
 * kube-flannel's conflist ({"name":"cbr0","cniVersion":"0.3.1", delegate
 * {"hairpinMode":true,"isDefaultGateway":true}}):
 *
 *   ipMasq = !FLANNEL_IPMASQ, mtu = FLANNEL_MTU, isGateway = true,
 *   ipam = host-local, ranges = [[{subnet: FLANNEL_SUBNET's network}]], routes = [{dst: FLANNEL_NETWORK}]
 *
 * The only addition is host-local's `dataDir`, inside the lab's directory instead of
 * /var/lib/cni/networks, so that concurrent labs and leftovers never share address records.
 */
import { parseSubnetEnv } from '../../../agent/subnet-env.js';
import { CNI_PATH } from './preflight.js';
import { inNs } from './shell.js';

/** kube-flannel's network name and CNI version */
export const FLANNEL_CNI_NAME = 'cbr0';
export const FLANNEL_CNI_VERSION = '0.3.1';

export interface BridgeDelegateConf {
  cniVersion: string;
  name: string;
  type: 'bridge';
  hairpinMode: true;
  isDefaultGateway: true;
  ipMasq: boolean;
  mtu: number;
  isGateway: true;
  ipam: {
    type: 'host-local';
    ranges: { subnet: string }[][];
    routes: { dst: string }[];
    dataDir: string;
  };
}

/** What the flannel CNI plugin hands to `bridge`, from the text of subnet.env. */
export function flannelDelegateConf(subnetEnvText: string, ipamDataDir: string): BridgeDelegateConf {
  const env = parseSubnetEnv(subnetEnvText);
  if (
    env.subnet === undefined ||
    env.network === undefined ||
    env.mtu === undefined ||
    env.ipMasq === undefined
  ) {
    throw new Error(
      `subnet.env lacks FLANNEL_SUBNET, FLANNEL_NETWORK, FLANNEL_MTU or FLANNEL_IPMASQ:\n${subnetEnvText}`,
    );
  }
  // Dual stack, as flannel's plugin does it (getDelegateIPAM): a second range and route for IPv6.
  const ipv6 = env.ipv6Subnet !== undefined && env.ipv6Network !== undefined;
  return {
    cniVersion: FLANNEL_CNI_VERSION,
    name: FLANNEL_CNI_NAME,
    type: 'bridge',
    hairpinMode: true,
    isDefaultGateway: true,
    ipMasq: !env.ipMasq,
    mtu: env.mtu,
    isGateway: true,
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet: env.subnet }], ...(ipv6 ? [[{ subnet: env.ipv6Subnet! }]] : [])],
      routes: [{ dst: env.network }, ...(ipv6 ? [{ dst: env.ipv6Network! }] : [])],
      dataDir: ipamDataDir,
    },
  };
}

export interface AttachedContainer {
  /** the container's address, e.g. 10.244.7.2 */
  ip: string;
  /** its gateway (the bridge), e.g. 10.244.7.1 */
  gateway: string | undefined;
  /** dual stack: the container's IPv6 address, e.g. fd00:10:244:7::2 */
  ipv6?: string;
}

/** CNI ADD: runs the bridge plugin in the host's namespace for the container's namespace. */
export async function cniAdd(
  hostNs: string,
  containerNs: string,
  containerId: string,
  conf: BridgeDelegateConf,
): Promise<AttachedContainer> {
  const result = await inNs(hostNs, `${CNI_PATH}/bridge`, [], {
    input: JSON.stringify(conf),
    env: cniEnv('ADD', containerNs, containerId),
  });
  const parsed = JSON.parse(result.stdout) as { ips?: { address?: string; gateway?: string }[] };
  const ips = parsed.ips ?? [];
  const v4 = ips.find((ip) => ip.address !== undefined && !ip.address.includes(':'));
  const v6 = ips.find((ip) => ip.address?.includes(':'));
  if (!v4?.address) throw new Error(`the bridge plugin returned no address: ${result.stdout}`);
  return {
    ip: v4.address.split('/')[0]!,
    gateway: v4.gateway,
    ...(v6?.address ? { ipv6: v6.address.split('/')[0]! } : {}),
  };
}

/** CNI DEL, as the runtime does when a container goes away; best effort during cleanup. */
export async function cniDel(
  hostNs: string,
  containerNs: string,
  containerId: string,
  conf: BridgeDelegateConf,
): Promise<void> {
  await inNs(hostNs, `${CNI_PATH}/bridge`, [], {
    input: JSON.stringify(conf),
    env: cniEnv('DEL', containerNs, containerId),
    allowFailure: true,
  });
}

function cniEnv(command: 'ADD' | 'DEL', containerNs: string, containerId: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: `/run/netns/${containerNs}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH,
  };
}

/**
 * flannel's subnet.env: the file the flannel CNI plugin (and anything else written for
 * flanneld) reads to learn this host's subnet. The bytes match flanneld's
 * WriteSubnetFile (flannel-io/flannel pkg/subnet/subnetfile_unix.go), IPv4 lines first,
 * then the IPv6 ones in dual stack, then MTU and IPMASQ:
 *
 *   FLANNEL_NETWORK=10.244.0.0/16
 *   FLANNEL_SUBNET=10.244.7.1/24              <- first host address of the subnet, with its prefix
 *   FLANNEL_IPV6_NETWORK=fd00:10:244::/56     <- dual stack only
 *   FLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64   <- likewise, in Go's net.IP.String() form (RFC 5952)
 *   FLANNEL_MTU=9001
 *   FLANNEL_IPMASQ=false
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type Cidr,
  cidrOf,
  firstHostWithPrefix,
  formatCidr,
  parseCidr,
  parseIp,
  parseIpv6,
  parseIpv6Cidr,
} from '../shared/cidr.js';
import type { LeaseJson } from '../shared/http/contract.js';

export interface SubnetEnv {
  /** the overlay network, e.g. 10.244.0.0/16 */
  network: string;
  /** this host's subnet in network form, e.g. 10.244.7.0/24 */
  subnet: string;
  /** dual stack: the IPv6 overlay network, e.g. fd00:10:244::/56 (with ipv6Subnet, or neither) */
  ipv6Network?: string;
  /** dual stack: this host's IPv6 subnet in network form, e.g. fd00:10:244:7::/64 */
  ipv6Subnet?: string;
  mtu: number;
  ipMasq: boolean;
}

export function formatSubnetEnv(env: SubnetEnv): string {
  if ((env.ipv6Network === undefined) !== (env.ipv6Subnet === undefined)) {
    throw new TypeError(
      `a dual-stack subnet.env needs both ipv6Network and ipv6Subnet (got only ${env.ipv6Network === undefined ? 'ipv6Subnet' : 'ipv6Network'})`,
    );
  }
  // Parsed and printed again, so that the file always carries the canonical text flanneld writes.
  const ipv6 =
    env.ipv6Network !== undefined && env.ipv6Subnet !== undefined
      ? `FLANNEL_IPV6_NETWORK=${formatCidr(parseIpv6Cidr(env.ipv6Network))}\n` +
        `FLANNEL_IPV6_SUBNET=${firstHostWithPrefix(parseIpv6Cidr(env.ipv6Subnet))}\n`
      : '';
  return (
    `FLANNEL_NETWORK=${formatCidr(parseCidr(env.network))}\n` +
    `FLANNEL_SUBNET=${firstHostWithPrefix(parseCidr(env.subnet))}\n` +
    ipv6 +
    `FLANNEL_MTU=${env.mtu}\n` +
    `FLANNEL_IPMASQ=${env.ipMasq}\n`
  );
}

/** What subnet.env says for a lease: its IPv6 lines only when the lease carries both IPv6 fields. */
export function subnetEnvOfLease(
  lease: Pick<LeaseJson, 'network' | 'subnet' | 'ipv6Network' | 'ipv6Subnet'>,
  options: { mtu: number; ipMasq: boolean },
): SubnetEnv {
  const dualStack = lease.ipv6Network !== undefined && lease.ipv6Subnet !== undefined;
  return {
    network: lease.network,
    subnet: lease.subnet,
    ...(dualStack ? { ipv6Network: lease.ipv6Network, ipv6Subnet: lease.ipv6Subnet } : {}),
    mtu: options.mtu,
    ipMasq: options.ipMasq,
  };
}

/** What could be recovered from an existing file; each field is absent when missing or unreadable. */
export interface PreviousSubnetEnv {
  network?: string;
  /** network form (10.244.7.0/24), ready to send as `previousSubnet` */
  subnet?: string;
  /** dual stack, network form (fd00:10:244::/56) */
  ipv6Network?: string;
  /** dual stack, network form (fd00:10:244:7::/64); follows from `subnet`, so it is never sent */
  ipv6Subnet?: string;
  mtu?: number;
  ipMasq?: boolean;
  /** one sentence per line or value that was ignored, for the log */
  problems: string[];
}

export type ReadSubnetEnvResult =
  | { status: 'missing' }
  | { status: 'unreadable'; message: string }
  | { status: 'read'; contents: string; env: PreviousSubnetEnv };

/**
 * Reads an old file leniently, as flanneld does with godotenv: a damaged file must never
 * stop the host from getting a lease, it only loses the hint about the previous subnet.
 */
export async function readSubnetEnv(path: string): Promise<ReadSubnetEnvResult> {
  let contents: string;
  try {
    contents = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { status: 'missing' };
    return { status: 'unreadable', message: `cannot read ${path}: ${(error as Error).message}` };
  }
  return { status: 'read', contents, env: parseSubnetEnv(contents) };
}

export function parseSubnetEnv(contents: string): PreviousSubnetEnv {
  const env: PreviousSubnetEnv = { problems: [] };
  const values = new Map<string, string>();
  for (const [index, raw] of contents.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      env.problems.push(`line ${index + 1} is not KEY=VALUE; ignored`);
      continue;
    }
    values.set(match[1]!, unquote(match[2]!));
  }

  const subnet = values.get('FLANNEL_SUBNET');
  if (subnet !== undefined) {
    const cidr = parseHostCidr(subnet);
    if (cidr) env.subnet = formatCidr(cidr);
    else env.problems.push(`FLANNEL_SUBNET=${subnet} is not an address/prefix like 10.244.7.1/24; ignored`);
  } else {
    env.problems.push('no FLANNEL_SUBNET line');
  }

  const network = values.get('FLANNEL_NETWORK');
  if (network !== undefined) {
    const cidr = parseHostCidr(network);
    if (cidr) env.network = formatCidr(cidr);
    else env.problems.push(`FLANNEL_NETWORK=${network} is not a CIDR like 10.244.0.0/16; ignored`);
  }

  // Absent in an IPv4-only file: no problem then.
  const ipv6Network = values.get('FLANNEL_IPV6_NETWORK');
  if (ipv6Network !== undefined) {
    const cidr = parseHostCidr6(ipv6Network);
    if (cidr) env.ipv6Network = formatCidr(cidr);
    else
      env.problems.push(`FLANNEL_IPV6_NETWORK=${ipv6Network} is not a CIDR like fd00:10:244::/56; ignored`);
  }
  const ipv6Subnet = values.get('FLANNEL_IPV6_SUBNET');
  if (ipv6Subnet !== undefined) {
    const cidr = parseHostCidr6(ipv6Subnet);
    if (cidr) env.ipv6Subnet = formatCidr(cidr);
    else
      env.problems.push(
        `FLANNEL_IPV6_SUBNET=${ipv6Subnet} is not an address/prefix like fd00:10:244:7::1/64; ignored`,
      );
  }

  const mtu = values.get('FLANNEL_MTU');
  if (mtu !== undefined) {
    if (/^[1-9][0-9]{0,5}$/.test(mtu)) env.mtu = Number(mtu);
    else env.problems.push(`FLANNEL_MTU=${mtu} is not a number; ignored`);
  }

  const ipMasq = values.get('FLANNEL_IPMASQ');
  if (ipMasq === 'true' || ipMasq === 'false') env.ipMasq = ipMasq === 'true';
  else if (ipMasq !== undefined)
    env.problems.push(`FLANNEL_IPMASQ=${ipMasq} is neither true nor false; ignored`);

  return env;
}

/** `10.244.7.1/24` -> the subnet 10.244.7.0/24 (host bits allowed, unlike parseCidr). */
function parseHostCidr(text: string): Cidr | undefined {
  const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text);
  if (!match) return undefined;
  const prefix = Number(match[2]);
  if (prefix > 32) return undefined;
  try {
    const { family, value } = parseIp(match[1]!);
    return cidrOf(family, value, prefix);
  } catch {
    return undefined;
  }
}

/** `fd00:10:244:7::1/64` -> the subnet fd00:10:244:7::/64 (host bits allowed, unlike parseIpv6Cidr). */
function parseHostCidr6(text: string): Cidr | undefined {
  const match = /^([0-9A-Fa-f:.]+)\/([0-9]{1,3})$/.exec(text);
  if (!match) return undefined;
  const prefix = Number(match[2]);
  if (prefix > 128) return undefined;
  try {
    return cidrOf(6, parseIpv6(match[1]!).value, prefix);
  } catch {
    return undefined;
  }
}

function unquote(value: string): string {
  const quoted = /^(['"])(.*)\1$/.exec(value);
  return quoted ? quoted[2]! : value.replace(/\s+#.*$/, '');
}

/**
 * Replaces the file atomically: readers (the CNI plugin, at any moment) see the old
 * contents or the new, never a half-written file. The temporary file lives in the same
 * directory so rename(2) stays on one filesystem; it is fsynced before the rename and
 * the directory after it, so a power cut cannot leave an empty file behind.
 * Mode 0644 whatever the umask: the CNI plugin may not run as root.
 */
export async function writeSubnetEnvAtomically(path: string, contents: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(contents, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, 0o644);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL/EISDIR); the rename itself already happened.
  }
}

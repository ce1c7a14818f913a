/**
 * flannel's subnet.env: the file the flannel CNI plugin (and anything else written for
 * flanneld) reads to learn this host's subnet. The bytes match flanneld's
 * WriteSubnetFile (flannel-io/flannel pkg/subnet/subnet.go) for an IPv4 network:
 *
 *   FLANNEL_NETWORK=10.244.0.0/16
 *   FLANNEL_SUBNET=10.244.7.1/24      <- first host address of the subnet, with its prefix
 *   FLANNEL_MTU=9001
 *   FLANNEL_IPMASQ=false
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Cidr, cidrOf, firstHostWithPrefix, formatCidr, parseCidr, parseIp } from '../shared/cidr.js';

export interface SubnetEnv {
  /** the overlay network, e.g. 10.244.0.0/16 */
  network: string;
  /** this host's subnet in network form, e.g. 10.244.7.0/24 */
  subnet: string;
  mtu: number;
  ipMasq: boolean;
}

export function formatSubnetEnv(env: SubnetEnv): string {
  return (
    `FLANNEL_NETWORK=${formatCidr(parseCidr(env.network))}\n` +
    `FLANNEL_SUBNET=${firstHostWithPrefix(parseCidr(env.subnet))}\n` +
    `FLANNEL_MTU=${env.mtu}\n` +
    `FLANNEL_IPMASQ=${env.ipMasq}\n`
  );
}

/** What could be recovered from an existing file; each field is absent when missing or unreadable. */
export interface PreviousSubnetEnv {
  network?: string;
  /** network form (10.244.7.0/24), ready to send as `previousSubnet` */
  subnet?: string;
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

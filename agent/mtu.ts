/**
 * FLANNEL_MTU for the aws-vpc backend is the MTU of the interface that holds the
 * host's private IP: there is no encapsulation, so containers can use all of it
 * (9001 on most EC2 instance types, 1500 on some older ones and across some links).
 */
import { readFile } from 'node:fs/promises';
import { networkInterfaces as osNetworkInterfaces } from 'node:os';

/**
 * Used when the interface cannot be found (local mode, or an unusual network setup).
 * 1500 and not 9001: a too-small MTU only costs some throughput, a too-large one
 * silently drops big packets on any path that is not jumbo-frame capable.
 */
export const FALLBACK_MTU = 1500;

export interface MtuDetection {
  mtu: number;
  /** the interface it was read from; absent when the fallback was used */
  interfaceName?: string;
  /** set when the fallback was used: why, and what to do */
  warning?: string;
}

export interface MtuDetectionDeps {
  networkInterfaces?: typeof osNetworkInterfaces;
  readMtuFile?: (path: string) => Promise<string>;
  sysClassNet?: string;
}

export async function detectMtu(privateIp: string, deps: MtuDetectionDeps = {}): Promise<MtuDetection> {
  const interfaces = (deps.networkInterfaces ?? osNetworkInterfaces)();
  const readMtuFile = deps.readMtuFile ?? ((path: string) => readFile(path, 'utf8'));
  const name = Object.entries(interfaces).find(([, addresses]) =>
    (addresses ?? []).some((a) => a.family === 'IPv4' && a.address === privateIp),
  )?.[0];
  if (name === undefined) {
    return {
      mtu: FALLBACK_MTU,
      warning: `no network interface of this host has the address ${privateIp}; using MTU ${FALLBACK_MTU}. Set --mtu to the MTU of the interface holding the private IP.`,
    };
  }
  const path = `${deps.sysClassNet ?? '/sys/class/net'}/${name}/mtu`;
  try {
    const text = (await readMtuFile(path)).trim();
    const mtu = Number(text);
    if (Number.isInteger(mtu) && mtu >= 68) return { mtu, interfaceName: name };
    return {
      mtu: FALLBACK_MTU,
      warning: `${path} holds "${text}", not an MTU; using ${FALLBACK_MTU}. Set --mtu to override.`,
    };
  } catch (error) {
    return {
      mtu: FALLBACK_MTU,
      warning: `cannot read ${path} (${(error as Error).message}); using MTU ${FALLBACK_MTU}. Set --mtu to override.`,
    };
  }
}

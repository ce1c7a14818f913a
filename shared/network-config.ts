/**
 * flannel's network config (`etcdctl set /coreos.com/network/config`), validated with
 * flannel's own defaults and bounds (flannel pkg/subnet/config.go) plus the aws-vpc
 * backend's fields. Pure: no AWS, no environment.
 */
import {
  type Cidr,
  cidrOf,
  contains,
  familyBits,
  formatCidr,
  formatIp,
  lastAddress,
  nthSubnet,
  parseCidr,
  parseIp,
  subnetCount,
  subnetCountExact,
  subnetIndex,
  subnetIndexExact,
} from './cidr.js';
import { clip, field, isPlainObject, requireInteger, requireString, UNSET_IP } from './config-fields.js';
import { ValidationError } from './errors.js';
import { IPV6_FIELDS, parseIpv6Network } from './network-config-ipv6.js';

/** The JSON form, as operators write it and as `GET /v1/config` returns it (defaults filled in). */
export interface FlannelNetworkConfig {
  Network: string;
  SubnetLen: number;
  SubnetMin: string;
  SubnetMax: string;
  Backend: { Type: 'aws-vpc'; RouteTableID?: string[]; RouteLimit: number };
  /** dual stack only (absent when IPv4 only), every default filled in */
  EnableIPv6?: true;
  IPv6Network?: string;
  IPv6SubnetLen?: number;
  IPv6SubnetMin?: string;
  IPv6SubnetMax?: string;
}

export interface NetworkConfig {
  readonly network: Cidr;
  readonly subnetLen: number;
  /** first and last subnet that may be leased (both aligned to subnetLen) */
  readonly subnetMin: Cidr;
  readonly subnetMax: Cidr;
  readonly backend: {
    readonly type: 'aws-vpc';
    /** undefined = every route table of the VPC */
    readonly routeTableIds: readonly string[] | undefined;
    /** the account's routes-per-table quota */
    readonly routeLimit: number;
  };
  /** dual stack (`EnableIPv6: true`); absent for IPv4 only */
  readonly ipv6?: Ipv6NetworkConfig;
}

/** flannel's IPv6Network, IPv6SubnetLen, IPv6SubnetMin and IPv6SubnetMax, defaults filled in. */
export interface Ipv6NetworkConfig {
  readonly network: Cidr;
  readonly subnetLen: number;
  /** first and last IPv6 subnet of the range (aligned to subnetLen); only the first leasableCount are paired */
  readonly subnetMin: Cidr;
  readonly subnetMax: Cidr;
}

/** AWS's default "Routes per route table" quota; it can be raised to 1000. */
export const DEFAULT_ROUTE_LIMIT = 50;
export const MAX_ROUTE_LIMIT = 1000;
const MAX_ROUTE_TABLES = 20;
/** The most subnets one config may lease (DESIGN.md "Network config"). */
export const MAX_LEASABLE_SUBNETS = 65_536;
/** Private address space (RFC 1918 and RFC 6598 shared space): the only places a Network may be. */
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'].map(parseCidr);
const ROUTE_TABLE_ID = /^rtb-[0-9a-f]{8,17}$/;

const TOP_LEVEL_FIELDS = new Set(['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend', 'EnableIPv4']);
const BACKEND_FIELDS = new Set(['Type', 'RouteTableID', 'RouteLimit']);

export function parseNetworkConfig(input: unknown): NetworkConfig {
  if (!isPlainObject(input)) throw new ValidationError('The network config must be a JSON object.');
  for (const key of Object.keys(input)) {
    if (!TOP_LEVEL_FIELDS.has(key) && !IPV6_FIELDS.has(key)) {
      throw new ValidationError(`Unknown field "${clip(key)}" in the network config.`);
    }
  }
  if (input.EnableIPv4 !== undefined && input.EnableIPv4 !== true) {
    throw new ValidationError('EnableIPv4: must be true (or absent); vpc-lease leases IPv4 subnets.');
  }

  const network = field('Network', () => parseCidr(requireString(input.Network, 'Network')));
  const bits = familyBits(network.family);
  // flannel reads 0.0.0.0/0 as "no Network" (IP4Net.Empty) and refuses it.
  if (network.prefix === 0) {
    throw new ValidationError(
      `Network: ${formatCidr(network)} is not a usable pod network; use a private range such as 10.244.0.0/16.`,
    );
  }
  if (!PRIVATE_RANGES.some((range) => contains(range, network))) {
    throw new ValidationError(
      `Network: ${formatCidr(network)} is not private address space; use a range inside ` +
        `${PRIVATE_RANGES.map(formatCidr).join(', ')} (routes to public or link-local addresses would hijack them).`,
    );
  }
  if (network.prefix > bits - 4) {
    throw new ValidationError(
      `Network: ${formatCidr(network)} is too small; the smallest useful network is a /28.`,
    );
  }

  let subnetLen: number;
  if (input.SubnetLen === undefined || input.SubnetLen === 0) {
    subnetLen = network.prefix <= 22 ? 24 : network.prefix + 2;
  } else {
    subnetLen = requireInteger(input.SubnetLen, 'SubnetLen');
    if (subnetLen > bits - 2) {
      throw new ValidationError(
        `SubnetLen: ${subnetLen} is too long; it must be at most ${bits - 2} (a /30).`,
      );
    }
    if (subnetLen < network.prefix + 2) {
      throw new ValidationError(
        `SubnetLen: ${subnetLen} leaves fewer than four subnets in ${formatCidr(network)}; use at least ${network.prefix + 2}.`,
      );
    }
  }

  const step = 1n << BigInt(bits - subnetLen);
  const subnetMin = boundary(input.SubnetMin, 'SubnetMin', network, subnetLen, network.base + step);
  const subnetMax = boundary(
    input.SubnetMax,
    'SubnetMax',
    network,
    subnetLen,
    lastAddress(network) + 1n - step,
  );
  if (subnetMin.base > subnetMax.base) {
    throw new ValidationError(
      `SubnetMin ${formatIp(network.family, subnetMin.base)} is above SubnetMax ${formatIp(network.family, subnetMax.base)}: the range of leasable subnets is empty.`,
    );
  }

  const leasable = subnetCount(subnetMin.base, subnetMax.base, subnetLen, network.family);
  if (leasable > MAX_LEASABLE_SUBNETS) {
    throw new ValidationError(
      `SubnetLen ${subnetLen} cuts ${leasable} leasable subnets from ${formatCidr(network)}; at most ` +
        `${MAX_LEASABLE_SUBNETS} are supported. Use a shorter SubnetLen or a smaller Network.`,
    );
  }

  const ipv4 = { network, subnetLen, subnetMin, subnetMax, backend: parseBackend(input.Backend) };
  const ipv6 = parseIpv6Network(
    input,
    subnetCountExact(subnetMin.base, subnetMax.base, subnetLen, network.family),
  );
  return ipv6 ? { ...ipv4, ipv6 } : ipv4;
}

function parseBackend(input: unknown): NetworkConfig['backend'] {
  if (input === undefined) throw new ValidationError('Backend: required, e.g. {"Type": "aws-vpc"}.');
  if (!isPlainObject(input))
    throw new ValidationError('Backend: must be an object, e.g. {"Type": "aws-vpc"}.');
  for (const key of Object.keys(input)) {
    if (!BACKEND_FIELDS.has(key))
      throw new ValidationError(`Unknown field "Backend.${clip(key)}" in the network config.`);
  }
  if (input.Type !== 'aws-vpc') {
    throw new ValidationError(
      `Backend.Type: must be "aws-vpc" (got ${clip(JSON.stringify(input.Type) ?? 'nothing')}); other backends do not need vpc-lease.`,
    );
  }

  let routeTableIds: string[] | undefined;
  const raw = input.RouteTableID;
  if (raw !== undefined) {
    const list = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0) {
      throw new ValidationError(
        'Backend.RouteTableID: must be a route table id or a non-empty list of them.',
      );
    }
    if (list.length > MAX_ROUTE_TABLES) {
      throw new ValidationError(`Backend.RouteTableID: at most ${MAX_ROUTE_TABLES} route tables.`);
    }
    for (const id of list) {
      if (typeof id !== 'string' || !ROUTE_TABLE_ID.test(id)) {
        throw new ValidationError(
          `Backend.RouteTableID: ${clip(JSON.stringify(id) ?? String(id))} is not a route table id (like rtb-0123456789abcdef0).`,
        );
      }
    }
    if (new Set(list).size !== list.length)
      throw new ValidationError('Backend.RouteTableID: lists a table twice.');
    routeTableIds = [...list];
  }

  let routeLimit = DEFAULT_ROUTE_LIMIT;
  if (input.RouteLimit !== undefined) {
    routeLimit = requireInteger(input.RouteLimit, 'Backend.RouteLimit');
    if (routeLimit < 1 || routeLimit > MAX_ROUTE_LIMIT) {
      throw new ValidationError(
        `Backend.RouteLimit: ${routeLimit} is outside 1-${MAX_ROUTE_LIMIT} (AWS allows at most ${MAX_ROUTE_LIMIT} routes per table).`,
      );
    }
  }
  return { type: 'aws-vpc', routeTableIds, routeLimit };
}

/** The IPv6 subnet paired with a leasable IPv4 subnet (same index); undefined in IPv4-only configs. */
export function pairedIpv6Subnet(config: NetworkConfig, ipv4Subnet: Cidr): Cidr | undefined {
  if (!config.ipv6) return undefined;
  const index = leasableIndex(config, ipv4Subnet);
  return nthSubnet(6, config.ipv6.subnetMin.base, config.ipv6.subnetLen, index);
}

/**
 * Whether an IPv6 subnet is one a lease can hold: right length, aligned, and among the first
 * leasableCount subnets from IPv6SubnetMin (the rest of the IPv6 range has no IPv4 partner).
 * The IPv6 half of route ownership (invariant 4).
 */
export function isLeasableIpv6(config: NetworkConfig, subnet: Cidr): boolean {
  const v6 = config.ipv6;
  if (!v6 || subnet.family !== 6 || subnet.prefix !== v6.subnetLen || !contains(v6.network, subnet))
    return false;
  if (subnet.base < v6.subnetMin.base || subnet.base > v6.subnetMax.base) return false;
  return subnetIndexExact(v6.subnetMin.base, subnet) < BigInt(leasableCount(config));
}

/** Inverse of pairedIpv6Subnet. Throws a RangeError for an IPv6 subnet that is not leasable. */
export function pairedIpv4Subnet(config: NetworkConfig, ipv6Subnet: Cidr): Cidr {
  if (!isLeasableIpv6(config, ipv6Subnet)) {
    throw new RangeError(`${formatCidr(ipv6Subnet)} is not a leasable IPv6 subnet of this config`);
  }
  return leasableSubnet(config, Number(subnetIndexExact(config.ipv6!.subnetMin.base, ipv6Subnet)));
}

/** The flannel JSON with every default filled in, as published. */
export function toFlannelJson(config: NetworkConfig): FlannelNetworkConfig {
  const { network } = config;
  return {
    Network: formatCidr(network),
    SubnetLen: config.subnetLen,
    SubnetMin: formatIp(network.family, config.subnetMin.base),
    SubnetMax: formatIp(network.family, config.subnetMax.base),
    Backend: {
      Type: 'aws-vpc',
      ...(config.backend.routeTableIds ? { RouteTableID: [...config.backend.routeTableIds] } : {}),
      RouteLimit: config.backend.routeLimit,
    },
    ...(config.ipv6
      ? {
          EnableIPv6: true as const,
          IPv6Network: formatCidr(config.ipv6.network),
          IPv6SubnetLen: config.ipv6.subnetLen,
          IPv6SubnetMin: formatIp(6, config.ipv6.subnetMin.base),
          IPv6SubnetMax: formatIp(6, config.ipv6.subnetMax.base),
        }
      : {}),
  };
}

/** How many subnets the config can lease. */
export const leasableCount = (config: NetworkConfig): number =>
  subnetCount(config.subnetMin.base, config.subnetMax.base, config.subnetLen, config.network.family);

/** The i-th leasable subnet, 0-based from SubnetMin. Throws a RangeError outside 0..leasableCount-1. */
export function leasableSubnet(config: NetworkConfig, index: number): Cidr {
  if (!Number.isInteger(index) || index < 0 || index >= leasableCount(config)) {
    throw new RangeError(`leasable subnet index ${index} is outside 0-${leasableCount(config) - 1}`);
  }
  return nthSubnet(config.network.family, config.subnetMin.base, config.subnetLen, index);
}

/** Whether `subnet` is one the config may lease: right length, aligned, within SubnetMin..SubnetMax. */
export function isLeasable(config: NetworkConfig, subnet: Cidr): boolean {
  return (
    subnet.family === config.network.family &&
    subnet.prefix === config.subnetLen &&
    contains(config.network, subnet) &&
    subnet.base >= config.subnetMin.base &&
    subnet.base <= config.subnetMax.base
  );
}

/**
 * Inverse of leasableSubnet. Throws a RangeError for a subnet that is not leasable (check isLeasable
 * first): the raw arithmetic would answer a plausible but wrong index for a misaligned, wrong-length or
 * out-of-range subnet.
 */
export function leasableIndex(config: NetworkConfig, subnet: Cidr): number {
  if (!isLeasable(config, subnet)) {
    throw new RangeError(`${formatCidr(subnet)} is not a leasable subnet of ${formatCidr(config.network)}`);
  }
  return subnetIndex(config.subnetMin.base, subnet);
}

function boundary(value: unknown, name: string, network: Cidr, subnetLen: number, fallback: bigint): Cidr {
  if (value === undefined) return { family: network.family, base: fallback, prefix: subnetLen };
  const ip = field(name, () => parseIp(requireString(value, name)));
  if (ip.value === UNSET_IP) return { family: network.family, base: fallback, prefix: subnetLen };
  if (ip.family !== network.family || ip.value < network.base || ip.value > lastAddress(network)) {
    throw new ValidationError(`${name}: ${value} is not inside Network ${formatCidr(network)}.`);
  }
  const aligned = cidrOf(ip.family, ip.value, subnetLen);
  if (aligned.base !== ip.value) {
    throw new ValidationError(
      `${name}: ${value} is not on a /${subnetLen} boundary (SubnetLen); use ${formatIp(ip.family, aligned.base)}.`,
    );
  }
  return aligned;
}

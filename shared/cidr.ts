/**
 * CIDR math. Addresses are bigints tagged with their family, so every operation
 * below is the same for IPv4 (32 bits) and IPv6 (128 bits).
 *
 * `parseIp`/`parseCidr` read IPv4 only (a host's `privateIp`, the overlay `Network`);
 * IPv6 text is read by `parseIpv6`/`parseIpv6Cidr` or, for either family named by the
 * caller, `parseIpOf`/`parseCidrOf`. Strict parsing: IPv4 as a dotted quad without
 * leading zeros (they mean octal to some tools); IPv6 as RFC 4291 text (no zone id);
 * no host bits set in a network address.
 */
export type IpFamily = 4 | 6;

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

export interface Cidr {
  readonly family: IpFamily;
  /** network address (host bits zero) */
  readonly base: bigint;
  readonly prefix: number;
}

export class CidrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CidrError';
  }
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

export const familyBits = (family: IpFamily): number => BITS[family];

export function parseIp(text: string): { family: IpFamily; value: bigint } {
  if (typeof text !== 'string') throw new CidrError('an IP address must be a string');
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p) && Number(p) <= 255)) {
    throw new CidrError(
      `"${truncate(text)}" is not an IPv4 address (expected four numbers 0-255, like 10.0.1.23)`,
    );
  }
  let value = 0n;
  for (const part of parts) value = (value << 8n) | BigInt(Number(part));
  return { family: 4, value };
}

export function isIp(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  try {
    parseIp(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * RFC 4291 section 2.2 text: eight groups of 1-4 hex digits, one `::` standing for one or
 * more zero groups, optionally a dotted quad as the last 32 bits. Refused: zone ids
 * (`fe80::1%eth0`, meaningless in a route), whitespace, a `::` standing for nothing.
 */
export function parseIpv6(text: string): { family: 6; value: bigint } {
  if (typeof text !== 'string') throw new CidrError('an IP address must be a string');
  const value = ipv6Value(text);
  if (value === undefined) {
    throw new CidrError(
      `"${truncate(text)}" is not an IPv6 address (expected up to eight groups of hex digits with at most one "::", like fd00:10:244::1)`,
    );
  }
  return { family: 6, value };
}

/** The address in the family the caller expects; the error names that family. */
export function parseIpOf(family: IpFamily, text: string): { family: IpFamily; value: bigint } {
  return family === 4 ? parseIp(text) : parseIpv6(text);
}

function ipv6Value(text: string): bigint | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0]!, halves.length === 1 ? 'last' : 'middle');
  const tail = halves.length === 2 ? groupsOf(halves[1]!, 'last') : [];
  if (!head || !tail) return undefined;
  const groups =
    halves.length === 2
      ? head.length + tail.length < 8 // "::" stands for at least one zero group
        ? [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
        : undefined
      : head;
  if (groups?.length !== 8) return undefined;
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/**
 * The 16-bit groups of one side of a `::` ('' is none). A dotted quad is allowed only as
 * the very last part of the address, where it stands for two groups.
 */
function groupsOf(part: string, position: 'last' | 'middle'): number[] | undefined {
  if (part === '') return [];
  const pieces = part.split(':');
  const groups: number[] = [];
  for (const [i, piece] of pieces.entries()) {
    if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) {
      groups.push(Number.parseInt(piece, 16));
    } else if (position === 'last' && i === pieces.length - 1 && piece.includes('.')) {
      if (!isIp(piece)) return undefined;
      const v4 = Number(parseIp(piece).value);
      groups.push(Math.floor(v4 / 0x1_0000), v4 % 0x1_0000);
    } else {
      return undefined;
    }
  }
  return groups;
}

/**
 * IPv4 as a dotted quad; IPv6 in RFC 5952's canonical text, as Go's net.IP.String()
 * (flanneld's FLANNEL_IPV6_SUBNET) writes it: lower case, no leading zeros, the longest run
 * of two or more zero groups (the first of equals) as `::`. One difference, on purpose:
 * an IPv4-mapped address (::ffff:0:0/96) stays hex (`::ffff:a00:1`) where Go prints a bare
 * dotted quad, so that every printed address parses back as IPv6. No network vpc-lease
 * accepts lies in that block.
 */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 6) return formatIpv6(value);
  const octets: number[] = [];
  let v = value;
  for (let i = 0; i < BITS[family] / 8; i++) {
    octets.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return octets.join('.');
}

function formatIpv6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.unshift(Number((value >> BigInt(16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never shortened (RFC 5952 section 4.2.2)
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end === start ? start + 1 : end;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  return bestStart < 0 ? hex(0, 8) : `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** Parses `a.b.c.d/len`. Host bits must be zero: `10.244.7.1/24` is refused, not rounded. */
export function parseCidr(text: string): Cidr {
  return parseCidrOf(4, text);
}

/** Parses an IPv6 `address/len`, e.g. `fd00:10:244::/56`. Host bits must be zero. */
export function parseIpv6Cidr(text: string): Cidr {
  return parseCidrOf(6, text);
}

/** A CIDR of the family the caller expects; the errors name that family. */
export function parseCidrOf(family: IpFamily, text: string): Cidr {
  if (typeof text !== 'string') throw new CidrError('a CIDR must be a string');
  const slash = text.indexOf('/');
  if (slash < 0) {
    const example = family === 4 ? '10.244.0.0/16' : 'fd00:10:244::/56';
    throw new CidrError(`"${truncate(text)}" is not a CIDR (expected address/prefix, like ${example})`);
  }
  const { value } = parseIpOf(family, text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  const bits = BITS[family];
  if (!/^(0|[1-9][0-9]?[0-9]?)$/.test(prefixText) || Number(prefixText) > bits) {
    throw new CidrError(`"${truncate(text)}" has an invalid prefix length (expected 0-${bits})`);
  }
  const prefix = Number(prefixText);
  const cidr: Cidr = { family, base: value, prefix };
  if ((value & hostMask(cidr)) !== 0n) {
    throw new CidrError(
      `"${truncate(text)}" has host bits set; did you mean ${formatCidr(cidrOf(family, value, prefix))}?`,
    );
  }
  return cidr;
}

export function cidrOf(family: IpFamily, address: bigint, prefix: number): Cidr {
  const c: Cidr = { family, base: 0n, prefix };
  return { family, base: address & ~hostMask(c) & allOnes(family), prefix };
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.family, c.base)}/${c.prefix}`;

export const size = (c: Cidr): bigint => 1n << BigInt(BITS[c.family] - c.prefix);

export const lastAddress = (c: Cidr): bigint => c.base + size(c) - 1n;

export function contains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && inner.base >= outer.base
    ? lastAddress(inner) <= lastAddress(outer)
    : false;
}

export function containsIp(outer: Cidr, family: IpFamily, address: bigint): boolean {
  return outer.family === family && address >= outer.base && address <= lastAddress(outer);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= lastAddress(b) && b.base <= lastAddress(a);
}

/** Subnet order: by address, then by prefix (the wider first). For sort(). */
export function compareSubnets(a: Cidr, b: Cidr): number {
  if (a.base !== b.base) return a.base < b.base ? -1 : 1;
  return a.prefix - b.prefix;
}

export const equals = (a: Cidr, b: Cidr): boolean =>
  a.family === b.family && a.base === b.base && a.prefix === b.prefix;

/** Number of subnets of length `subnetLen` between `min` and `max` (inclusive, both subnet addresses). */
export function subnetCount(min: bigint, max: bigint, subnetLen: number, family: IpFamily): number {
  return Number(subnetCountExact(min, max, subnetLen, family));
}

/** subnetCount without rounding: an IPv6 range can hold more subnets than a double counts exactly. */
export function subnetCountExact(min: bigint, max: bigint, subnetLen: number, family: IpFamily): bigint {
  const step = 1n << BigInt(BITS[family] - subnetLen);
  return (max - min) / step + 1n;
}

/** The i-th subnet of length `subnetLen` counting from the address `min`. */
export function nthSubnet(family: IpFamily, min: bigint, subnetLen: number, index: number | bigint): Cidr {
  const step = 1n << BigInt(BITS[family] - subnetLen);
  return { family, base: min + step * BigInt(index), prefix: subnetLen };
}

/** Inverse of nthSubnet. */
export function subnetIndex(min: bigint, subnet: Cidr): number {
  return Number(subnetIndexExact(min, subnet));
}

/** subnetIndex without rounding, for IPv6 ranges beyond 2^53 subnets. */
export function subnetIndexExact(min: bigint, subnet: Cidr): bigint {
  const step = 1n << BigInt(BITS[subnet.family] - subnet.prefix);
  return (subnet.base - min) / step;
}

/** `10.244.7.0/24` <-> `10.244.7.0-24`, the form flannel used for its etcd keys and we use in URLs. */
export const toSubnetKey = (c: Cidr): string => `${formatIp(c.family, c.base)}-${c.prefix}`;

export function parseSubnetKey(key: string): Cidr {
  if (typeof key !== 'string' || !/^[0-9.]{7,15}-[0-9]{1,3}$/.test(key)) {
    throw new CidrError(`"${truncate(String(key))}" is not a subnet key (expected the form 10.244.7.0-24)`);
  }
  return parseCidr(key.replace('-', '/'));
}

/**
 * First host address of a subnet with the prefix, as flannel writes FLANNEL_SUBNET
 * (10.244.7.1/24) and FLANNEL_IPV6_SUBNET (fd00:10:244:7::1/64).
 */
export const firstHostWithPrefix = (c: Cidr): string => `${formatIp(c.family, c.base + 1n)}/${c.prefix}`;

function hostMask(c: Cidr): bigint {
  return (1n << BigInt(BITS[c.family] - c.prefix)) - 1n;
}

function allOnes(family: IpFamily): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

/**
 * CIDR math. Addresses are bigints tagged with their family, so every operation
 * below is the same for IPv6 (128 bits) once a parser for it is added; today only
 * IPv4 text is accepted. Strict parsing: dotted quad, no leading zeros (they mean
 * octal to some tools), no host bits set in a network address.
 */
export type IpFamily = 4;

const BITS: Record<IpFamily, number> = { 4: 32 };

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

export function formatIp(family: IpFamily, value: bigint): string {
  const octets: number[] = [];
  let v = value;
  for (let i = 0; i < BITS[family] / 8; i++) {
    octets.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return octets.join('.');
}

/** Parses `a.b.c.d/len`. Host bits must be zero: `10.244.7.1/24` is refused, not rounded. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new CidrError('a CIDR must be a string');
  const slash = text.indexOf('/');
  if (slash < 0)
    throw new CidrError(`"${truncate(text)}" is not a CIDR (expected address/prefix, like 10.244.0.0/16)`);
  const { family, value } = parseIp(text.slice(0, slash));
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

export const equals = (a: Cidr, b: Cidr): boolean =>
  a.family === b.family && a.base === b.base && a.prefix === b.prefix;

/** Number of subnets of length `subnetLen` between `min` and `max` (inclusive, both subnet addresses). */
export function subnetCount(min: bigint, max: bigint, subnetLen: number, family: IpFamily): number {
  const step = 1n << BigInt(BITS[family] - subnetLen);
  return Number((max - min) / step) + 1;
}

/** The i-th subnet of length `subnetLen` counting from the address `min`. */
export function nthSubnet(family: IpFamily, min: bigint, subnetLen: number, index: number): Cidr {
  const step = 1n << BigInt(BITS[family] - subnetLen);
  return { family, base: min + step * BigInt(index), prefix: subnetLen };
}

/** Inverse of nthSubnet. */
export function subnetIndex(min: bigint, subnet: Cidr): number {
  const step = 1n << BigInt(BITS[subnet.family] - subnet.prefix);
  return Number((subnet.base - min) / step);
}

/** `10.244.7.0/24` <-> `10.244.7.0-24`, the form flannel used for its etcd keys and we use in URLs. */
export const toSubnetKey = (c: Cidr): string => `${formatIp(c.family, c.base)}-${c.prefix}`;

export function parseSubnetKey(key: string): Cidr {
  if (typeof key !== 'string' || !/^[0-9.]{7,15}-[0-9]{1,3}$/.test(key)) {
    throw new CidrError(`"${truncate(String(key))}" is not a subnet key (expected the form 10.244.7.0-24)`);
  }
  return parseCidr(key.replace('-', '/'));
}

/** First host address of a subnet with the prefix, as flannel writes FLANNEL_SUBNET (10.244.7.1/24). */
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

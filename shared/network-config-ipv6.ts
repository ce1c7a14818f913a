/**
 * The dual-stack half of the network config: flannel's IPv6Network, IPv6SubnetLen,
 * IPv6SubnetMin and IPv6SubnetMax, validated as flannel's CheckNetworkConfig does, and the
 * checks against the VPC's own IPv6 blocks. Pure: no AWS, no environment.
 */
import {
  type Cidr,
  cidrOf,
  contains,
  formatCidr,
  formatIp,
  lastAddress,
  overlaps,
  parseIpv6,
  parseIpv6Cidr,
  subnetCountExact,
} from './cidr.js';
import { clip, field, requireInteger, requireString, UNSET_IP } from './config-fields.js';
import { ValidationError } from './errors.js';
import type { Ipv6NetworkConfig, NetworkConfig } from './network-config.js';

/** The dual-stack fields of the config's top level. */
export const IPV6_FIELDS = new Set([
  'EnableIPv6',
  'IPv6Network',
  'IPv6SubnetLen',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
]);

/**
 * Unique local addresses (RFC 4193), flannel's own test for a private IPv6 network
 * (pkg/ip IP6.IsPrivate). vpc-lease requires them for IPv6Network, as it requires private
 * space for Network: a global prefix would be either the VPC's own (refused: overlap) or
 * somebody else's on the internet, and pod traffic leaves the VPC masqueraded by the host
 * in both families anyway.
 */
export const IPV6_PRIVATE_RANGE = parseIpv6Cidr('fc00::/7');

/** flannel's smallest useful IPv6Network (four /126s) and longest IPv6SubnetLen. */
const MAX_IPV6_NETWORK_PREFIX = 124;
const MAX_IPV6_SUBNET_LEN = 126;

/**
 * Dual stack, as flannel's CheckNetworkConfig validates it (pkg/subnet/config.go), plus the
 * pairing rule: a lease takes IPv4 subnet i of SubnetMin..SubnetMax and IPv6 subnet i of
 * IPv6SubnetMin..IPv6SubnetMax, so the IPv6 range must hold at least `ipv4Count` subnets.
 * Undefined when the config is IPv4 only; IPv6 fields without `"EnableIPv6": true` are refused
 * rather than ignored (flannel ignores them), so a half-written dual-stack config never
 * passes for a working one.
 */
export function parseIpv6Network(
  input: Record<string, unknown>,
  ipv4Count: bigint,
): Ipv6NetworkConfig | undefined {
  const enable = input.EnableIPv6;
  if (enable !== undefined && typeof enable !== 'boolean') {
    throw new ValidationError(
      `EnableIPv6: must be true or false (got ${clip(JSON.stringify(enable) ?? String(enable))}).`,
    );
  }
  if (enable !== true) {
    const stray = [...IPV6_FIELDS].find((key) => key !== 'EnableIPv6' && key in input);
    if (stray) {
      throw new ValidationError(
        `${stray}: applies only to a dual-stack network; add "EnableIPv6": true or remove the field.`,
      );
    }
    return undefined;
  }

  const network = field('IPv6Network', () =>
    parseIpv6Cidr(requireString(input.IPv6Network, 'IPv6Network', 'e.g. "fd00:10:244::/56"')),
  );
  if (!contains(IPV6_PRIVATE_RANGE, network)) {
    throw new ValidationError(
      `IPv6Network: ${formatCidr(network)} is not a unique local (private) IPv6 range; use one inside fc00::/7, such as fd00:10:244::/56.`,
    );
  }
  if (network.prefix > MAX_IPV6_NETWORK_PREFIX) {
    throw new ValidationError(
      `IPv6Network: ${formatCidr(network)} is too small; the smallest useful IPv6 network is a /${MAX_IPV6_NETWORK_PREFIX}.`,
    );
  }

  let subnetLen: number;
  if (input.IPv6SubnetLen === undefined || input.IPv6SubnetLen === 0) {
    // flannel: a /64 per host when the network holds at least four of them, else a quarter of it
    subnetLen = network.prefix <= 62 ? 64 : network.prefix + 2;
  } else {
    subnetLen = requireInteger(input.IPv6SubnetLen, 'IPv6SubnetLen');
    if (subnetLen > MAX_IPV6_SUBNET_LEN) {
      throw new ValidationError(
        `IPv6SubnetLen: ${subnetLen} is too long; it must be at most ${MAX_IPV6_SUBNET_LEN} (a /126).`,
      );
    }
    if (subnetLen < network.prefix + 2) {
      throw new ValidationError(
        `IPv6SubnetLen: ${subnetLen} leaves fewer than four subnets in ${formatCidr(network)}; use at least ${network.prefix + 2}.`,
      );
    }
  }

  const step = 1n << BigInt(128 - subnetLen);
  const subnetMin = ipv6Boundary(
    input.IPv6SubnetMin,
    'IPv6SubnetMin',
    network,
    subnetLen,
    network.base + step,
  );
  const subnetMax = ipv6Boundary(
    input.IPv6SubnetMax,
    'IPv6SubnetMax',
    network,
    subnetLen,
    lastAddress(network) + 1n - step,
  );
  if (subnetMin.base > subnetMax.base) {
    throw new ValidationError(
      `IPv6SubnetMin ${formatIp(6, subnetMin.base)} is above IPv6SubnetMax ${formatIp(6, subnetMax.base)}: the range of IPv6 subnets is empty.`,
    );
  }
  const ipv6Count = subnetCountExact(subnetMin.base, subnetMax.base, subnetLen, 6);
  if (ipv6Count < ipv4Count) {
    throw new ValidationError(
      `IPv6SubnetMin..IPv6SubnetMax holds ${ipv6Count} /${subnetLen} subnet(s), fewer than the ${ipv4Count} IPv4 subnets of SubnetMin..SubnetMax; ` +
        'every lease pairs IPv4 subnet i with IPv6 subnet i. Widen the IPv6 range (a larger IPv6Network or a longer IPv6SubnetLen) or narrow the IPv4 one.',
    );
  }
  return { network, subnetLen, subnetMin, subnetMax };
}

function ipv6Boundary(
  value: unknown,
  name: string,
  network: Cidr,
  subnetLen: number,
  fallback: bigint,
): Cidr {
  if (value === undefined) return { family: 6, base: fallback, prefix: subnetLen };
  const ip = field(name, () => parseIpv6(requireString(value, name, 'e.g. "fd00:10:244:1::"')));
  // flannel reads "::" as unset (pkg/ip IsEmpty), as 0.0.0.0 for SubnetMin
  if (ip.value === UNSET_IP) return { family: 6, base: fallback, prefix: subnetLen };
  if (ip.value < network.base || ip.value > lastAddress(network)) {
    throw new ValidationError(`${name}: ${value} is not inside IPv6Network ${formatCidr(network)}.`);
  }
  const aligned = cidrOf(6, ip.value, subnetLen);
  if (aligned.base !== ip.value) {
    throw new ValidationError(
      `${name}: ${value} is not on a /${subnetLen} boundary (IPv6SubnetLen); use ${formatIp(6, aligned.base)}.`,
    );
  }
  return aligned;
}

/**
 * The VPC's own IPv6 blocks must never be routed to a host's ENI: refuses an IPv6Network
 * that overlaps any of them (the same rule as Network against the VPC's IPv4 blocks).
 */
export function refuseIpv6VpcOverlap(
  config: NetworkConfig,
  vpcIpv6Cidrs: readonly string[],
  vpcId: string,
): void {
  if (!config.ipv6) return;
  for (const text of vpcIpv6Cidrs) {
    if (overlaps(config.ipv6.network, parseIpv6Cidr(text))) {
      throw new ValidationError(
        `IPv6Network ${formatCidr(config.ipv6.network)} overlaps ${text}, an IPv6 CIDR block of ${vpcId}; choose a unique local range outside the VPC, such as fd00:10:244::/56.`,
      );
    }
  }
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSubnetEnv, parseSubnetEnv, subnetEnvOfLease } from '../../agent/subnet-env.js';
import { CidrError } from '../../shared/cidr.js';

describe('subnet.env in dual stack', () => {
  // flanneld's WriteSubnetFile (pkg/subnet/subnetfile_unix.go) with EnableIPv4 and EnableIPv6:
  // NETWORK, SUBNET, IPV6_NETWORK, IPV6_SUBNET (the subnet's address + 1, with the prefix, as Go
  // prints an IP6Net), MTU, IPMASQ; each line ending in \n, nothing else.
  it('writes the same bytes as flanneld for the same dual-stack lease', () => {
    const text = formatSubnetEnv({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      ipv6Network: 'fd00:10:244::/56',
      ipv6Subnet: 'fd00:10:244:7::/64',
      mtu: 9001,
      ipMasq: true,
    });

    expect(Buffer.from(text)).toEqual(
      Buffer.from(
        'FLANNEL_NETWORK=10.244.0.0/16\n' +
          'FLANNEL_SUBNET=10.244.7.1/24\n' +
          'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\n' +
          'FLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n' +
          'FLANNEL_MTU=9001\n' +
          'FLANNEL_IPMASQ=true\n',
      ),
    );
  });

  it.each([
    ['fd00:10:244::/64', 'fd00:10:244::1/64'],
    ['fd00:0:0:1::/64', 'fd00:0:0:1::1/64'],
    ['fd00:10:244:7:0:1::/96', 'fd00:10:244:7:0:1:0:1/96'],
    ['fd00:10:244:7:ffff:ffff:ffff:fff0/124', 'fd00:10:244:7:ffff:ffff:ffff:fff1/124'],
  ])('writes the IPv6 subnet %s as %s (RFC 5952, as Go)', (ipv6Subnet, line) => {
    const text = formatSubnetEnv({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      ipv6Network: 'fd00::/8',
      ipv6Subnet,
      mtu: 1500,
      ipMasq: false,
    });
    expect(text).toContain(`\nFLANNEL_IPV6_SUBNET=${line}\n`);
  });

  it('writes the canonical text whatever spelling it was given', () => {
    const text = formatSubnetEnv({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      ipv6Network: 'FD00:0010:0244:0000::/56',
      ipv6Subnet: 'FD00:10:244:7:0:0:0:0/64',
      mtu: 1500,
      ipMasq: false,
    });
    expect(text).toContain(
      'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n',
    );
  });

  it('writes no IPv6 line for an IPv4-only lease', () => {
    const text = formatSubnetEnv({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      mtu: 1500,
      ipMasq: false,
    });
    expect(text).not.toContain('IPV6');
  });

  it('refuses half a dual stack rather than write it', () => {
    const base = { network: '10.244.0.0/16', subnet: '10.244.7.0/24', mtu: 1500, ipMasq: false };
    expect(() => formatSubnetEnv({ ...base, ipv6Subnet: 'fd00:10:244:7::/64' })).toThrow(
      'needs both ipv6Network and ipv6Subnet (got only ipv6Subnet)',
    );
    expect(() => formatSubnetEnv({ ...base, ipv6Network: 'fd00:10:244::/56' })).toThrow(
      'got only ipv6Network',
    );
  });

  it('refuses an IPv6 value that is not an IPv6 network', () => {
    const base = { network: '10.244.0.0/16', subnet: '10.244.7.0/24', mtu: 1500, ipMasq: false };
    expect(() =>
      formatSubnetEnv({ ...base, ipv6Network: 'fd00:10:244::/56', ipv6Subnet: '10.244.7.0/24' }),
    ).toThrow(CidrError);
    expect(() =>
      formatSubnetEnv({ ...base, ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:7::1/64' }),
    ).toThrow('host bits set');
  });

  it('reads back what it writes (any IPv6 subnet)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 120n) - 1n }),
        fc.integer({ min: 10, max: 126 }),
        fc.integer({ min: 68, max: 9001 }),
        fc.boolean(),
        (address, subnetLen, mtu, ipMasq) => {
          const value = (0xfdn << 120n) | address;
          const base = value & ~((1n << BigInt(128 - subnetLen)) - 1n);
          const hex = base.toString(16).padStart(32, '0').match(/.{4}/g)!.join(':');
          const env = {
            network: '10.244.0.0/16',
            subnet: '10.244.7.0/24',
            ipv6Network: 'fd00::/8',
            ipv6Subnet: `${hex}/${subnetLen}`,
            mtu,
            ipMasq,
          };
          const parsed = parseSubnetEnv(formatSubnetEnv(env));
          expect(parsed.problems).toEqual([]);
          expect(parsed.subnet).toBe('10.244.7.0/24');
          expect(parsed.ipv6Network).toBe('fd00::/8');
          // the text differs (canonical), the network is the same
          expect(formatSubnetEnv({ ...env, ipv6Subnet: parsed.ipv6Subnet! })).toBe(formatSubnetEnv(env));
        },
      ),
    );
  });

  it('reads a dual-stack file written by flanneld, and says what it ignored in a damaged one', () => {
    const good = parseSubnetEnv(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n' +
        'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n' +
        'FLANNEL_MTU=8951\nFLANNEL_IPMASQ=true\n',
    );
    expect(good).toEqual({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      ipv6Network: 'fd00:10:244::/56',
      ipv6Subnet: 'fd00:10:244:7::/64',
      mtu: 8951,
      ipMasq: true,
      problems: [],
    });

    const damaged = parseSubnetEnv(
      'FLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::\nFLANNEL_IPV6_SUBNET=fd00:::1/64\n',
    );
    expect(damaged.subnet).toBe('10.244.7.0/24');
    expect(damaged.ipv6Network).toBeUndefined();
    expect(damaged.ipv6Subnet).toBeUndefined();
    expect(damaged.problems).toEqual([
      'FLANNEL_IPV6_NETWORK=fd00:10:244:: is not a CIDR like fd00:10:244::/56; ignored',
      'FLANNEL_IPV6_SUBNET=fd00:::1/64 is not an address/prefix like fd00:10:244:7::1/64; ignored',
    ]);
  });
});

describe('subnetEnvOfLease', () => {
  const lease = { network: '10.244.0.0/16', subnet: '10.244.7.0/24' };

  it('carries the IPv6 subnet and network when the lease has both', () => {
    expect(
      subnetEnvOfLease(
        { ...lease, ipv6Network: 'fd00:10:244::/56', ipv6Subnet: 'fd00:10:244:7::/64' },
        { mtu: 9001, ipMasq: true },
      ),
    ).toEqual({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      ipv6Network: 'fd00:10:244::/56',
      ipv6Subnet: 'fd00:10:244:7::/64',
      mtu: 9001,
      ipMasq: true,
    });
  });

  it('is IPv4 only for an IPv4 lease, and for a lease with only one of the IPv6 fields', () => {
    const ipv4 = { network: '10.244.0.0/16', subnet: '10.244.7.0/24', mtu: 1500, ipMasq: false };
    expect(subnetEnvOfLease(lease, { mtu: 1500, ipMasq: false })).toEqual(ipv4);
    expect(
      subnetEnvOfLease({ ...lease, ipv6Subnet: 'fd00:10:244:7::/64' }, { mtu: 1500, ipMasq: false }),
    ).toEqual(ipv4);
  });
});

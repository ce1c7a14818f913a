/**
 * Dual stack in the network config: flannel's EnableIPv6, IPv6Network, IPv6SubnetLen,
 * IPv6SubnetMin and IPv6SubnetMax (defaults and bounds of flannel pkg/subnet/config.go),
 * vpc-lease's rules on top (a unique local IPv6Network, an IPv6 range at least as large as
 * the IPv4 one), and the pairing of IPv4 subnet i with IPv6 subnet i.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Cidr,
  cidrOf,
  formatCidr,
  formatIp,
  nthSubnet,
  parseCidr,
  parseIpv6,
  parseIpv6Cidr,
} from '../../shared/cidr.js';
import { ValidationError } from '../../shared/errors.js';
import {
  isLeasable,
  isLeasableIpv6,
  leasableCount,
  leasableSubnet,
  type NetworkConfig,
  pairedIpv4Subnet,
  pairedIpv6Subnet,
  parseNetworkConfig,
  toFlannelJson,
} from '../../shared/network-config.js';
import { refuseIpv6VpcOverlap } from '../../shared/network-config-ipv6.js';

const AWS_VPC = { Type: 'aws-vpc' } as const;
const v4 = (text: string): Cidr => parseCidr(text);
const v6 = (text: string): Cidr => parseIpv6Cidr(text);

/** A dual-stack config as an operator writes it: IPv4 defaults, IPv6 given by `rest`. */
const dual = (rest: Record<string, unknown> = {}, network = '10.244.0.0/16') => ({
  Network: network,
  Backend: AWS_VPC,
  EnableIPv6: true,
  IPv6Network: 'fd00:10:244::/56',
  ...rest,
});

function refusal(input: unknown): ValidationError {
  try {
    parseNetworkConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be refused`);
}

/** A 400 ValidationError whose message names the field first, then each fragment. */
function expectRefused(input: unknown, field: string, ...fragments: string[]): void {
  const error = refusal(input);
  expect(error.code).toBe('ValidationError');
  expect(error.status).toBe(400);
  expect(error.message.startsWith(field)).toBe(true);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
}

describe('parseNetworkConfig: dual-stack defaults, as flannel', () => {
  it('gives each host a /64 of IPv6Network, from the second /64 to the last', () => {
    const config = parseNetworkConfig(dual());
    expect(config.ipv6).toEqual({
      network: v6('fd00:10:244::/56'),
      subnetLen: 64,
      subnetMin: v6('fd00:10:244:1::/64'),
      subnetMax: v6('fd00:10:244:ff::/64'),
    });
  });

  it.each([
    ['fd00::/8', 64],
    ['fd00:10::/48', 64],
    ['fd00:10:244::/62', 64],
    ['fd00:10:244::/63', 65],
    ['fd00:10:244::/100', 102],
    ['fd00:10:244::/124', 126],
  ])('defaults IPv6SubnetLen for %s to %i (64, or prefix + 2 below a /62)', (network, subnetLen) => {
    // an IPv4 range of 2 subnets, so that even the smallest IPv6 network pairs with it
    const ipv4 = { SubnetMin: '10.244.1.0', SubnetMax: '10.244.2.0' };
    expect(parseNetworkConfig(dual({ IPv6Network: network, ...ipv4 })).ipv6?.subnetLen).toBe(subnetLen);
    expect(
      parseNetworkConfig(dual({ IPv6Network: network, IPv6SubnetLen: 0, ...ipv4 })).ipv6?.subnetLen,
    ).toBe(subnetLen);
  });

  it('reads "::" as an unset IPv6SubnetMin/IPv6SubnetMax, as flannel does', () => {
    const config = parseNetworkConfig(dual({ IPv6SubnetMin: '::', IPv6SubnetMax: '::' }));
    expect(config.ipv6?.subnetMin).toEqual(v6('fd00:10:244:1::/64'));
    expect(config.ipv6?.subnetMax).toEqual(v6('fd00:10:244:ff::/64'));
  });

  it('takes explicit values, in any valid spelling', () => {
    const config = parseNetworkConfig(
      dual({
        IPv6Network: 'FD00:0010:0244:0000::/48',
        IPv6SubnetLen: 80,
        IPv6SubnetMin: 'fd00:10:244:0:1::',
        IPv6SubnetMax: 'fd00:10:244:0:ffff::',
      }),
    );
    expect(config.ipv6).toEqual({
      network: v6('fd00:10:244::/48'),
      subnetLen: 80,
      subnetMin: v6('fd00:10:244:0:1::/80'),
      subnetMax: v6('fd00:10:244:0:ffff::/80'),
    });
  });

  it('leaves the IPv4 part exactly as without dual stack', () => {
    const { ipv6, ...ipv4 } = parseNetworkConfig(dual());
    expect(ipv6).toBeDefined();
    expect(ipv4).toEqual(parseNetworkConfig({ Network: '10.244.0.0/16', Backend: AWS_VPC }));
  });

  it('has no ipv6 part without EnableIPv6, or with "EnableIPv6": false alone', () => {
    expect(parseNetworkConfig({ Network: '10.244.0.0/16', Backend: AWS_VPC })).not.toHaveProperty('ipv6');
    expect(
      parseNetworkConfig({ Network: '10.244.0.0/16', Backend: AWS_VPC, EnableIPv6: false }),
    ).not.toHaveProperty('ipv6');
  });
});

describe('parseNetworkConfig: dual-stack refusals (400, naming the field)', () => {
  it.each([
    ['"true"', 'true'],
    ['1', 1],
    ['null', null],
    ['an object', {}],
  ])('refuses EnableIPv6 %s', (_label, value) => {
    expectRefused(dual({ EnableIPv6: value }), 'EnableIPv6', 'true or false');
  });

  it.each(['IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax'])(
    'refuses %s without "EnableIPv6": true rather than ignoring it',
    (field) => {
      const value = dual()[field as keyof ReturnType<typeof dual>] ?? 64;
      for (const enable of [false, undefined]) {
        const input: Record<string, unknown> = { Network: '10.244.0.0/16', Backend: AWS_VPC, [field]: value };
        if (enable !== undefined) input.EnableIPv6 = enable;
        expectRefused(input, field, 'only to a dual-stack network', '"EnableIPv6": true');
      }
    },
  );

  it('requires IPv6Network with EnableIPv6', () => {
    expectRefused(
      { Network: '10.244.0.0/16', Backend: AWS_VPC, EnableIPv6: true },
      'IPv6Network',
      'required',
    );
  });

  it.each([
    ['fd00:10:244::', 'is not a CIDR'],
    ['fd00:10:244::1/56', 'host bits set', 'did you mean fd00:10:244::/56?'],
    ['fd00:10:244::/129', 'invalid prefix length'],
    ['fd00:10:244:::/56', 'is not an IPv6 address'],
    ['10.244.0.0/16', 'is not an IPv6 address'],
    ['fe80::1%eth0/64', 'is not an IPv6 address'],
    ['', 'is not a CIDR'],
  ])('refuses the IPv6Network %j (%s)', (network, ...fragments) => {
    expectRefused(dual({ IPv6Network: network }), 'IPv6Network', ...fragments);
  });

  it.each([42, null, ['fd00::/8'], { cidr: 'fd00::/8' }, true])(
    'refuses the non-string IPv6Network %j',
    (value) => {
      expectRefused(dual({ IPv6Network: value }), 'IPv6Network', 'as a string');
    },
  );

  it.each([
    ['2001:db8::/32', 'documentation'],
    ['2600:1f18:abc:de00::/56', 'an AWS global prefix'],
    ['::/0', 'everything'],
    ['::ffff:0:0/96', 'IPv4-mapped'],
    ['fe80::/64', 'link-local'],
    ['ff00::/8', 'multicast'],
    ['fc00::/6', 'a supernet of the unique local range'],
  ])('refuses %s (%s) as not a unique local range', (network) => {
    expectRefused(dual({ IPv6Network: network }), 'IPv6Network', 'unique local', 'fc00::/7');
  });

  it('accepts the whole unique local range fc00::/7, both halves', () => {
    expect(parseNetworkConfig(dual({ IPv6Network: 'fc00:1::/56' })).ipv6?.network).toEqual(v6('fc00:1::/56'));
    expect(parseNetworkConfig(dual({ IPv6Network: 'fc00::/7' })).ipv6?.network).toEqual(v6('fc00::/7'));
  });

  it('refuses an IPv6Network smaller than a /124, as flannel', () => {
    const ipv4 = { SubnetMin: '10.244.1.0', SubnetMax: '10.244.1.0' };
    expectRefused(dual({ IPv6Network: 'fd00::/125', ...ipv4 }), 'IPv6Network', 'too small', '/124');
    expect(parseNetworkConfig(dual({ IPv6Network: 'fd00::/124', ...ipv4 })).ipv6?.subnetLen).toBe(126);
  });

  it.each<[number, string[]]>([
    [127, ['at most 126']],
    [128, ['at most 126']],
    [57, ['fewer than four subnets', 'at least 58']],
    [1, ['fewer than four subnets']],
    [-64, ['fewer than four subnets']],
  ])('refuses IPv6SubnetLen %i', (subnetLen, fragments) => {
    expectRefused(dual({ IPv6SubnetLen: subnetLen }), 'IPv6SubnetLen', ...fragments);
  });

  it.each([64.5, '64', null, true, [64]])('refuses the non-integer IPv6SubnetLen %j', (value) => {
    expectRefused(dual({ IPv6SubnetLen: value }), 'IPv6SubnetLen', 'must be an integer');
  });

  it.each(['IPv6SubnetMin', 'IPv6SubnetMax'])(
    '%s: refuses a misaligned address, naming the aligned one',
    (field) => {
      expectRefused(
        dual({ [field]: 'fd00:10:244:7::1' }),
        field,
        'not on a /64 boundary',
        'use fd00:10:244:7::',
      );
    },
  );

  it.each(['IPv6SubnetMin', 'IPv6SubnetMax'])('%s: refuses an address outside IPv6Network', (field) => {
    expectRefused(dual({ [field]: 'fd00:10:245::' }), field, 'not inside IPv6Network fd00:10:244::/56');
  });

  it.each([
    ['10.244.1.0', 'is not an IPv6 address'],
    ['fd00:10:244:1::/64', 'is not an IPv6 address'],
    ['fd00:10:244:1:::', 'is not an IPv6 address'],
    ['', 'is not an IPv6 address'],
  ])('refuses the IPv6 bound %j', (value, fragment) => {
    expectRefused(dual({ IPv6SubnetMin: value }), 'IPv6SubnetMin', fragment);
    expectRefused(dual({ IPv6SubnetMax: value }), 'IPv6SubnetMax', fragment);
  });

  it.each([0, null, ['fd00:10:244:1::']])('refuses the non-string IPv6 bound %j', (value) => {
    expectRefused(dual({ IPv6SubnetMin: value }), 'IPv6SubnetMin', 'as a string');
  });

  it('refuses an empty IPv6 range', () => {
    expectRefused(
      dual({ IPv6SubnetMin: 'fd00:10:244:20::', IPv6SubnetMax: 'fd00:10:244:10::' }),
      'IPv6SubnetMin',
      'above IPv6SubnetMax',
      'empty',
    );
  });

  it('refuses an IPv6 range smaller than the IPv4 range, saying both sizes and why', () => {
    // 10.244.0.0/16: 255 /24s from the second; fd00:10:244::/60: 15 /64s from the second
    expectRefused(
      dual({ IPv6Network: 'fd00:10:244::/60' }),
      'IPv6SubnetMin..IPv6SubnetMax',
      'holds 15 /64 subnet(s), fewer than the 255 IPv4 subnets',
      'pairs IPv4 subnet i with IPv6 subnet i',
    );
    expectRefused(dual({ IPv6SubnetMax: 'fd00:10:244:fe::' }), 'IPv6SubnetMin..IPv6SubnetMax', '254', '255');
  });

  it('accepts an IPv6 range exactly as large as the IPv4 range, or a narrower IPv4 range', () => {
    expect(parseNetworkConfig(dual()).ipv6?.subnetMax).toEqual(v6('fd00:10:244:ff::/64'));
    const narrow = parseNetworkConfig(
      dual({ IPv6Network: 'fd00:10:244::/60', SubnetMin: '10.244.1.0', SubnetMax: '10.244.15.0' }),
    );
    expect(leasableCount(narrow)).toBe(15);
    expect(narrow.ipv6?.subnetMax).toEqual(v6('fd00:10:244:f::/64'));
  });

  it('still refuses IPv6 only (EnableIPv4 false)', () => {
    expectRefused(dual({ EnableIPv4: false }), 'EnableIPv4');
  });

  it('names the field at fault when any one IPv6 field of a valid dual-stack config is replaced by any JSON value', () => {
    const fields = ['EnableIPv6', 'IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax'] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.oneof(
          fc.jsonValue(),
          fc.boolean(),
          fc.integer({ min: -5, max: 140 }),
          fc.constantFrom(
            'fd00:10:244:7::',
            'fd00:10:244:7::1',
            '::',
            'fd00::/8',
            'fd00:10:245::',
            '10.244.1.0',
          ),
        ),
        (field, value) => {
          try {
            parseNetworkConfig({ ...dual(), [field]: value });
          } catch (error) {
            expect(error).toBeInstanceOf(ValidationError);
            expect((error as Error).message).toContain(field);
          }
        },
      ),
    );
  });

  it('answers any IPv6 text in any IPv6 field with a config or a ValidationError, never anything else', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.array(fc.constantFrom(...'0123456789abcdefABCDEF:./%'), { maxLength: 50 }).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(fc.constantFrom('IPv6Network', 'IPv6SubnetMin', 'IPv6SubnetMax'), text, (field, value) => {
        try {
          parseNetworkConfig({ ...dual(), [field]: value });
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      }),
    );
  });
});

describe('toFlannelJson in dual stack', () => {
  it('publishes the IPv6 fields with every default filled in, in canonical form', () => {
    expect(toFlannelJson(parseNetworkConfig(dual({ IPv6Network: 'FD00:10:244:0::/56' })))).toEqual({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.244.1.0',
      SubnetMax: '10.244.255.0',
      Backend: { Type: 'aws-vpc', RouteLimit: 50 },
      EnableIPv6: true,
      IPv6Network: 'fd00:10:244::/56',
      IPv6SubnetLen: 64,
      IPv6SubnetMin: 'fd00:10:244:1::',
      IPv6SubnetMax: 'fd00:10:244:ff::',
    });
  });

  it('publishes no IPv6 field for an IPv4-only config', () => {
    const json = toFlannelJson(
      parseNetworkConfig({ Network: '10.244.0.0/16', Backend: AWS_VPC, EnableIPv6: false }),
    );
    expect(Object.keys(json).filter((k) => k.includes('IPv6'))).toEqual([]);
  });

  it('re-parses to the same config, through JSON text as it is stored', () => {
    fc.assert(
      fc.property(dualStackInput, (input) => {
        const config = parseNetworkConfig(input);
        const published = JSON.parse(JSON.stringify(toFlannelJson(config)));
        expect(parseNetworkConfig(published)).toEqual(config);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * Valid dual-stack inputs: any private IPv4 network (inside 10.0.0.0/8) and SubnetLen with a random IPv4 range, and a
 * unique local IPv6 network whose range (from the second subnet) holds at least as many subnets.
 */
const dualStackInput = fc
  .record({
    prefix: fc.integer({ min: 8, max: 26 }),
    v4Address: fc.bigInt({ min: 0x0a00_0000n, max: 0x0aff_ffffn }),
    extra: fc.integer({ min: 2, max: 6 }),
    v6Address: fc.bigInt({ min: 0n, max: (1n << 121n) - 1n }),
    v6Extra: fc.integer({ min: 0, max: 8 }),
    first: fc.nat(),
    last: fc.nat(),
  })
  .map(({ prefix, v4Address, extra, v6Address, v6Extra, first, last }) => {
    const network = cidrOf(4, v4Address, prefix);
    const subnetLen = Math.min(30, Math.max(prefix + 2, extra + prefix));
    const slots = 1 << (subnetLen - prefix);
    const lo = 1 + (first % Math.min(slots - 1, 64));
    const hi = Math.max(lo, slots - 1 - (last % Math.min(slots - 1, 64)));
    const count = hi - lo + 1;
    // smallest IPv6 subnet count 2^k - 1 >= count, then some more
    let bits = 2;
    while ((1 << bits) - 1 < count) bits++;
    bits += v6Extra % 3;
    const v6Prefix = Math.max(7, 64 - bits);
    const v6Network = cidrOf(6, (0xfdn << 120n) | v6Address, v6Prefix);
    return {
      Network: formatCidr(network),
      SubnetLen: subnetLen,
      SubnetMin: formatIp(4, nthSubnet(4, network.base, subnetLen, lo).base),
      SubnetMax: formatIp(4, nthSubnet(4, network.base, subnetLen, hi).base),
      Backend: AWS_VPC,
      EnableIPv6: true,
      IPv6Network: formatCidr(v6Network),
    };
  });

describe('pairing: IPv4 subnet i <-> IPv6 subnet i', () => {
  const config = parseNetworkConfig(dual());

  it('pairs the n-th IPv4 subnet with the n-th IPv6 subnet, from the mins', () => {
    expect(pairedIpv6Subnet(config, v4('10.244.1.0/24'))).toEqual(v6('fd00:10:244:1::/64'));
    expect(pairedIpv6Subnet(config, v4('10.244.7.0/24'))).toEqual(v6('fd00:10:244:7::/64'));
    expect(pairedIpv6Subnet(config, v4('10.244.255.0/24'))).toEqual(v6('fd00:10:244:ff::/64'));
    expect(pairedIpv4Subnet(config, v6('fd00:10:244:7::/64'))).toEqual(v4('10.244.7.0/24'));
  });

  it('pairs by index, not by address, when the mins differ', () => {
    const shifted = parseNetworkConfig(
      dual({ SubnetMin: '10.244.100.0', SubnetMax: '10.244.101.0', IPv6SubnetMin: 'fd00:10:244:20::' }),
    );
    expect(pairedIpv6Subnet(shifted, v4('10.244.100.0/24'))).toEqual(v6('fd00:10:244:20::/64'));
    expect(pairedIpv6Subnet(shifted, v4('10.244.101.0/24'))).toEqual(v6('fd00:10:244:21::/64'));
  });

  it('has no IPv6 partner in an IPv4-only config', () => {
    const ipv4Only = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: AWS_VPC });
    expect(pairedIpv6Subnet(ipv4Only, v4('10.244.7.0/24'))).toBeUndefined();
    expect(isLeasableIpv6(ipv4Only, v6('fd00:10:244:7::/64'))).toBe(false);
  });

  it('refuses to pair a subnet that is not leasable', () => {
    expect(() => pairedIpv6Subnet(config, v4('10.244.0.0/24'))).toThrow(RangeError);
    expect(() => pairedIpv6Subnet(config, v4('10.244.7.0/25'))).toThrow(RangeError);
    expect(() => pairedIpv4Subnet(config, v6('fd00:10:244::/64'))).toThrow(RangeError);
  });

  it('counts as leasable only IPv6 subnets that have an IPv4 partner', () => {
    const wide = parseNetworkConfig(dual({ SubnetMin: '10.244.1.0', SubnetMax: '10.244.2.0' }));
    expect(isLeasableIpv6(wide, v6('fd00:10:244:1::/64'))).toBe(true);
    expect(isLeasableIpv6(wide, v6('fd00:10:244:2::/64'))).toBe(true);
    // inside IPv6SubnetMin..IPv6SubnetMax, but IPv4 has only two subnets
    expect(isLeasableIpv6(wide, v6('fd00:10:244:3::/64'))).toBe(false);
    expect(isLeasableIpv6(wide, v6('fd00:10:244::/64'))).toBe(false);
    expect(isLeasableIpv6(wide, v6('fd00:10:244:1::/80'))).toBe(false);
    expect(isLeasableIpv6(wide, v6('fd00:10:245:1::/64'))).toBe(false);
    expect(isLeasableIpv6(wide, v4('10.244.1.0/24'))).toBe(false);
  });

  it('is a bijection between the leasable IPv4 subnets and the leasable IPv6 subnets, keeping order', () => {
    fc.assert(
      fc.property(
        dualStackInput.chain((input) => {
          const parsed = parseNetworkConfig(input);
          const n = leasableCount(parsed);
          return fc.record({
            config: fc.constant(parsed),
            i: fc.integer({ min: 0, max: n - 1 }),
            j: fc.integer({ min: 0, max: n - 1 }),
          });
        }),
        ({ config: c, i, j }) => {
          const a = leasableSubnet(c, i);
          const b = leasableSubnet(c, j);
          const a6 = pairedIpv6Subnet(c, a)!;
          const b6 = pairedIpv6Subnet(c, b)!;
          expect(isLeasableIpv6(c, a6)).toBe(true);
          expect(a6.prefix).toBe(c.ipv6!.subnetLen);
          expect(pairedIpv4Subnet(c, a6)).toEqual(a);
          expect(a6.base - c.ipv6!.subnetMin.base).toBe(BigInt(i) << BigInt(128 - c.ipv6!.subnetLen));
          expect(a6.base < b6.base).toBe(i < j);
          expect(a6.base === b6.base).toBe(i === j);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('maps every leasable IPv6 subnet back to a leasable IPv4 subnet and again to itself', () => {
    fc.assert(
      fc.property(
        dualStackInput.chain((input) => {
          const parsed = parseNetworkConfig(input);
          const v6cfg = parsed.ipv6!;
          const range = Number(
            (v6cfg.subnetMax.base - v6cfg.subnetMin.base) >> BigInt(128 - v6cfg.subnetLen),
          );
          return fc.record({
            config: fc.constant(parsed),
            k: fc.integer({ min: 0, max: Math.min(range, 2 ** 30) }),
          });
        }),
        ({ config: c, k }) => {
          const subnet = nthSubnet(6, c.ipv6!.subnetMin.base, c.ipv6!.subnetLen, k);
          expect(isLeasableIpv6(c, subnet)).toBe(k < leasableCount(c));
          if (k < leasableCount(c)) {
            const partner = pairedIpv4Subnet(c, subnet);
            expect(isLeasable(c, partner)).toBe(true);
            expect(pairedIpv6Subnet(c, partner)).toEqual(subnet);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('checks at publish time', () => {
  const config: NetworkConfig = parseNetworkConfig(dual());

  it('refuses an IPv6Network that overlaps an IPv6 block of the VPC, naming the block and the VPC', () => {
    for (const block of ['fd00:10:244:80::/57', 'fd00:10::/32', 'fd00:10:244:ff::/64']) {
      const error = (() => {
        try {
          refuseIpv6VpcOverlap(config, ['2600:1f18:abc:de00::/56', block], 'vpc-0123456789abcdef0');
        } catch (e) {
          return e as ValidationError;
        }
        throw new Error(`expected an overlap with ${block}`);
      })();
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toContain(`IPv6Network fd00:10:244::/56 overlaps ${block}`);
      expect(error.message).toContain('vpc-0123456789abcdef0');
    }
  });

  it('accepts an IPv6Network clear of every VPC block, and ignores VPC blocks in an IPv4-only config', () => {
    expect(() =>
      refuseIpv6VpcOverlap(config, ['2600:1f18:abc:de00::/56', 'fd00:10:245::/56'], 'vpc-1'),
    ).not.toThrow();
    const ipv4Only = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: AWS_VPC });
    expect(() => refuseIpv6VpcOverlap(ipv4Only, ['fd00::/8'], 'vpc-1')).not.toThrow();
  });
});

describe('flannel compatibility of the IPv6 text', () => {
  it('reads IPv6SubnetMin as flannel writes it back (Go net.IP.String)', () => {
    const config = parseNetworkConfig(
      dual({ IPv6SubnetMin: 'fd00:10:244:10::', SubnetMin: '10.244.1.0', SubnetMax: '10.244.10.0' }),
    );
    expect(formatIp(6, config.ipv6!.subnetMin.base)).toBe('fd00:10:244:10::');
    expect(parseIpv6(toFlannelJson(config).IPv6SubnetMin!).value).toBe(config.ipv6!.subnetMin.base);
  });
});

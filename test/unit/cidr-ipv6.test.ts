import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Cidr,
  CidrError,
  cidrOf,
  contains,
  containsIp,
  firstHostWithPrefix,
  formatCidr,
  formatIp,
  lastAddress,
  nthSubnet,
  overlaps,
  parseCidr,
  parseCidrOf,
  parseIp,
  parseIpOf,
  parseIpv6,
  parseIpv6Cidr,
  size,
  subnetCountExact,
  subnetIndex,
  subnetIndexExact,
} from '../../shared/cidr.js';

const MAX = (1n << 128n) - 1n;
/** 16-bit groups, zero half of the time, so that runs of zero groups (the `::` cases) are common. */
const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
const groups = fc.array(group, { minLength: 8, maxLength: 8 });
const groupsValue = (gs: readonly number[]): bigint => gs.reduce((v, g) => (v << 16n) | BigInt(g), 0n);
const ipv6Value = fc.oneof(groups.map(groupsValue), fc.bigInt({ min: 0n, max: MAX }));
const prefixLength = fc.integer({ min: 0, max: 128 });
const ipv6Cidr: fc.Arbitrary<Cidr> = fc
  .tuple(ipv6Value, prefixLength)
  .map(([address, prefix]) => cidrOf(6, address, prefix));

const v6 = (text: string): bigint => parseIpv6(text).value;
const cidr = (text: string): Cidr => parseIpv6Cidr(text);

/** What the WHATWG URL parser (Node's own, independent of ours) prints for an IPv6 host. */
const whatwg = (text: string): string => new URL(`http://[${text}]`).hostname.slice(1, -1);

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to throw');
}

describe('parseIpv6', () => {
  it('reads the full, the compressed and the mixed forms into one 128-bit number', () => {
    expect(parseIpv6('fd00:0010:0244:0007:0000:0000:0000:0001')).toEqual({
      family: 6,
      value: 0xfd00_0010_0244_0007_0000_0000_0000_0001n,
    });
    expect(v6('fd00:10:244:7::1')).toBe(0xfd00_0010_0244_0007_0000_0000_0000_0001n);
    expect(v6('FD00:10:244:7::1')).toBe(0xfd00_0010_0244_0007_0000_0000_0000_0001n);
    expect(v6('::')).toBe(0n);
    expect(v6('::1')).toBe(1n);
    expect(v6('1::')).toBe(1n << 112n);
    expect(v6('1:2:3:4:5:6:7::')).toBe(0x0001_0002_0003_0004_0005_0006_0007_0000n);
    expect(v6('::ffff:10.0.0.1')).toBe(0xffff_0a00_0001n);
    expect(v6('64:ff9b::192.0.2.33')).toBe(0x0064_ff9b_0000_0000_0000_0000_c000_0221n);
    expect(v6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(MAX);
  });

  it.each([
    ['', 'the empty string'],
    [':', 'a lone colon'],
    [':::', 'three colons'],
    ['1::2::3', 'two "::"'],
    ['1:2:3:4:5:6:7:8::', 'a "::" standing for no group'],
    ['1:2:3:4:5:6:7::8', 'a "::" beside eight groups'],
    ['1:2:3:4:5:6:7', 'seven groups'],
    ['1:2:3:4:5:6:7:8:9', 'nine groups'],
    [':1:2:3:4:5:6:7', 'a leading single colon'],
    ['1:2:3:4:5:6:7:', 'a trailing single colon'],
    ['12345::', 'a five-digit group'],
    ['g::', 'a non-hex digit'],
    ['fe80::1%eth0', 'a zone id'],
    [' ::1', 'leading whitespace'],
    ['::1 ', 'trailing whitespace'],
    ['[::1]', 'brackets'],
    ['::1/128', 'a prefix'],
    ['1.2.3.4::', 'a dotted quad before "::"'],
    ['::1.2.3.4:1', 'a dotted quad before the last group'],
    ['::01.2.3.4', 'a dotted quad with a leading zero'],
    ['::256.0.0.1', 'a dotted quad octet above 255'],
    ['1:2:3:4:5:6:7:1.2.3.4', 'a dotted quad after seven groups'],
    ['10.0.0.1', 'an IPv4 address'],
    ['+1::', 'a sign'],
  ])('refuses %j: %s', (text) => {
    const error = errorOf(() => parseIpv6(text));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain('is not an IPv6 address');
  });

  it('refuses a non-string', () => {
    expect(() => parseIpv6(1 as unknown as string)).toThrow(new CidrError('an IP address must be a string'));
    expect(() => parseIpv6(undefined as unknown as string)).toThrow(CidrError);
  });

  it('quotes a long bad input truncated, not whole', () => {
    const error = errorOf(() => parseIpv6(`${'1:'.repeat(5000)}1`));
    expect(error.message.length).toBeLessThan(200);
    expect(error.message).toContain('...');
  });

  it("accepts exactly the strings Node's own IPv6 check accepts (on strings of address characters)", () => {
    const piece = fc.constantFrom(
      '',
      ':',
      '::',
      '0',
      '00',
      '0000',
      '1',
      'a',
      'FfFf',
      'abcd',
      '12345',
      'g',
      '.',
      '1.2.3.4',
      '255.255.255.255',
      '01.2.3.4',
      '256.0.0.1',
    );
    const pieces = fc.array(piece, { maxLength: 12 }).map((a) => a.join(''));
    const characters = fc
      .array(fc.constantFrom(...'0123456789abcdefABCDEF:.'), { maxLength: 45 })
      .map((a) => a.join(''));
    fc.assert(
      fc.property(fc.oneof(pieces, characters), (text) => {
        let accepted = true;
        try {
          parseIpv6(text);
        } catch {
          accepted = false;
        }
        expect(accepted).toBe(isIPv6(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads every spelling of an address (padding, case, any zero run as "::", a dotted tail) as that address', () => {
    const spelling = fc.record({
      gs: groups,
      pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      upper: fc.boolean(),
      compress: fc.nat(),
      dottedTail: fc.boolean(),
    });
    fc.assert(
      fc.property(spelling, ({ gs, pad, upper, compress, dottedTail }) => {
        const hex = gs.map((g, i) => {
          const digits = g.toString(16);
          const padded = digits.padStart(Math.min(4, digits.length + pad[i]!), '0');
          return upper ? padded.toUpperCase() : padded;
        });
        const parts: string[] = [...hex];
        if (dottedTail) {
          const v4 = (gs[6]! << 16) + gs[7]!;
          parts.splice(6, 2, [24, 16, 8, 0].map((s) => (v4 >>> s) & 0xff).join('.'));
        }
        // every run of zero groups that "::" may stand for (at least one group, not the dotted tail)
        const runs: [number, number][] = [];
        for (let start = 0; start < 8; start++) {
          for (let end = start + 1; end <= (dottedTail ? 6 : 8) && gs[end - 1] === 0; end++)
            runs.push([start, end]);
        }
        let text = parts.join(':');
        if (runs.length > 0) {
          // parts[i] is group i up to 6 (the dotted tail, when there is one, is parts[6])
          const [start, end] = runs[compress % runs.length]!;
          text = `${parts.slice(0, start).join(':')}::${parts.slice(end).join(':')}`;
        }
        expect(parseIpv6(text).value).toBe(groupsValue(gs));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('formatIp for IPv6 (RFC 5952, as Go net.IP.String() that flanneld writes with)', () => {
  it.each([
    [0n, '::'],
    [1n, '::1'],
    [1n << 112n, '1::'],
    [0xfd00_0010_0244_0007_0000_0000_0000_0001n, 'fd00:10:244:7::1'],
    // the longest zero run is shortened, not the first
    [0x2001_0db8_0000_0001_0000_0000_0000_0001n, '2001:db8:0:1::1'],
    // of two equal runs, the first
    [0x2001_0db8_0000_0000_0001_0000_0000_0001n, '2001:db8::1:0:0:1'],
    // a single zero group is written 0, never ::
    [0x2001_0db8_0000_0001_0001_0001_0001_0001n, '2001:db8:0:1:1:1:1:1'],
    [0x0001_0002_0003_0004_0005_0006_0007_0000n, '1:2:3:4:5:6:7:0'],
    [MAX, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // IPv4-mapped stays hex, so that it parses back as IPv6 (Go would print 10.0.0.1)
    [0xffff_0a00_0001n, '::ffff:a00:1'],
  ])('prints %s as %s', (value, text) => {
    expect(formatIp(6, value)).toBe(text);
  });

  it('prints every address as the WHATWG URL serializer does (same canonical form)', () => {
    fc.assert(
      fc.property(ipv6Value, (value) => {
        const text = formatIp(6, value);
        expect(text).toBe(whatwg(text));
        expect(text).toBe(whatwg(formatIp6Full(value)));
      }),
      { numRuns: 3000 },
    );
  });

  it('parses back every address it prints, and prints it again unchanged', () => {
    fc.assert(
      fc.property(ipv6Value, (value) => {
        const text = formatIp(6, value);
        expect(parseIpv6(text)).toEqual({ family: 6, value });
        expect(formatIp(6, parseIpv6(text).value)).toBe(text);
      }),
      { numRuns: 3000 },
    );
  });
});

/** The uncompressed form, written independently of formatIp, for the oracle above. */
function formatIp6Full(value: bigint): string {
  return value.toString(16).padStart(32, '0').match(/.{4}/g)!.join(':');
}

describe('parseIpv6Cidr and parseCidrOf', () => {
  it('reads address/prefix into a network address and a prefix length', () => {
    expect(parseIpv6Cidr('fd00:10:244::/56')).toEqual({
      family: 6,
      base: 0xfd00_0010_0244_0000_0000_0000_0000_0000n,
      prefix: 56,
    });
    expect(parseIpv6Cidr('::/0')).toEqual({ family: 6, base: 0n, prefix: 0 });
    expect(parseIpv6Cidr('::1/128')).toEqual({ family: 6, base: 1n, prefix: 128 });
    expect(parseCidrOf(6, 'fd00::/8')).toEqual(parseIpv6Cidr('fd00::/8'));
    expect(parseCidrOf(4, '10.244.0.0/16')).toEqual(parseCidr('10.244.0.0/16'));
  });

  it('refuses host bits and suggests the network, in canonical form', () => {
    const error = errorOf(() => parseIpv6Cidr('fd00:10:244:7::1/64'));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain('host bits set; did you mean fd00:10:244:7::/64?');
  });

  it.each([
    ['fd00::', 'not a CIDR'],
    ['fd00::/', 'invalid prefix length'],
    ['fd00::/129', 'invalid prefix length'],
    ['fd00::/064', 'invalid prefix length'],
    ['fd00::/-1', 'invalid prefix length'],
    ['fd00::/ffff:ff00::', 'invalid prefix length'],
    ['fd00::/64 ', 'invalid prefix length'],
    ['fd00:::/64', 'is not an IPv6 address'],
    ['10.244.0.0/16', 'is not an IPv6 address'],
    ['/64', 'is not an IPv6 address'],
  ])('refuses %j (%s)', (text, reason) => {
    const error = errorOf(() => parseIpv6Cidr(text));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain(reason);
  });

  it('keeps the IPv4 readers IPv4-only (a host privateIp, the Network)', () => {
    expect(() => parseIp('fd00::1')).toThrow('is not an IPv4 address');
    expect(() => parseCidr('fd00::/8')).toThrow('is not an IPv4 address');
    expect(() => parseIpOf(4, 'fd00::1')).toThrow('is not an IPv4 address');
    expect(parseIpOf(6, 'fd00::1')).toEqual(parseIpv6('fd00::1'));
  });

  it('parses back every network it prints, for every prefix length', () => {
    fc.assert(
      fc.property(ipv6Cidr, (network) => {
        expect(parseIpv6Cidr(formatCidr(network))).toEqual(network);
      }),
    );
  });
});

describe('IPv6 networks: size, containment, overlap', () => {
  it('counts addresses and finds the last one', () => {
    expect(size(cidr('fd00:10:244::/56'))).toBe(1n << 72n);
    expect(size(cidr('::/0'))).toBe(1n << 128n);
    expect(formatIp(6, lastAddress(cidr('fd00:10:244::/56')))).toBe('fd00:10:244:ff:ffff:ffff:ffff:ffff');
    expect(lastAddress(cidr('::/0'))).toBe(MAX);
  });

  it('contains a network in its supernets, not the other way round, and never across families', () => {
    expect(contains(cidr('fd00:10:244::/56'), cidr('fd00:10:244:7::/64'))).toBe(true);
    expect(contains(cidr('fd00:10:244::/56'), cidr('fd00:10:244:ff::/64'))).toBe(true);
    expect(contains(cidr('fd00:10:244::/56'), cidr('fd00:10:244:100::/64'))).toBe(false);
    expect(contains(cidr('fd00:10:244:7::/64'), cidr('fd00:10:244::/56'))).toBe(false);
    // 10.244.0.0 and ::af4:0 are the same number; they are not the same network
    expect(overlaps(parseCidr('10.244.0.0/16'), cidrOf(6, 0x0af4_0000n, 112))).toBe(false);
    expect(contains(cidr('::/0'), parseCidr('0.0.0.0/0'))).toBe(false);
    expect(containsIp(cidr('::/0'), 4, 0n)).toBe(false);
  });

  it('tells neighbours apart', () => {
    expect(overlaps(cidr('fd00:10:244::/56'), cidr('fd00:10:244:100::/56'))).toBe(false);
    expect(overlaps(cidr('fd00:10:244::/56'), cidr('fd00:10:243:ff00::/56'))).toBe(false);
    expect(overlaps(cidr('fd00::/8'), cidr('fd00:10:244::/56'))).toBe(true);
    expect(containsIp(cidr('fd00:10:244::/56'), 6, v6('fd00:10:244:ff:ffff:ffff:ffff:ffff'))).toBe(true);
    expect(containsIp(cidr('fd00:10:244::/56'), 6, v6('fd00:10:244:100::'))).toBe(false);
  });

  it('overlaps symmetrically', () => {
    fc.assert(
      fc.property(ipv6Cidr, ipv6Cidr, (a, b) => {
        expect(overlaps(a, b)).toBe(overlaps(b, a));
      }),
    );
  });

  it('lets two networks overlap only when one contains the other', () => {
    fc.assert(
      fc.property(ipv6Cidr, ipv6Cidr, (a, b) => {
        expect(overlaps(a, b)).toBe(contains(a, b) || contains(b, a));
      }),
    );
  });

  it('overlaps a network with each of its subnets and with nothing after its last address', () => {
    fc.assert(
      fc.property(ipv6Cidr, prefixLength, ipv6Value, (outer, extra, address) => {
        const inner = cidrOf(6, outer.base | (address & (size(outer) - 1n)), Math.max(outer.prefix, extra));
        expect(contains(outer, inner)).toBe(true);
        expect(overlaps(outer, inner)).toBe(true);
        if (lastAddress(outer) < MAX) {
          const next = cidrOf(6, lastAddress(outer) + 1n, outer.prefix);
          expect(overlaps(outer, next)).toBe(false);
        }
      }),
    );
  });
});

describe('IPv6 subnet enumeration', () => {
  it('steps through /64s of a /56 from the second one, as flannel defaults IPv6SubnetMin', () => {
    const min = v6('fd00:10:244:1::');
    expect(formatCidr(nthSubnet(6, min, 64, 0))).toBe('fd00:10:244:1::/64');
    expect(formatCidr(nthSubnet(6, min, 64, 6))).toBe('fd00:10:244:7::/64');
    expect(formatCidr(nthSubnet(6, min, 64, 254))).toBe('fd00:10:244:ff::/64');
    expect(subnetIndex(min, cidr('fd00:10:244:7::/64'))).toBe(6);
    expect(subnetCountExact(min, v6('fd00:10:244:ff::'), 64, 6)).toBe(255n);
  });

  it('counts beyond 2^53 subnets exactly', () => {
    const network = cidr('fd00::/8');
    expect(subnetCountExact(network.base, lastAddress(network) - (1n << 64n) + 1n, 64, 6)).toBe(1n << 56n);
    const far = nthSubnet(6, network.base, 64, (1n << 56n) - 1n);
    expect(formatCidr(far)).toBe('fdff:ffff:ffff:ffff::/64');
    expect(subnetIndexExact(network.base, far)).toBe((1n << 56n) - 1n);
  });

  it('finds the index of the n-th subnet again (subnetIndexExact inverts nthSubnet)', () => {
    const scenario = fc.integer({ min: 0, max: 128 }).chain((subnetLen) => {
      const slots = 1n << BigInt(subnetLen);
      return fc.bigInt({ min: 0n, max: slots - 1n }).chain((first) =>
        fc.record({
          subnetLen: fc.constant(subnetLen),
          min: fc.constant(first << BigInt(128 - subnetLen)),
          index: fc.bigInt({ min: 0n, max: slots - 1n - first }),
        }),
      );
    });
    fc.assert(
      fc.property(scenario, ({ subnetLen, min, index }) => {
        const subnet = nthSubnet(6, min, subnetLen, index);
        expect(subnet.prefix).toBe(subnetLen);
        expect(parseIpv6Cidr(formatCidr(subnet))).toEqual(subnet);
        expect(subnetIndexExact(min, subnet)).toBe(index);
        expect(subnetCountExact(min, subnet.base, subnetLen, 6)).toBe(index + 1n);
      }),
    );
  });

  it('writes the first host address with the prefix, as flanneld writes FLANNEL_IPV6_SUBNET', () => {
    expect(firstHostWithPrefix(cidr('fd00:10:244:7::/64'))).toBe('fd00:10:244:7::1/64');
    expect(firstHostWithPrefix(cidr('fd00:10:244::/64'))).toBe('fd00:10:244::1/64');
    expect(firstHostWithPrefix(cidr('2600:1f18:abc:de00::/120'))).toBe('2600:1f18:abc:de00::1/120');
  });
});

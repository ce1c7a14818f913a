import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Cidr,
  CidrError,
  cidrOf,
  compareSubnets,
  contains,
  containsIp,
  equals,
  firstHostWithPrefix,
  formatCidr,
  formatIp,
  isIp,
  lastAddress,
  nthSubnet,
  overlaps,
  parseCidr,
  parseIp,
  parseSubnetKey,
  size,
  subnetCount,
  subnetIndex,
  toSubnetKey,
} from '../../shared/cidr.js';

const ipv4Value = fc.bigInt({ min: 0n, max: 0xffff_ffffn });
const prefixLength = fc.integer({ min: 0, max: 32 });
/** Any IPv4 network: an address with its host bits cleared. */
const ipv4Cidr: fc.Arbitrary<Cidr> = fc
  .tuple(ipv4Value, prefixLength)
  .map(([address, prefix]) => cidrOf(4, address, prefix));

const cidr = (text: string): Cidr => parseCidr(text);
const ip = (text: string): bigint => parseIp(text).value;

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to throw');
}

describe('parseIp', () => {
  it('reads a dotted quad as a 32-bit number', () => {
    expect(parseIp('10.244.7.1')).toEqual({ family: 4, value: 0x0af4_0701n });
    expect(parseIp('0.0.0.0').value).toBe(0n);
    expect(parseIp('255.255.255.255').value).toBe(0xffff_ffffn);
  });

  it.each([
    ['010.0.0.1', 'a leading zero (octal to inet_aton)'],
    ['10.0.0.01', 'a leading zero in the last octet'],
    ['10.00.0.1', 'a doubled zero'],
    ['256.0.0.1', 'an octet above 255'],
    ['10.0.0.1000', 'a four-digit octet'],
    ['10.0.0', 'three octets'],
    ['10.0.0.1.2', 'five octets'],
    ['10..0.1', 'an empty octet'],
    ['10.0.0.', 'a trailing dot'],
    ['.10.0.0.1', 'a leading dot'],
    [' 10.0.0.1', 'leading whitespace'],
    ['10.0.0.1 ', 'trailing whitespace'],
    ['10.0.0.1\n', 'a trailing newline'],
    ['10.0. 0.1', 'inner whitespace'],
    ['+10.0.0.1', 'a sign'],
    ['-1.0.0.1', 'a negative octet'],
    ['0x0a.0.0.1', 'hexadecimal'],
    ['1e1.0.0.1', 'exponent notation'],
    ['10.0.0.1/32', 'a prefix'],
    ['167772161', 'a bare integer'],
    ['١٠.0.0.1', 'non-ASCII digits'],
    ['::1', 'IPv6 (not yet supported)'],
    ['', 'the empty string'],
  ])('refuses %j: %s', (text) => {
    const error = errorOf(() => parseIp(text));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain('is not an IPv4 address');
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 167772161],
    ['a bigint', 167772161n],
    ['an array', ['10.0.0.1']],
    ['an object that prints as an address', { toString: () => '10.0.0.1' }],
  ])('refuses %s', (_label, value) => {
    const error = errorOf(() => parseIp(value as unknown as string));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toBe('an IP address must be a string');
  });

  it('quotes a long bad input truncated, not whole', () => {
    const error = errorOf(() => parseIp('x'.repeat(10_000)));
    expect(error.message.length).toBeLessThan(200);
    expect(error.message).toContain('...');
  });

  it('isIp answers the same question without throwing', () => {
    expect(isIp('10.0.0.1')).toBe(true);
    expect(isIp('10.0.0.01')).toBe(false);
    expect(isIp(42)).toBe(false);
    expect(isIp(undefined)).toBe(false);
  });
});

describe('parseCidr', () => {
  it('reads address/prefix into a network address and a prefix length', () => {
    expect(parseCidr('10.244.0.0/16')).toEqual({ family: 4, base: 0x0af4_0000n, prefix: 16 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ family: 4, base: 0n, prefix: 0 });
    expect(parseCidr('10.244.7.1/32')).toEqual({ family: 4, base: 0x0af4_0701n, prefix: 32 });
  });

  it('refuses host bits instead of rounding, and suggests the network that was probably meant', () => {
    const error = errorOf(() => parseCidr('10.244.7.1/24'));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain('host bits set');
    expect(error.message).toContain('did you mean 10.244.7.0/24?');
  });

  it('suggests the right network for any address with host bits set', () => {
    fc.assert(
      fc.property(ipv4Value, prefixLength, (address, prefix) => {
        const network = cidrOf(4, address, prefix);
        fc.pre(network.base !== address);
        const text = `${formatIp(4, address)}/${prefix}`;
        expect(() => parseCidr(text)).toThrow(`did you mean ${formatCidr(network)}?`);
      }),
    );
  });

  it.each([
    ['10.244.0.0', 'no prefix'],
    ['10.244.0.0/', 'an empty prefix'],
    ['10.244.0.0/33', 'a prefix above 32'],
    ['10.244.0.0/016', 'a prefix with a leading zero'],
    ['10.244.0.0/-1', 'a negative prefix'],
    ['10.244.0.0/+16', 'a signed prefix'],
    ['10.244.0.0/16 ', 'trailing whitespace'],
    ['10.244.0.0 /16', 'whitespace before the slash'],
    ['10.244.0.0/ 16', 'whitespace after the slash'],
    ['10.244.0.0/16/16', 'two prefixes'],
    ['10.244.0.0/255.255.0.0', 'a netmask instead of a length'],
    ['010.244.0.0/16', 'a leading zero in the address'],
    ['10.256.0.0/16', 'an octet out of range'],
    ['/16', 'no address'],
    ['', 'the empty string'],
  ])('refuses %j: %s', (text) => {
    expect(() => parseCidr(text)).toThrow(CidrError);
  });

  it('refuses a non-string', () => {
    expect(() => parseCidr(42 as unknown as string)).toThrow(new CidrError('a CIDR must be a string'));
    expect(() => parseCidr(null as unknown as string)).toThrow(CidrError);
  });
});

describe('formatting', () => {
  it('prints addresses without leading zeros', () => {
    expect(formatIp(4, 0x0a00_0001n)).toBe('10.0.0.1');
    expect(formatIp(4, 0n)).toBe('0.0.0.0');
    expect(formatCidr({ family: 4, base: 0x0af4_0000n, prefix: 16 })).toBe('10.244.0.0/16');
  });

  it('parses back every address it prints', () => {
    fc.assert(
      fc.property(ipv4Value, (value) => {
        expect(parseIp(formatIp(4, value))).toEqual({ family: 4, value });
      }),
    );
  });

  it('parses back every network it prints, for every prefix length', () => {
    fc.assert(
      fc.property(ipv4Cidr, (network) => {
        expect(parseCidr(formatCidr(network))).toEqual(network);
      }),
    );
  });

  it('prints back exactly the text it accepted', () => {
    fc.assert(
      fc.property(ipv4Cidr, (network) => {
        const text = formatCidr(network);
        expect(formatCidr(parseCidr(text))).toBe(text);
      }),
    );
  });
});

describe('cidrOf, size and lastAddress', () => {
  it('clears the host bits of an address', () => {
    expect(cidrOf(4, ip('10.244.7.200'), 24)).toEqual(cidr('10.244.7.0/24'));
    expect(cidrOf(4, ip('255.255.255.255'), 0)).toEqual(cidr('0.0.0.0/0'));
    expect(cidrOf(4, ip('255.255.255.255'), 32)).toEqual(cidr('255.255.255.255/32'));
  });

  it('counts addresses and finds the last one', () => {
    expect(size(cidr('10.244.0.0/16'))).toBe(65_536n);
    expect(size(cidr('0.0.0.0/0'))).toBe(1n << 32n);
    expect(size(cidr('10.0.0.1/32'))).toBe(1n);
    expect(formatIp(4, lastAddress(cidr('10.244.0.0/16')))).toBe('10.244.255.255');
    expect(lastAddress(cidr('0.0.0.0/0'))).toBe(0xffff_ffffn);
  });

  it('places the network of an address around that address', () => {
    fc.assert(
      fc.property(ipv4Value, prefixLength, (address, prefix) => {
        const network = cidrOf(4, address, prefix);
        expect(containsIp(network, 4, address)).toBe(true);
        expect(network.base % size(network)).toBe(0n);
      }),
    );
  });
});

describe('compareSubnets', () => {
  it('orders by address, then the wider prefix first, and calls equal subnets equal', () => {
    const sorted = ['10.244.7.0/24', '10.244.0.0/24', '10.244.0.0/16', '10.2.0.0/16']
      .map(parseCidr)
      .sort(compareSubnets)
      .map(formatCidr);
    expect(sorted).toEqual(['10.2.0.0/16', '10.244.0.0/16', '10.244.0.0/24', '10.244.7.0/24']);
    expect(compareSubnets(parseCidr('10.244.7.0/24'), parseCidr('10.244.7.0/24'))).toBe(0);
  });
});

describe('contains and overlaps', () => {
  it('contains a network in itself and in its supernets, not the other way round', () => {
    expect(contains(cidr('10.244.0.0/16'), cidr('10.244.0.0/16'))).toBe(true);
    expect(contains(cidr('10.244.0.0/16'), cidr('10.244.7.0/24'))).toBe(true);
    expect(contains(cidr('10.244.0.0/16'), cidr('10.244.255.0/24'))).toBe(true);
    expect(contains(cidr('10.244.7.0/24'), cidr('10.244.0.0/16'))).toBe(false);
    expect(contains(cidr('0.0.0.0/0'), cidr('255.255.255.255/32'))).toBe(true);
  });

  it('tells disjoint networks apart, including neighbours', () => {
    expect(contains(cidr('10.244.0.0/16'), cidr('10.245.0.0/24'))).toBe(false);
    expect(overlaps(cidr('10.244.0.0/16'), cidr('10.245.0.0/16'))).toBe(false);
    expect(overlaps(cidr('10.244.0.0/16'), cidr('10.243.255.0/24'))).toBe(false);
    expect(overlaps(cidr('10.244.0.0/16'), cidr('10.244.255.255/32'))).toBe(true);
    expect(overlaps(cidr('10.0.0.0/8'), cidr('10.244.0.0/16'))).toBe(true);
  });

  it('finds an address inside a network up to its last address only', () => {
    const network = cidr('10.244.0.0/16');
    expect(containsIp(network, 4, ip('10.244.0.0'))).toBe(true);
    expect(containsIp(network, 4, ip('10.244.255.255'))).toBe(true);
    expect(containsIp(network, 4, ip('10.245.0.0'))).toBe(false);
    expect(containsIp(network, 4, ip('10.243.255.255'))).toBe(false);
  });

  it('overlaps symmetrically', () => {
    fc.assert(
      fc.property(ipv4Cidr, ipv4Cidr, (a, b) => {
        expect(overlaps(a, b)).toBe(overlaps(b, a));
      }),
    );
  });

  it('overlaps whenever one contains the other', () => {
    fc.assert(
      fc.property(ipv4Cidr, ipv4Cidr, (a, b) => {
        if (contains(a, b)) expect(overlaps(a, b)).toBe(true);
      }),
    );
  });

  it('contains a subnet exactly when the subnet is at least as long and shares the network bits', () => {
    fc.assert(
      fc.property(ipv4Cidr, ipv4Value, prefixLength, (outer, address, prefix) => {
        const inner = cidrOf(4, address, prefix);
        const expected = inner.prefix >= outer.prefix && equals(cidrOf(4, inner.base, outer.prefix), outer);
        expect(contains(outer, inner)).toBe(expected);
      }),
    );
  });

  it('lets two networks overlap only when one contains the other (CIDR blocks nest or are disjoint)', () => {
    fc.assert(
      fc.property(ipv4Cidr, ipv4Cidr, (a, b) => {
        expect(overlaps(a, b)).toBe(contains(a, b) || contains(b, a));
      }),
    );
  });

  it('compares networks by address and length', () => {
    expect(equals(cidr('10.244.0.0/16'), cidr('10.244.0.0/16'))).toBe(true);
    expect(equals(cidr('10.244.0.0/16'), cidr('10.244.0.0/17'))).toBe(false);
    expect(equals(cidr('10.244.0.0/16'), cidr('10.245.0.0/16'))).toBe(false);
  });
});

describe('subnet enumeration', () => {
  it('counts the subnets between two subnet addresses, both included', () => {
    expect(subnetCount(ip('10.244.1.0'), ip('10.244.255.0'), 24, 4)).toBe(255);
    expect(subnetCount(ip('10.244.7.0'), ip('10.244.7.0'), 24, 4)).toBe(1);
    expect(subnetCount(ip('10.0.0.4'), ip('10.0.0.12'), 30, 4)).toBe(3);
  });

  it('steps through subnets of the given length', () => {
    const min = ip('10.244.1.0');
    expect(nthSubnet(4, min, 24, 0)).toEqual(cidr('10.244.1.0/24'));
    expect(nthSubnet(4, min, 24, 6)).toEqual(cidr('10.244.7.0/24'));
    expect(nthSubnet(4, min, 24, 254)).toEqual(cidr('10.244.255.0/24'));
    expect(subnetIndex(min, cidr('10.244.7.0/24'))).toBe(6);
  });

  it('finds the index of the n-th subnet again (subnetIndex inverts nthSubnet)', () => {
    const scenario = fc.integer({ min: 0, max: 32 }).chain((subnetLen) => {
      const slots = 1n << BigInt(subnetLen);
      return fc.bigInt({ min: 0n, max: slots - 1n }).chain((first) =>
        fc.record({
          subnetLen: fc.constant(subnetLen),
          min: fc.constant(first << BigInt(32 - subnetLen)),
          index: fc.bigInt({ min: 0n, max: slots - 1n - first }).map(Number),
        }),
      );
    });
    fc.assert(
      fc.property(scenario, ({ subnetLen, min, index }) => {
        const subnet = nthSubnet(4, min, subnetLen, index);
        expect(subnet.prefix).toBe(subnetLen);
        expect(parseCidr(formatCidr(subnet))).toEqual(subnet);
        expect(subnetIndex(min, subnet)).toBe(index);
        expect(subnetCount(min, subnet.base, subnetLen, 4)).toBe(index + 1);
      }),
    );
  });
});

describe('subnet keys', () => {
  it('writes a subnet as flannel wrote its etcd keys (a dash for the slash)', () => {
    expect(toSubnetKey(cidr('10.244.7.0/24'))).toBe('10.244.7.0-24');
  });

  it('reads a key back into the subnet', () => {
    expect(parseSubnetKey('10.244.7.0-24')).toEqual(cidr('10.244.7.0/24'));
    expect(parseSubnetKey('0.0.0.0-0')).toEqual(cidr('0.0.0.0/0'));
    expect(parseSubnetKey('255.255.255.255-32')).toEqual(cidr('255.255.255.255/32'));
  });

  it('round-trips every subnet through its key', () => {
    fc.assert(
      fc.property(ipv4Cidr, (network) => {
        const key = toSubnetKey(network);
        expect(key).toMatch(/^[0-9.]+-[0-9]+$/);
        expect(parseSubnetKey(key)).toEqual(network);
      }),
    );
  });

  it.each([
    '10.244.7.0/24',
    '10.244.7.0_24',
    '10.244.7.0-',
    '-24',
    '10.244.7.0-24-24',
    '10.244.7.0--24',
    '10.244.7.0-2400',
    ' 10.244.7.0-24',
    '10.244.7.0-24 ',
    '10.244.7.0-24\n',
    '..%2F',
    '..%2F..%2Fetc%2Fpasswd',
    '10.244.7.0-24/../x',
    '../10.244.7.0-24',
    '10.244.7.0-24%2F..%2Fx',
    '10.244.7.0%2D24',
    '10.244.7.0-24?x=1',
    '10.244.7.0-24#x',
    '',
  ])('refuses the malformed key %j as not a subnet key', (key) => {
    const error = errorOf(() => parseSubnetKey(key));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain('is not a subnet key');
  });

  it.each([
    ['10.244.7.1-24', 'host bits set'],
    ['10.244.7.0-33', 'invalid prefix length'],
    ['10.244.7.0-024', 'invalid prefix length'],
    ['10.244.07.0-24', 'is not an IPv4 address'],
    ['10.244.256.0-24', 'is not an IPv4 address'],
    ['10.244.7-24', 'is not an IPv4 address'],
    ['...........-24', 'is not an IPv4 address'],
  ])('refuses the well-shaped but invalid key %j (%s)', (key, reason) => {
    const error = errorOf(() => parseSubnetKey(key));
    expect(error).toBeInstanceOf(CidrError);
    expect(error.message).toContain(reason);
  });

  it.each([undefined, null, 42, { key: '10.244.7.0-24' }])('refuses the non-string %j', (value) => {
    expect(() => parseSubnetKey(value as unknown as string)).toThrow(CidrError);
  });

  it('never accepts a key with characters outside digits, dots and one dash', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 24 }), (key) => {
        fc.pre(!/^[0-9.]+-[0-9]+$/.test(key));
        expect(() => parseSubnetKey(key)).toThrow(CidrError);
      }),
    );
  });
});

describe('firstHostWithPrefix', () => {
  it('gives the first host address with the prefix, as flannel writes FLANNEL_SUBNET', () => {
    expect(firstHostWithPrefix(cidr('10.244.7.0/24'))).toBe('10.244.7.1/24');
    expect(firstHostWithPrefix(cidr('10.244.0.0/16'))).toBe('10.244.0.1/16');
    expect(firstHostWithPrefix(cidr('10.0.0.4/30'))).toBe('10.0.0.5/30');
  });
});

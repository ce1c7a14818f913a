import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Cidr, cidrOf, formatCidr, formatIp, parseCidr } from '../../shared/cidr.js';
import { ValidationError } from '../../shared/errors.js';
import {
  DEFAULT_ROUTE_LIMIT,
  isLeasable,
  leasableCount,
  leasableIndex,
  leasableSubnet,
  MAX_ROUTE_LIMIT,
  type NetworkConfig,
  parseNetworkConfig,
  toFlannelJson,
} from '../../shared/network-config.js';

const AWS_VPC = { Type: 'aws-vpc' } as const;
const RTB_A = 'rtb-0123456789abcdef0';
const RTB_B = 'rtb-0fedcba9876543210';
const RTB_SHORT = 'rtb-1a2b3c4d';

const cidr = (text: string): Cidr => parseCidr(text);

/** The smallest valid config: everything else defaulted. */
const minimal = (network = '10.244.0.0/16', rest: Record<string, unknown> = {}) => ({
  Network: network,
  Backend: AWS_VPC,
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

/** Asserts a refusal as the caller sees it: a 400 ValidationError whose message starts with the field. */
function expectRefused(input: unknown, field: string, ...fragments: string[]): void {
  const error = refusal(input);
  expect(error.code).toBe('ValidationError');
  expect(error.status).toBe(400);
  expect(error.expose).toBe(true);
  expect(error.message).toContain(field);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
}

const lastOf = (network: Cidr): bigint => network.base + (1n << BigInt(32 - network.prefix)) - 1n;

const defaultSubnetLen = (prefix: number): number => (prefix <= 22 ? 24 : prefix + 2);

/** Any Network flannel accepts (a /1 to a /28), with any valid SubnetLen for it. */
/** Networks inside private address space, cut into at most 65,536 subnets (the config's limits). */
const PRIVATE = [cidr('10.0.0.0/8'), cidr('172.16.0.0/12'), cidr('192.168.0.0/16'), cidr('100.64.0.0/10')];
const networkAndSubnetLen = fc
  .constantFrom(...PRIVATE)
  .chain((range) =>
    fc.record({ range: fc.constant(range), prefix: fc.integer({ min: range.prefix, max: 28 }) }),
  )
  .chain(({ range, prefix }) =>
    fc.record({
      network: fc
        .bigInt({ min: range.base, max: range.base + (1n << BigInt(32 - range.prefix)) - 1n })
        .map((address) => cidrOf(4, address, prefix)),
      subnetLen: fc.integer({ min: prefix + 2, max: Math.min(30, prefix + 16) }),
    }),
  );

const routeTableId = fc.stringMatching(/^rtb-([0-9a-f]{8}|[0-9a-f]{17})$/);

/**
 * A valid flannel network config as an operator might write it (fields present or absent) and the
 * NetworkConfig it means.
 */
const flannelInput: fc.Arbitrary<{ input: Record<string, unknown>; expected: NetworkConfig }> = fc
  .record({
    networkAndLen: networkAndSubnetLen,
    writeSubnetLen: fc.boolean(),
    writeMin: fc.boolean(),
    writeMax: fc.boolean(),
    minSeed: fc.nat(),
    maxSeed: fc.nat(),
    routeTables: fc.option(
      fc.oneof(routeTableId, fc.uniqueArray(routeTableId, { minLength: 1, maxLength: 20 })),
      {
        nil: undefined,
      },
    ),
    routeLimit: fc.option(fc.integer({ min: 1, max: MAX_ROUTE_LIMIT }), { nil: undefined }),
    enableFlags: fc.boolean(),
  })
  .map((g) => {
    const { network } = g.networkAndLen;
    const subnetLen = g.writeSubnetLen ? g.networkAndLen.subnetLen : defaultSubnetLen(network.prefix);
    const slots = 2 ** (subnetLen - network.prefix);
    const step = 1n << BigInt(32 - subnetLen);
    // 0.0.0.0 means "absent" to flannel, so an explicit first subnet of a network at 0.0.0.0 is not written.
    const lowestWritable = network.base === 0n ? 1 : 0;
    const minIndex = g.writeMin ? lowestWritable + (g.minSeed % (slots - lowestWritable)) : 1;
    const maxIndex = g.writeMax ? minIndex + (g.maxSeed % (slots - minIndex)) : slots - 1;
    const subnetAt = (index: number): Cidr => ({
      family: 4,
      base: network.base + step * BigInt(index),
      prefix: subnetLen,
    });
    const backend: Record<string, unknown> = { Type: 'aws-vpc' };
    if (g.routeTables !== undefined) backend.RouteTableID = g.routeTables;
    if (g.routeLimit !== undefined) backend.RouteLimit = g.routeLimit;
    const input: Record<string, unknown> = { Network: formatCidr(network), Backend: backend };
    if (g.writeSubnetLen) input.SubnetLen = subnetLen;
    if (g.writeMin) input.SubnetMin = formatIp(4, subnetAt(minIndex).base);
    if (g.writeMax) input.SubnetMax = formatIp(4, subnetAt(maxIndex).base);
    if (g.enableFlags) Object.assign(input, { EnableIPv4: true, EnableIPv6: false });
    const expected: NetworkConfig = {
      network,
      subnetLen,
      subnetMin: subnetAt(minIndex),
      subnetMax: subnetAt(maxIndex),
      backend: {
        type: 'aws-vpc',
        routeTableIds: g.routeTables === undefined ? undefined : [g.routeTables].flat(),
        routeLimit: g.routeLimit ?? DEFAULT_ROUTE_LIMIT,
      },
    };
    return { input, expected };
  });

describe('parseNetworkConfig: defaults, as flannel (pkg/subnet/config.go)', () => {
  it('fills in every default from a Network and a Backend', () => {
    expect(parseNetworkConfig(minimal())).toEqual({
      network: cidr('10.244.0.0/16'),
      subnetLen: 24,
      subnetMin: cidr('10.244.1.0/24'),
      subnetMax: cidr('10.244.255.0/24'),
      backend: { type: 'aws-vpc', routeTableIds: undefined, routeLimit: DEFAULT_ROUTE_LIMIT },
    });
    expect(DEFAULT_ROUTE_LIMIT).toBe(50);
  });

  it.each([
    ['10.0.0.0/8', 24],
    ['10.244.0.0/16', 24],
    ['10.244.0.0/22', 24],
    ['10.244.0.0/23', 25],
    ['10.244.0.0/24', 26],
    ['10.244.0.0/26', 28],
    ['10.244.0.0/28', 30],
  ])(
    'gives each host a /24 in a /22 or larger network, else splits the network in four: %s -> /%i',
    (network, subnetLen) => {
      expect(parseNetworkConfig(minimal(network)).subnetLen).toBe(subnetLen);
    },
  );

  it('treats SubnetLen 0 as absent, as flannel does with its zero value', () => {
    expect(parseNetworkConfig(minimal('10.244.0.0/16', { SubnetLen: 0 })).subnetLen).toBe(24);
  });

  it('skips the first subnet (its address is the network address) and ends at the last', () => {
    const config = parseNetworkConfig(minimal('10.244.0.0/26'));
    expect(config.subnetMin).toEqual(cidr('10.244.0.16/28'));
    expect(config.subnetMax).toEqual(cidr('10.244.0.48/28'));
  });

  it('defaults SubnetMin to the second subnet and SubnetMax to the last, for every network and SubnetLen', () => {
    fc.assert(
      fc.property(networkAndSubnetLen, ({ network, subnetLen }) => {
        const step = 1n << BigInt(32 - subnetLen);
        const config = parseNetworkConfig(minimal(formatCidr(network), { SubnetLen: subnetLen }));
        expect(config.subnetMin).toEqual({ family: 4, base: network.base + step, prefix: subnetLen });
        expect(config.subnetMax).toEqual({
          family: 4,
          base: network.base + (1n << BigInt(32 - network.prefix)) - step,
          prefix: subnetLen,
        });
        expect(leasableCount(config)).toBe(2 ** (subnetLen - network.prefix) - 1);
      }),
    );
  });

  it('treats a SubnetMin or SubnetMax of 0.0.0.0 as absent, as flannel does with its zero value', () => {
    const config = parseNetworkConfig(
      minimal('10.244.0.0/16', { SubnetMin: '0.0.0.0', SubnetMax: '0.0.0.0' }),
    );
    expect(config.subnetMin).toEqual(cidr('10.244.1.0/24'));
    expect(config.subnetMax).toEqual(cidr('10.244.255.0/24'));
    expect(parseNetworkConfig(minimal('10.0.0.0/8', { SubnetMin: '0.0.0.0' })).subnetMin).toEqual(
      cidr('10.0.1.0/24'),
    );
  });
});

describe('parseNetworkConfig: Network', () => {
  it('accepts the smallest useful network, a /28', () => {
    const config = parseNetworkConfig(minimal('10.244.0.0/28'));
    expect(config.subnetLen).toBe(30);
    expect(leasableCount(config)).toBe(3);
  });

  it.each(['10.244.0.0/29', '10.244.0.0/30', '10.244.0.4/31', '10.244.0.1/32'])(
    'refuses %s as smaller than a /28',
    (network) => {
      expectRefused(minimal(network), 'Network', '/28');
    },
  );

  it('refuses a /29 also when SubnetLen is given', () => {
    expectRefused(minimal('10.244.0.0/29', { SubnetLen: 30 }), 'Network');
  });

  it('refuses 0.0.0.0/0, which flannel reads as no Network at all', () => {
    expectRefused(minimal('0.0.0.0/0'), 'Network', '0.0.0.0/0');
  });

  it('accepts the largest private network, 10.0.0.0/8, in /24s', () => {
    expect(parseNetworkConfig(minimal('10.0.0.0/8')).subnetMax).toEqual(cidr('10.255.255.0/24'));
  });

  it('refuses host bits in Network and suggests the network meant', () => {
    const error = refusal(minimal('10.244.1.0/16'));
    expect(error.message).toBe('Network: "10.244.1.0/16" has host bits set; did you mean 10.244.0.0/16?');
  });

  it.each([
    ['absent', undefined],
    ['null', null],
    ['a number', 10],
    ['an object', { IP: '10.244.0.0', PrefixLen: 16 }],
    ['an array', ['10.244.0.0/16']],
    ['an address without a prefix', '10.244.0.0'],
    ['an address with leading zeros', '10.244.000.0/16'],
    ['padded with spaces', ' 10.244.0.0/16'],
    ['IPv6', 'fd00::/48'],
    ['empty', ''],
  ])('refuses a Network that is %s', (_label, network) => {
    expectRefused({ Network: network, Backend: AWS_VPC }, 'Network');
  });

  it('keeps the cause when a CIDR does not parse', () => {
    expect(refusal(minimal('10.244.0.0/33')).cause).toBeInstanceOf(Error);
  });
});

describe('parseNetworkConfig: SubnetLen', () => {
  it('accepts the bounds: at least Network prefix + 2 (four subnets), at most /30', () => {
    expect(parseNetworkConfig(minimal('10.244.0.0/16', { SubnetLen: 18 })).subnetLen).toBe(18);
    expect(parseNetworkConfig(minimal('10.244.0.0/16', { SubnetLen: 30 })).subnetLen).toBe(30);
    expect(parseNetworkConfig(minimal('10.244.0.0/28', { SubnetLen: 30 })).subnetLen).toBe(30);
  });

  it('refuses a SubnetLen that leaves fewer than four subnets', () => {
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: 17 }), 'SubnetLen', 'four subnets', '18');
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: 16 }), 'SubnetLen');
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: 8 }), 'SubnetLen');
  });

  it('refuses a SubnetLen longer than /30 (a host needs room for a bridge and a tunnel address)', () => {
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: 31 }), 'SubnetLen', '30');
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: 32 }), 'SubnetLen');
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: 1e9 }), 'SubnetLen');
  });

  it.each([
    ['a string', '24'],
    ['a fraction', 24.5],
    ['negative', -24],
    ['null', null],
    ['a boolean', true],
    ['NaN-like', 'NaN'],
    ['an array', [24]],
  ])('refuses a SubnetLen that is %s', (_label, subnetLen) => {
    expectRefused(minimal('10.244.0.0/16', { SubnetLen: subnetLen }), 'SubnetLen');
  });
});

describe('parseNetworkConfig: SubnetMin and SubnetMax', () => {
  it('accepts bounds inside Network, on a SubnetLen boundary', () => {
    const config = parseNetworkConfig(
      minimal('10.244.0.0/16', { SubnetMin: '10.244.16.0', SubnetMax: '10.244.31.0' }),
    );
    expect(config.subnetMin).toEqual(cidr('10.244.16.0/24'));
    expect(config.subnetMax).toEqual(cidr('10.244.31.0/24'));
    expect(leasableCount(config)).toBe(16);
  });

  it('accepts the first subnet of the network when asked for explicitly', () => {
    const config = parseNetworkConfig(minimal('10.244.0.0/16', { SubnetMin: '10.244.0.0' }));
    expect(config.subnetMin).toEqual(cidr('10.244.0.0/24'));
    expect(leasableCount(config)).toBe(256);
  });

  it('accepts a range of a single subnet', () => {
    const config = parseNetworkConfig(
      minimal('10.244.0.0/16', { SubnetMin: '10.244.7.0', SubnetMax: '10.244.7.0' }),
    );
    expect(leasableCount(config)).toBe(1);
  });

  it.each(['SubnetMin', 'SubnetMax'])('refuses a %s outside Network', (field) => {
    expectRefused(
      minimal('10.244.0.0/16', { [field]: '10.245.0.0' }),
      field,
      'not inside Network 10.244.0.0/16',
    );
    expectRefused(minimal('10.244.0.0/16', { [field]: '10.243.255.0' }), field, 'not inside');
  });

  it.each(['SubnetMin', 'SubnetMax'])(
    'refuses a %s off the SubnetLen boundary and names the aligned one',
    (field) => {
      expectRefused(
        minimal('10.244.0.0/16', { [field]: '10.244.7.1' }),
        field,
        '/24 boundary',
        'use 10.244.7.0',
      );
      expectRefused(
        minimal('10.244.0.0/16', { SubnetLen: 26, [field]: '10.244.7.32' }),
        field,
        '/26 boundary',
        'use 10.244.7.0',
      );
    },
  );

  it('refuses an empty range, naming both bounds', () => {
    expectRefused(
      minimal('10.244.0.0/16', { SubnetMin: '10.244.9.0', SubnetMax: '10.244.8.0' }),
      'SubnetMin 10.244.9.0 is above SubnetMax 10.244.8.0',
      'empty',
    );
    expectRefused(minimal('10.244.0.0/16', { SubnetMax: '10.244.0.0' }), 'SubnetMax', 'empty');
  });

  it.each(['SubnetMin', 'SubnetMax'])('refuses a %s that is not an IPv4 address', (field) => {
    for (const value of ['', '10.244.7', '10.244.07.0', '10.244.7.0/24', 'fd00::', 167_774_976, null, true]) {
      expectRefused(minimal('10.244.0.0/16', { [field]: value }), field);
    }
  });
});

describe('parseNetworkConfig: Backend', () => {
  it('requires Backend.Type aws-vpc', () => {
    expectRefused({ Network: '10.244.0.0/16' }, 'Backend', 'aws-vpc');
    for (const type of ['vxlan', 'host-gw', 'udp', 'AWS-VPC', 'aws-vpc ', '', null, 1]) {
      expectRefused(minimal('10.244.0.0/16', { Backend: { Type: type } }), 'Backend.Type', 'aws-vpc');
    }
    expectRefused(minimal('10.244.0.0/16', { Backend: {} }), 'Backend.Type', 'nothing');
  });

  it.each([
    ['a string', 'aws-vpc'],
    ['null', null],
    ['an array', [AWS_VPC]],
  ])('refuses a Backend that is %s', (_label, backend) => {
    expectRefused(minimal('10.244.0.0/16', { Backend: backend }), 'Backend', 'object');
  });

  it('routes into every route table of the VPC when RouteTableID is absent', () => {
    expect(parseNetworkConfig(minimal()).backend.routeTableIds).toBeUndefined();
  });

  it('normalises a single RouteTableID to a list', () => {
    const config = parseNetworkConfig(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: RTB_A } }),
    );
    expect(config.backend.routeTableIds).toEqual([RTB_A]);
  });

  it('keeps a list of RouteTableIDs in order, both AWS id lengths', () => {
    const config = parseNetworkConfig(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: [RTB_B, RTB_SHORT, RTB_A] } }),
    );
    expect(config.backend.routeTableIds).toEqual([RTB_B, RTB_SHORT, RTB_A]);
  });

  it('does not share the caller’s RouteTableID array', () => {
    const ids = [RTB_A];
    const config = parseNetworkConfig(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: ids } }),
    );
    ids.push(RTB_B);
    expect(config.backend.routeTableIds).toEqual([RTB_A]);
  });

  it.each([
    ['an empty list', []],
    ['a number', 42],
    ['null', null],
    ['an object', { id: RTB_A }],
  ])('refuses a RouteTableID that is %s', (_label, routeTableId) => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: routeTableId } }),
      'Backend.RouteTableID',
    );
  });

  it.each([
    '',
    'rtb-0123',
    'rtb-0123456789ABCDEF0',
    'rtb-0123456789abcdef01',
    'rtb-0123456789abcdeg0',
    'subnet-0123456789abcdef0',
    ` ${RTB_A}`,
    `${RTB_A}\n`,
    'rtb-*',
  ])('refuses the route table id %j and quotes it', (id) => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: id } }),
      'Backend.RouteTableID',
      'is not a route table id',
    );
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: [RTB_A, id] } }),
      'Backend.RouteTableID',
      JSON.stringify(id),
    );
  });

  it('refuses a non-string inside the RouteTableID list', () => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: [RTB_A, 7] } }),
      'Backend.RouteTableID',
      '7 is not a route table id',
    );
  });

  it('refuses a route table listed twice', () => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: [RTB_A, RTB_B, RTB_A] } }),
      'Backend.RouteTableID',
      'twice',
    );
  });

  it('accepts at most 20 route tables', () => {
    const ids = Array.from({ length: 21 }, (_, i) => `rtb-${i.toString(16).padStart(8, '0')}`);
    expect(
      parseNetworkConfig(
        minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: ids.slice(0, 20) } }),
      ).backend.routeTableIds,
    ).toHaveLength(20);
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableID: ids } }),
      'Backend.RouteTableID',
      '20',
    );
  });

  it('takes RouteLimit as the routes-per-table quota, 1 to 1000', () => {
    expect(MAX_ROUTE_LIMIT).toBe(1000);
    for (const limit of [1, 50, 200, 1000]) {
      const config = parseNetworkConfig(
        minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteLimit: limit } }),
      );
      expect(config.backend.routeLimit).toBe(limit);
    }
  });

  it.each([0, -1, 1001, 1e6])('refuses the RouteLimit %d as outside 1-1000', (limit) => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteLimit: limit } }),
      'Backend.RouteLimit',
      '1-1000',
    );
  });

  it.each([
    ['a string', '50'],
    ['a fraction', 50.5],
    ['null', null],
    ['a boolean', true],
  ])('refuses a RouteLimit that is %s', (_label, limit) => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteLimit: limit } }),
      'Backend.RouteLimit',
      'integer',
    );
  });

  it('refuses an unknown Backend field, naming it', () => {
    expectRefused(
      minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, RouteTableId: RTB_A } }),
      'Unknown field "Backend.RouteTableId"',
    );
    expectRefused(minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, VNI: 1 } }), '"Backend.VNI"');
  });
});

describe('parseNetworkConfig: the document as a whole', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', '{"Network":"10.244.0.0/16"}'],
    ['a number', 42],
    ['an array', [minimal()]],
  ])('refuses %s as not a JSON object', (_label, input) => {
    expectRefused(input, 'must be a JSON object');
  });

  it.each(['Networks', 'network', 'SubnetLength', 'Backends', 'constructor', '__proto__'])(
    'refuses the unknown field %s, naming it',
    (field) => {
      const input = JSON.parse(JSON.stringify(minimal()).replace('{', `{${JSON.stringify(field)}: 1,`));
      expectRefused(input, `Unknown field "${field}"`);
    },
  );

  it('clips a very long unknown field name in the message', () => {
    const error = refusal(minimal('10.244.0.0/16', { ['x'.repeat(5000)]: 1 }));
    expect(error.message.length).toBeLessThan(200);
  });

  // Dual stack (EnableIPv6 and the IPv6 fields): network-config-ipv6.test.ts.

  it('accepts EnableIPv6 false and EnableIPv4 true, the values flannel assumes', () => {
    const config = parseNetworkConfig(minimal('10.244.0.0/16', { EnableIPv4: true, EnableIPv6: false }));
    expect(config).toEqual(parseNetworkConfig(minimal()));
  });

  it.each([false, 'true', 1, null])('refuses EnableIPv4 %j', (value) => {
    expectRefused(minimal('10.244.0.0/16', { EnableIPv4: value }), 'EnableIPv4');
  });

  it('answers any JSON document with a config or a ValidationError, never anything else', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (input) => {
        try {
          parseNetworkConfig(input);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      }),
    );
  });

  it('names the field at fault when any one field of a valid config is replaced by any JSON value', () => {
    const fields = ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend'] as const;
    const backendFields = ['Type', 'RouteTableID', 'RouteLimit'] as const;
    const topLevel = fc
      .record({ field: fc.constantFrom(...fields), value: fc.jsonValue() })
      .map(({ field, value }) => ({
        name: field,
        input: { ...minimal(), [field]: value } as Record<string, unknown>,
      }));
    const inBackend = fc
      .record({ field: fc.constantFrom(...backendFields), value: fc.jsonValue() })
      .map(({ field, value }) => ({
        name: `Backend.${field}`,
        input: minimal('10.244.0.0/16', { Backend: { ...AWS_VPC, [field]: value } }),
      }));
    fc.assert(
      fc.property(fc.oneof(topLevel, inBackend), ({ name, input }) => {
        try {
          parseNetworkConfig(input);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          expect((error as Error).message).toContain(name);
        }
      }),
    );
  });
});

describe('toFlannelJson', () => {
  it('publishes the config with every default filled in', () => {
    expect(toFlannelJson(parseNetworkConfig(minimal()))).toEqual({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.244.1.0',
      SubnetMax: '10.244.255.0',
      Backend: { Type: 'aws-vpc', RouteLimit: 50 },
    });
  });

  it('publishes route tables as a list, even when given as one string', () => {
    const config = parseNetworkConfig(
      minimal('10.244.0.0/22', { Backend: { ...AWS_VPC, RouteTableID: RTB_A, RouteLimit: 200 } }),
    );
    expect(toFlannelJson(config)).toEqual({
      Network: '10.244.0.0/22',
      SubnetLen: 24,
      SubnetMin: '10.244.1.0',
      SubnetMax: '10.244.3.0',
      Backend: { Type: 'aws-vpc', RouteTableID: [RTB_A], RouteLimit: 200 },
    });
  });

  it('re-parses to the same config, through JSON text as it is stored', () => {
    fc.assert(
      fc.property(flannelInput, ({ input }) => {
        const config = parseNetworkConfig(input);
        const published = JSON.parse(JSON.stringify(toFlannelJson(config)));
        expect(parseNetworkConfig(published)).toEqual(config);
        expect(toFlannelJson(parseNetworkConfig(published))).toEqual(published);
      }),
    );
  });
});

describe('parseNetworkConfig on generated configs', () => {
  it('reads every valid config as written, with defaults where fields are absent', () => {
    fc.assert(
      fc.property(flannelInput, ({ input, expected }) => {
        expect(parseNetworkConfig(input)).toEqual(expected);
      }),
    );
  });
});

describe('leasable subnets', () => {
  const config = parseNetworkConfig(minimal());

  it('counts, enumerates and indexes the subnets between SubnetMin and SubnetMax', () => {
    expect(leasableCount(config)).toBe(255);
    expect(leasableSubnet(config, 0)).toEqual(cidr('10.244.1.0/24'));
    expect(leasableSubnet(config, 6)).toEqual(cidr('10.244.7.0/24'));
    expect(leasableSubnet(config, 254)).toEqual(cidr('10.244.255.0/24'));
    expect(leasableIndex(config, cidr('10.244.7.0/24'))).toBe(6);
  });

  it('leases only subnets of SubnetLen, aligned, within the range', () => {
    expect(isLeasable(config, cidr('10.244.7.0/24'))).toBe(true);
    expect(isLeasable(config, cidr('10.244.0.0/24'))).toBe(false);
    expect(isLeasable(config, cidr('10.244.7.0/25'))).toBe(false);
    expect(isLeasable(config, cidr('10.244.6.0/23'))).toBe(false);
    expect(isLeasable(config, cidr('10.245.0.0/24'))).toBe(false);
    expect(isLeasable(config, cidr('10.243.255.0/24'))).toBe(false);
  });

  it('refuses to index a subnet it cannot lease, instead of answering a wrong index', () => {
    for (const subnet of [
      '10.244.0.0/24',
      '10.244.7.0/25',
      '10.244.6.0/23',
      '10.245.0.0/24',
      '10.243.255.0/24',
    ]) {
      expect(() => leasableIndex(config, cidr(subnet))).toThrow(RangeError);
    }
  });

  it('refuses an index outside 0..count-1, instead of answering a subnet outside the range', () => {
    for (const index of [-1, 255, 256, 0.5, Number.NaN]) {
      expect(() => leasableSubnet(config, index)).toThrow(RangeError);
    }
  });

  it('agree with each other on every config: the i-th leasable subnet is leasable and has index i', () => {
    fc.assert(
      fc.property(
        flannelInput.chain(({ expected }) =>
          fc.tuple(fc.constant(expected), fc.integer({ min: 0, max: leasableCount(expected) - 1 })),
        ),
        ([config, index]) => {
          const subnet = leasableSubnet(config, index);
          expect(subnet.prefix).toBe(config.subnetLen);
          expect(isLeasable(config, subnet)).toBe(true);
          expect(leasableIndex(config, subnet)).toBe(index);
        },
      ),
    );
  });

  it('agree with each other on any subnet: leasable exactly when it has an index in range', () => {
    const configAndSubnet = flannelInput.chain(({ expected }) =>
      fc.tuple(
        fc.constant(expected),
        fc
          .tuple(
            fc.bigInt({ min: expected.network.base - 1024n, max: expected.network.base + 2n ** 32n }),
            fc.integer({ min: expected.subnetLen - 1, max: expected.subnetLen + 1 }),
          )
          .map(([address, prefix]) =>
            cidrOf(4, address < 0n ? 0n : address & 0xffff_ffffn, Math.min(Math.max(prefix, 0), 32)),
          ),
      ),
    );
    fc.assert(
      fc.property(configAndSubnet, ([config, subnet]) => {
        let index: number | undefined;
        try {
          index = leasableIndex(config, subnet);
        } catch (error) {
          expect(error).toBeInstanceOf(RangeError);
        }
        expect(isLeasable(config, subnet)).toBe(index !== undefined);
        if (index !== undefined) {
          expect(index).toBeGreaterThanOrEqual(0);
          expect(index).toBeLessThan(leasableCount(config));
          expect(leasableSubnet(config, index)).toEqual(subnet);
        }
      }),
    );
  });

  it('counts exactly the leasable subnets of a small network', () => {
    fc.assert(
      fc.property(
        flannelInput.filter(({ expected }) => expected.subnetLen - expected.network.prefix <= 8),
        ({ expected: config }) => {
          const step = 1n << BigInt(32 - config.subnetLen);
          let leasable = 0;
          for (let base = config.network.base; base <= lastOf(config.network); base += step) {
            if (isLeasable(config, { family: 4, base, prefix: config.subnetLen })) leasable++;
          }
          expect(leasable).toBe(leasableCount(config));
        },
      ),
    );
  });
});

describe('refuses networks vpc-lease must not route (issue: config validation)', () => {
  const json = (network: string, extra: Record<string, unknown> = {}) => ({
    Network: network,
    ...extra,
    Backend: { Type: 'aws-vpc' },
  });

  it.each([
    ['public address space', '52.94.0.0/16'],
    ['link-local (the instance metadata service lives there)', '169.254.0.0/16'],
    ['half of the internet', '128.0.0.0/1'],
    ['a range straddling 10/8', '8.0.0.0/6'],
    ['just outside 172.16/12', '172.32.0.0/16'],
  ])('%s (%s) is refused as not private', (_name, network) => {
    expect(() => parseNetworkConfig(json(network, { SubnetLen: 24 }))).toThrow(/not private address space/);
  });

  it.each([['10.244.0.0/16'], ['172.16.0.0/12'], ['192.168.0.0/16'], ['100.64.0.0/10']])(
    'accepts %s',
    (network) => {
      expect(formatCidr(parseNetworkConfig(json(network)).network)).toBe(network);
    },
  );

  it('refuses more than 65,536 leasable subnets, and takes exactly 65,536', () => {
    expect(() => parseNetworkConfig(json('10.0.0.0/8', { SubnetLen: 26 }))).toThrow(/at most 65536/);
    // /8 into /24s: 65,536 subnets, of which SubnetMin (the second) to SubnetMax (the last) are leasable
    expect(leasableCount(parseNetworkConfig(json('10.0.0.0/8', { SubnetLen: 24 })))).toBe(65_535);
    expect(
      leasableCount(parseNetworkConfig(json('10.0.0.0/8', { SubnetLen: 24, SubnetMin: '10.0.0.0' }))),
    ).toBe(65_536);
  });
});

/**
 * The allocator's subnet choice: which free subnet a new lease tries. The store decides
 * atomically whether the choice wins; these specify the choice itself, with the random
 * source scripted so every draw is accounted for.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AllocationStrategy,
  flannelFirst100,
  lowestFree,
  type Random,
  randomFree,
  STRATEGIES,
  type SubnetChoiceInput,
} from '../../shared/allocator.js';
import { type Cidr, formatCidr, parseCidr } from '../../shared/cidr.js';
import { isLeasable, parseNetworkConfig } from '../../shared/network-config.js';

/** 10.244.0.0/16 in /24s: 255 leasable subnets, 10.244.1.0/24 (index 0) to 10.244.255.0/24 (index 254). */
const WIDE = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' } });
/** 10.244.0.0/22 in /24s: three leasable subnets, 10.244.1.0/24, 10.244.2.0/24, 10.244.3.0/24. */
const SMALL = parseNetworkConfig({ Network: '10.244.0.0/22', Backend: { Type: 'aws-vpc' } });

/** A random source that yields exactly these draws, and fails the test on one draw more. */
function scripted(...draws: number[]): Random & { readonly left: number } {
  const queue = [...draws];
  const next = (() => {
    const value = queue.shift();
    if (value === undefined) throw new Error('drew more random numbers than the script holds');
    return value;
  }) as Random & { left: number };
  Object.defineProperty(next, 'left', { get: () => queue.length });
  return next;
}

const set = (...subnets: string[]) => new Set(subnets);
const show = (subnet: Cidr | undefined) => (subnet ? formatCidr(subnet) : undefined);

function choose(strategy: AllocationStrategy, input: Partial<SubnetChoiceInput> & { random: Random }) {
  return show(strategy({ config: WIDE, occupied: new Set(), ...input }));
}

describe.each([
  ['randomFree', randomFree],
  ['lowestFree', lowestFree],
  ['flannelFirst100', flannelFirst100],
] as const)('%s, asked for a preferred subnet (the host’s previous one)', (_name, strategy) => {
  it('gives the preferred subnet when it is leasable and free, without drawing', () => {
    const random = scripted();
    expect(choose(strategy, { preferred: parseCidr('10.244.77.0/24'), random })).toBe('10.244.77.0/24');
  });

  it.each([
    ['held by a live lease', { occupied: set('10.244.77.0/24') }],
    ['excluded (lost earlier in this request)', { exclude: set('10.244.77.0/24') }],
  ])('passes over a preferred subnet %s', (_why, taken) => {
    const chosen = choose(strategy, { preferred: parseCidr('10.244.77.0/24'), random: () => 0, ...taken });
    expect(chosen).toBe('10.244.1.0/24');
  });

  it.each([
    ['of another length', '10.244.77.0/25'],
    ['outside Network', '10.245.77.0/24'],
    ['below SubnetMin (the network’s first subnet)', '10.244.0.0/24'],
  ])('passes over a preferred subnet %s', (_why, preferred) => {
    expect(choose(strategy, { preferred: parseCidr(preferred), random: () => 0 })).toBe('10.244.1.0/24');
  });

  it('answers undefined when every subnet is taken, preferred or not', () => {
    const all = set('10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24');
    const random = () => 0.5;
    expect(
      show(strategy({ config: SMALL, occupied: all, preferred: parseCidr('10.244.2.0/24'), random })),
    ).toBeUndefined();
    expect(
      show(
        strategy({
          config: SMALL,
          occupied: set('10.244.1.0/24'),
          exclude: set('10.244.2.0/24', '10.244.3.0/24'),
          random,
        }),
      ),
    ).toBeUndefined();
  });

  it('never chooses a taken or unleasable subnet, and finds a free one whenever there is one', () => {
    const subnets = ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'];
    fc.assert(
      fc.property(
        fc.subarray(subnets),
        fc.subarray(subnets),
        fc.constantFrom(undefined, ...subnets, '10.244.0.0/24'),
        fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        (occupied, exclude, preferred, draws) => {
          const random = () => draws.next().value as number;
          const chosen = strategy({
            config: SMALL,
            occupied: new Set(occupied),
            exclude: new Set(exclude),
            preferred: preferred === undefined ? undefined : parseCidr(preferred),
            random,
          });
          const free = subnets.filter((s) => !occupied.includes(s) && !exclude.includes(s));
          if (free.length === 0) expect(chosen).toBeUndefined();
          else {
            expect(free).toContain(show(chosen));
            expect(isLeasable(SMALL, chosen!)).toBe(true);
          }
          if (preferred !== undefined && free.includes(preferred)) expect(show(chosen)).toBe(preferred);
        },
      ),
    );
  });
});

describe('randomFree: uniformly random among the free subnets', () => {
  it('maps a draw in [0, 1) onto the leasable range, first to last', () => {
    expect(choose(randomFree, { random: scripted(0) })).toBe('10.244.1.0/24');
    expect(choose(randomFree, { random: scripted(0.5) })).toBe('10.244.128.0/24');
    expect(choose(randomFree, { random: scripted(0.9999) })).toBe('10.244.255.0/24');
  });

  it('chooses blind when the occupied subnets are not read yet, still skipping the excluded ones', () => {
    expect(choose(randomFree, { occupied: undefined, random: scripted(0) })).toBe('10.244.1.0/24');
    expect(
      choose(randomFree, { occupied: undefined, exclude: set('10.244.1.0/24'), random: scripted(0, 0.5) }),
    ).toBe('10.244.128.0/24');
  });

  it('draws again when a draw lands on a taken subnet', () => {
    const random = scripted(0, 0, 0.5);
    expect(choose(randomFree, { occupied: set('10.244.1.0/24'), random })).toBe('10.244.128.0/24');
    expect(random.left).toBe(0);
  });

  it('after 32 draws on taken subnets, walks from one more random start, so crowded joiners still spread', () => {
    // 32 draws on the taken 10.244.3.0/24, then a start at 10.244.2.0/24 (index 1), which is free
    const random = scripted(...Array(32).fill(0.9), 0.5);
    expect(show(randomFree({ config: SMALL, occupied: set('10.244.3.0/24'), random }))).toBe('10.244.2.0/24');
    expect(random.left).toBe(0);
  });

  it('wraps the walk around past the last subnet', () => {
    // start at the last subnet (taken), then the walk wraps to the first
    const random = scripted(...Array(32).fill(0.9), 0.9);
    const occupied = set('10.244.2.0/24', '10.244.3.0/24');
    expect(show(randomFree({ config: SMALL, occupied, random }))).toBe('10.244.1.0/24');
  });

  it('answers undefined after walking the whole range once when nothing is free', () => {
    const random = scripted(...Array(32).fill(0), 0);
    const occupied = set('10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24');
    expect(show(randomFree({ config: SMALL, occupied, random }))).toBeUndefined();
    expect(random.left).toBe(0);
  });
});

describe('lowestFree: everybody takes the lowest free subnet (the bench’s naive baseline)', () => {
  it('takes the first leasable subnet of an empty network without drawing', () => {
    expect(choose(lowestFree, { random: scripted() })).toBe('10.244.1.0/24');
  });

  it('skips the occupied and the excluded subnets at the bottom', () => {
    const chosen = choose(lowestFree, {
      occupied: set('10.244.1.0/24', '10.244.3.0/24'),
      exclude: set('10.244.2.0/24'),
      random: scripted(),
    });
    expect(chosen).toBe('10.244.4.0/24');
  });

  it('takes the last subnet when it is the only one free', () => {
    const occupied = set('10.244.1.0/24', '10.244.2.0/24');
    expect(show(lowestFree({ config: SMALL, occupied, random: scripted() }))).toBe('10.244.3.0/24');
  });
});

describe('flannelFirst100: flannel’s LocalManager, random among the first 100 free subnets', () => {
  const firstFive = set('10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24');

  it('draws among the first 100 free subnets only: the lowest free one to the 100th', () => {
    expect(choose(flannelFirst100, { occupied: firstFive, random: scripted(0) })).toBe('10.244.6.0/24');
    expect(choose(flannelFirst100, { occupied: firstFive, random: scripted(0.9999) })).toBe(
      '10.244.105.0/24',
    );
  });

  it('draws among fewer when fewer are free', () => {
    const occupied = set('10.244.1.0/24');
    expect(show(flannelFirst100({ config: SMALL, occupied, random: scripted(0) }))).toBe('10.244.2.0/24');
    expect(show(flannelFirst100({ config: SMALL, occupied, random: scripted(0.9999) }))).toBe(
      '10.244.3.0/24',
    );
  });

  it('does not draw when nothing is free', () => {
    const occupied = set('10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24');
    expect(show(flannelFirst100({ config: SMALL, occupied, random: scripted() }))).toBeUndefined();
  });
});

describe('STRATEGIES', () => {
  it('names the three strategies the bench compares', () => {
    expect(STRATEGIES).toEqual({ random: randomFree, lowest: lowestFree, flannel: flannelFirst100 });
  });
});

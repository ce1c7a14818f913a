/**
 * Which subnet and which capacity slot a new lease tries. Pure: the store decides
 * atomically whether the choice wins; this only keeps collisions rare.
 *
 * When hundreds of hosts join at once, "lowest free subnet" sends all of them to the
 * same item and all but one lose each round. Choosing uniformly at random among the
 * free subnets spreads them: with f free subnets and k simultaneous joiners, a joiner
 * collides with probability about k/f. flannel picked at random among the first 100
 * free subnets; the strategies below are compared in `npm run bench`.
 */
import type { Cidr } from './cidr.js';
import { formatCidr } from './cidr.js';
import { isLeasable, leasableCount, leasableSubnet, type NetworkConfig } from './network-config.js';

export type Random = () => number;

export interface SubnetChoiceInput {
  config: NetworkConfig;
  /** subnets held by live leases (formatted CIDRs); undefined = not read yet (choose blind) */
  occupied: ReadonlySet<string> | undefined;
  /** subnets to skip in addition (e.g. lost in this request already) */
  exclude?: ReadonlySet<string>;
  preferred?: Cidr | undefined;
  /** subnets that may not be leased at all: those a foreign route covers or overlaps (invariant 5) */
  blocked?: ((subnet: Cidr) => boolean) | undefined;
  random: Random;
}

export type AllocationStrategy = (input: SubnetChoiceInput) => Cidr | undefined;

/** How many random probes before falling back to a scan from a random start. */
const RANDOM_PROBES = 32;

const taken = (input: SubnetChoiceInput, subnet: Cidr): boolean => {
  const key = formatCidr(subnet);
  return (
    (input.occupied?.has(key) ?? false) ||
    (input.exclude?.has(key) ?? false) ||
    (input.blocked?.(subnet) ?? false)
  );
};

function preferredIfFree(input: SubnetChoiceInput): Cidr | undefined {
  const { preferred, config } = input;
  return preferred && isLeasable(config, preferred) && !taken(input, preferred) ? preferred : undefined;
}

/** vpc-lease: the preferred subnet if free, else uniformly random among the free ones. */
export const randomFree: AllocationStrategy = (input) => {
  const preferred = preferredIfFree(input);
  if (preferred) return preferred;
  const count = leasableCount(input.config);
  for (let i = 0; i < RANDOM_PROBES; i++) {
    const candidate = leasableSubnet(input.config, Math.floor(input.random() * count));
    if (!taken(input, candidate)) return candidate;
  }
  // Mostly full: walk from a random start so concurrent callers still spread out.
  const start = Math.floor(input.random() * count);
  for (let i = 0; i < count; i++) {
    const candidate = leasableSubnet(input.config, (start + i) % count);
    if (!taken(input, candidate)) return candidate;
  }
  return undefined;
};

/** The naive strategy, for comparison: everybody takes the lowest free subnet. */
export const lowestFree: AllocationStrategy = (input) => {
  const preferred = preferredIfFree(input);
  if (preferred) return preferred;
  const count = leasableCount(input.config);
  for (let i = 0; i < count; i++) {
    const candidate = leasableSubnet(input.config, i);
    if (!taken(input, candidate)) return candidate;
  }
  return undefined;
};

/** flannel's LocalManager: random among the first 100 free subnets. */
export const flannelFirst100: AllocationStrategy = (input) => {
  const preferred = preferredIfFree(input);
  if (preferred) return preferred;
  const count = leasableCount(input.config);
  const free: Cidr[] = [];
  for (let i = 0; i < count && free.length < 100; i++) {
    const candidate = leasableSubnet(input.config, i);
    if (!taken(input, candidate)) free.push(candidate);
  }
  return free.length === 0 ? undefined : free[Math.floor(input.random() * free.length)];
};

export const STRATEGIES = { random: randomFree, lowest: lowestFree, flannel: flannelFirst100 } as const;

/**
 * A capacity slot in [0, capacity): the preferred one if free, else random among the free.
 * When every leasable subnet fits in the capacity, slot = subnet index: two leases on
 * different subnets then never contend for a slot at all.
 */
export function chooseSlot(input: {
  capacity: number;
  occupied: ReadonlySet<number> | undefined;
  exclude?: ReadonlySet<number>;
  preferred?: number | undefined;
  random: Random;
}): number | undefined {
  const { capacity, occupied, exclude, preferred, random } = input;
  const isTaken = (slot: number) => (occupied?.has(slot) ?? false) || (exclude?.has(slot) ?? false);
  if (capacity <= 0) return undefined;
  if (preferred !== undefined && preferred >= 0 && preferred < capacity && !isTaken(preferred))
    return preferred;
  for (let i = 0; i < RANDOM_PROBES; i++) {
    const slot = Math.floor(random() * capacity);
    if (!isTaken(slot)) return slot;
  }
  const start = Math.floor(random() * capacity);
  for (let i = 0; i < capacity; i++) {
    const slot = (start + i) % capacity;
    if (!isTaken(slot)) return slot;
  }
  return undefined;
}

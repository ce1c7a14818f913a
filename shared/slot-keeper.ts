/**
 * Capacity slots (see dynamodb-lease-store.ts) enforce the route limit only while no lease
 * can sit at or above the capacity. The SlotKeeper keeps it so when the capacity changes:
 * on a config publish (before the new config is visible) and after each reconcile (foreign
 * routes come and go).
 */
import { chooseSlot, type Random } from './allocator.js';
import { formatCidr } from './cidr.js';
import { isLive, type Lease } from './lease.js';
import type { NetworkConfig } from './network-config.js';
import type { Clock, LeaseStore, RouteTableSnapshot } from './ports.js';
import { capacity } from './route-planner.js';

export interface SlotKeeperDeps {
  store: LeaseStore;
  clock: Clock;
  random?: Random;
  logger?: { info(message: string, extra?: object): void };
}

export class SlotKeeper {
  private readonly random: Random;

  constructor(private readonly deps: SlotKeeperDeps) {
    this.random = deps.random ?? Math.random;
  }

  /**
   * Makes the slot items agree with the capacity the config and route tables give now.
   * Slots enforce the route limit only while no lease can sit at or above the capacity, so
   * when it shrinks (a lower RouteLimit, more foreign routes): every free slot from the
   * capacity up to `upTo` is blocked with a tombstone (a grant that read the older, larger
   * capacity then fails on it and retries), and live leases above it move below, blocking
   * the slot they leave. When it grows, tombstones below it are removed.
   * Returns how many live leases are still above the capacity (no free slot below it).
   */
  async alignSlots(config: NetworkConfig, snapshot: RouteTableSnapshot, upTo = 0): Promise<number> {
    const { store } = this.deps;
    const now = this.deps.clock.now();
    const room = capacity(config, snapshot);
    const occupancy = await store.occupancy(now);
    const highest = Math.max(upTo, ...[...occupancy.slots].map((slot) => slot + 1));

    // Slots above the capacity that hold a lease item (seen now, or taken before we could block them).
    const busy = [...occupancy.slots].filter((slot) => slot >= room && !occupancy.blockedSlots.has(slot));
    await inBatches(
      range(room, highest).filter((slot) => !occupancy.slots.has(slot)),
      async (slot) => (await store.blockSlot(slot)) || busy.push(slot),
    );
    let stranded = 0;
    if (busy.length > 0) {
      const above = (await store.list()).filter((l) => isLive(l, now) && l.slot >= room);
      const taken = new Set((await store.occupancy(now)).slots);
      for (const lease of above) {
        let moved: Lease | undefined;
        for (let attempt = 0; attempt < 3 && !moved; attempt++) {
          const slot = chooseSlot({ capacity: room, occupied: taken, random: this.random });
          if (slot === undefined) break;
          taken.add(slot);
          moved = await store.moveSlot(lease, slot, now);
        }
        if (moved)
          this.deps.logger?.info('lease moved within capacity', { ...describe(lease), slot: moved.slot });
        else stranded++;
      }
    }
    await inBatches(
      [...occupancy.blockedSlots].filter((slot) => slot < room),
      (slot) => store.unblockSlot(slot),
    );
    return stranded;
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** Runs `work` over `items`, ten at a time (each is one DynamoDB write). */
async function inBatches<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += 10) await Promise.all(items.slice(i, i + 10).map(work));
}

const describe = (lease: Lease) => ({ subnet: formatCidr(lease.subnet), instanceId: lease.instanceId });

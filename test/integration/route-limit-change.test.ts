import { describe, expect, it } from 'vitest';
import { isLive } from '../../shared/lease.js';
import { useMoto } from '../support/aws.js';
import { createControlPlane } from '../support/control-plane.js';

describe('lowering RouteLimit under live leases (moto)', () => {
  const aws = useMoto();

  it('lowers the capacity to exactly the live leases, so the next grant past it is refused', async () => {
    // The public table holds 2 foreign routes (local, 0.0.0.0/0 -> igw).
    const plane = await createControlPlane(aws);
    const config = (rtb: string, limit: number) => ({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: rtb, RouteLimit: limit },
    });
    await plane.configs.publish(config(plane.vpc.routeTableId, 50));
    const hosts = await plane.launch(4);
    for (const h of hosts.slice(0, 3)) await plane.leases.acquire(h.instanceId, { privateIp: h.privateIp });

    // capacity 5 - 2 = 3: exactly the three live leases
    await plane.configs.publish(config(plane.vpc.routeTableId, 5));

    const live = (await plane.store.list()).filter((l) => isLive(l, new Date()));
    expect(live).toHaveLength(3);
    expect(await plane.store.capacity.usage()).toEqual({ used: 3, capacity: 3 });
    const last = hosts[3]!;
    await expect(plane.leases.acquire(last.instanceId, { privateIp: last.privateIp })).rejects.toMatchObject({
      code: 'RouteLimitExceeded',
      status: 409,
    });
  });

  it('refuses a RouteLimit below current use, naming the numbers', async () => {
    const plane = await createControlPlane(aws);
    const hosts = await plane.launch(3);
    for (const h of hosts) await plane.leases.acquire(h.instanceId, { privateIp: h.privateIp });
    await expect(
      plane.configs.publish({
        Network: '10.244.0.0/16',
        Backend: { Type: 'aws-vpc', RouteTableID: plane.vpc.routeTableId, RouteLimit: 4 },
      }),
    ).rejects.toMatchObject({
      code: 'Conflict',
      message: expect.stringMatching(/3 live leases \+ 2 other routes/),
    });
  });
});

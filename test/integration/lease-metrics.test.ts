/**
 * What the lease function tells CloudWatch (the dashboard's "leases granted" and "leases
 * refused by error code"): the EMF lines the real handler prints, against moto.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildLeaseHandler } from '../../functions/lease.js';
import type { LaunchedInstance } from '../../scripts/lib/seed.js';
import { METRIC_DIMENSIONS, METRIC_NAMES } from '../../shared/adapters/observability.js';
import { useMoto } from '../support/aws.js';
import { type ControlPlane, createControlPlane, quietLogger } from '../support/control-plane.js';
import { hostArn, httpEvent, lambdaContext, TEST_HOSTS } from '../support/events.js';
import { CapturingMetrics } from '../support/metrics-capture.js';

describe('lease function metrics (moto)', () => {
  const aws = useMoto();
  let plane: ControlPlane;
  let hosts: LaunchedInstance[];
  const metrics = new CapturingMetrics();
  let put: (host: LaunchedInstance, body: object) => Promise<number>;

  beforeAll(async () => {
    // one leasable subnet: the second host is refused with SubnetsExhausted
    plane = await createControlPlane(aws, {
      config: {
        Network: '10.244.0.0/16',
        SubnetMin: '10.244.1.0',
        SubnetMax: '10.244.1.0',
        Backend: { Type: 'aws-vpc', RouteLimit: 50 },
      },
    });
    hosts = await plane.launch(2);
    const handler = buildLeaseHandler({
      leases: plane.leases,
      hosts: TEST_HOSTS,
      logger: quietLogger,
      metrics,
    });
    put = async (host, body) => {
      const event = httpEvent({ method: 'PUT', path: '/v1/lease', body, userArn: hostArn(host.instanceId) });
      return (await handler(event, lambdaContext())).statusCode ?? 200;
    };
  });

  const service = { [METRIC_DIMENSIONS.service]: 'vpc-lease' };
  const refused = (code: string) => ({
    name: METRIC_NAMES.leasesRefused,
    value: 1,
    dimensions: { ...service, [METRIC_DIMENSIONS.errorCode]: code },
  });

  it('counts a grant once, with the service dimension only, and a renewal not at all', async () => {
    const [first] = hosts as [LaunchedInstance];
    metrics.clear();
    expect(await put(first, { privateIp: first.privateIp })).toBe(200);
    expect(metrics.points()).toEqual([
      expect.objectContaining({ name: METRIC_NAMES.leasesGranted, value: 1, dimensions: service }),
    ]);

    metrics.clear();
    expect(await put(first, { privateIp: first.privateIp })).toBe(200);
    expect(metrics.points()).toEqual([]);
  });

  it('counts every refused PUT /v1/lease by its error code', async () => {
    const [first, second] = hosts as [LaunchedInstance, LaunchedInstance];
    metrics.clear();
    expect(await put(second, { privateIp: second.privateIp })).toBe(409); // the one subnet is taken
    expect(await put(second, { privateIp: first.privateIp })).toBe(403); // another instance's address
    expect(await put(second, { privateIp: 'not-an-ip' })).toBe(400);
    expect(metrics.points().map(({ name, value, dimensions }) => ({ name, value, dimensions }))).toEqual([
      refused('SubnetsExhausted'),
      refused('Forbidden'),
      refused('ValidationError'),
    ]);
  });
});

/** What the reconcile tells CloudWatch after a sweep (the dashboard's utilisation and changes widgets). */
import { describe, expect, it } from 'vitest';
import { publishMetrics } from '../../functions/reconcile.js';
import { METRIC_DIMENSIONS, METRIC_NAMES } from '../../shared/adapters/observability.js';
import type { RouteTableUsageJson } from '../../shared/http/contract.js';
import { CapturingMetrics } from '../support/metrics-capture.js';

const usage = (routeTableId: string, limit: number, free: number): RouteTableUsageJson => ({
  routeTableId,
  limit,
  used: limit - free,
  owned: limit - free - 1,
  foreign: 1,
  blackholes: 0,
  free,
});

describe('reconcile metrics', () => {
  it('publishes the changes of the sweep and the utilisation of each route table, by RouteTableId', () => {
    const metrics = new CapturingMetrics();
    publishMetrics(metrics, {
      startedAt: '2026-01-01T00:00:00.000Z',
      changes: [
        {
          action: 'route-created',
          subnet: '10.244.7.0/24',
          routeTableId: 'rtb-0123456789abcdef0',
          reason: 'missing',
        },
        { action: 'lease-reclaimed', subnet: '10.244.8.0/24', reason: 'expired' },
      ],
      errors: [],
      usage: [usage('rtb-0123456789abcdef0', 50, 10), usage('rtb-0fedcba9876543210', 200, 150)],
    });
    metrics.publishStoredMetrics();
    const service = { [METRIC_DIMENSIONS.service]: 'vpc-lease' };
    const table = (id: string) => ({ ...service, [METRIC_DIMENSIONS.routeTableId]: id });
    expect(metrics.points().map(({ name, value, dimensions }) => ({ name, value, dimensions }))).toEqual([
      { name: METRIC_NAMES.routeTableUtilisation, value: 80, dimensions: table('rtb-0123456789abcdef0') },
      { name: METRIC_NAMES.routeTableUtilisation, value: 25, dimensions: table('rtb-0fedcba9876543210') },
      { name: METRIC_NAMES.reconcileChanges, value: 2, dimensions: service },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { reconcileReportToJson } from '../../shared/http/mappers.js';
import type { ReconcileReport } from '../../shared/reconciler.js';

describe('reconcileReportToJson', () => {
  it("gives the contract's JSON: the start as ISO 8601, changes in order, errors and usage as they are", () => {
    const usage = {
      routeTableId: 'rtb-0123456789abcdef0',
      limit: 50,
      used: 3,
      owned: 2,
      foreign: 1,
      blackholes: 0,
      free: 47,
    };
    const changes: ReconcileReport['changes'] = [
      {
        action: 'route-deleted',
        routeTableId: 'rtb-0123456789abcdef0',
        subnet: '10.244.50.0/24',
        instanceId: 'i-0123456789abcdef0',
        reason: 'lease expired',
      },
      {
        action: 'lease-reclaimed',
        subnet: '10.244.50.0/24',
        instanceId: 'i-0123456789abcdef0',
        reason: 'expired at 2026-05-31T23:00:00.000Z',
      },
    ];
    const errors: ReconcileReport['errors'] = [
      { subnet: '10.244.9.0/24', routeTableId: 'rtb-0123456789abcdef0', message: 'create failed: x' },
    ];
    const report: ReconcileReport = {
      startedAt: new Date('2026-06-01T00:00:00Z'),
      changes,
      errors,
      usage: [usage],
    };

    const json = reconcileReportToJson(report);

    expect(JSON.parse(JSON.stringify(json))).toEqual({
      startedAt: '2026-06-01T00:00:00.000Z',
      changes,
      errors,
      usage: [usage],
    });
  });
});

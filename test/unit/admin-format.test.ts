import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatExpiry,
  formatJson,
  formatLease,
  formatLeaseList,
  formatReconcileReport,
  formatRouteUsage,
  formatTable,
  isNearRouteLimit,
  usagePercent,
} from '../../admin/format.js';
import type { LeaseJson, ReconcileReportJson, RouteUsageJson } from '../../shared/http/contract.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const at = (offsetMs: number): string => new Date(NOW + offsetMs).toISOString();
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const renewedLease: LeaseJson = {
  subnet: '10.244.7.0/24',
  network: '10.244.0.0/16',
  instanceId: 'i-0abc1234def567890',
  privateIp: '10.0.1.23',
  networkInterfaceId: 'eni-0a1b2c3d4e5f60718',
  expiresAt: at(DAY - 30 * SECOND),
  routes: [
    { routeTableId: 'rtb-0123456789abcdef0', destination: '10.244.7.0/24', state: 'active' },
    { routeTableId: 'rtb-0fedcba987654321f', destination: '10.244.7.0/24', state: 'pending' },
  ],
};

const expiredLease: LeaseJson = {
  subnet: '10.244.12.0/24',
  network: '10.244.0.0/16',
  instanceId: 'i-0def',
  privateIp: '10.0.2.7',
  networkInterfaceId: 'eni-0b',
  expiresAt: at(-(5 * MINUTE + 10 * SECOND)),
  routes: [],
};

describe('formatTable', () => {
  it('pads every column to its widest cell, two spaces apart, without trailing blanks', () => {
    const text = formatTable(
      [{ header: 'NAME' }, { header: 'COUNT', align: 'right' }, { header: '' }],
      [
        ['a', '7', 'WARNING'],
        ['longer-name', '1234', ''],
      ],
    );
    expect(text.split('\n')).toEqual([
      'NAME         COUNT', //
      'a                7  WARNING',
      'longer-name   1234',
    ]);
  });
});

describe('relative expiry times', () => {
  it.each([
    [DAY - 30 * SECOND, 'in 23h 59m'],
    [2 * DAY + 3 * HOUR + 59 * MINUTE, 'in 2d 3h'],
    [3 * DAY, 'in 3d'],
    [2 * HOUR, 'in 2h'],
    [5 * MINUTE + 59 * SECOND, 'in 5m'],
    [45 * SECOND, 'in 45s'],
    [500, 'expires now'],
    [0, 'expired just now'],
    [-(5 * MINUTE + 10 * SECOND), 'expired 5m ago'],
    [-(26 * HOUR), 'expired 1d 2h ago'],
  ])('shows an expiry %i ms from now as "%s"', (offset, expected) => {
    expect(formatExpiry(at(offset), NOW)).toBe(expected);
  });

  it('counts a lease expiring exactly now as expired, as the control plane does', () => {
    expect(formatExpiry(at(0), NOW)).toMatch(/^expired/);
  });

  it('shows a timestamp it cannot parse as is rather than inventing a time', () => {
    expect(formatExpiry('tomorrow-ish', NOW)).toBe('tomorrow-ish');
  });

  it('rounds durations down, so a lease is never shown as living longer than it does', () => {
    expect(formatDuration(HOUR - 1)).toBe('59m');
    expect(formatDuration(59_999)).toBe('59s');
  });
});

describe('formatLeaseList', () => {
  it('prints one aligned row per lease with relative expiry and route states, then a count', () => {
    expect(formatLeaseList([renewedLease, expiredLease], NOW)).toBe(
      [
        'SUBNET          INSTANCE             PRIVATE IP  INTERFACE              EXPIRES         ROUTES',
        '10.244.7.0/24   i-0abc1234def567890  10.0.1.23   eni-0a1b2c3d4e5f60718  in 23h 59m      rtb-0123456789abcdef0 active, rtb-0fedcba987654321f pending',
        '10.244.12.0/24  i-0def               10.0.2.7    eni-0b                 expired 5m ago  none',
        '',
        '2 leases',
        '',
      ].join('\n'),
    );
  });

  it('says so when there are no leases', () => {
    expect(formatLeaseList([], NOW)).toBe('No leases.\n');
  });

  it('says when more leases exist than --limit let through', () => {
    expect(formatLeaseList([renewedLease], NOW, { truncated: true })).toMatch(
      /\n1 lease shown; more exist \(raise --limit\)\n$/,
    );
  });
});

describe('formatLease', () => {
  it('prints one field per line, the expiry both relative and absolute, one line per route', () => {
    expect(formatLease(renewedLease, NOW)).toBe(
      [
        'subnet             10.244.7.0/24',
        'network            10.244.0.0/16',
        'instance           i-0abc1234def567890',
        'private ip         10.0.1.23',
        'network interface  eni-0a1b2c3d4e5f60718',
        'expires            in 23h 59m (2025-06-02T11:59:30.000Z)',
        'routes             rtb-0123456789abcdef0  10.244.7.0/24  active',
        '                   rtb-0fedcba987654321f  10.244.7.0/24  pending',
        '',
      ].join('\n'),
    );
  });

  it('shows a dual-stack lease with both subnets and a route line per table and family', () => {
    const dual: LeaseJson = {
      ...renewedLease,
      ipv6Subnet: 'fd00:10:244:7::/64',
      ipv6Network: 'fd00:10:244::/56',
      routes: [
        { routeTableId: 'rtb-0123456789abcdef0', destination: '10.244.7.0/24', state: 'active' },
        { routeTableId: 'rtb-0123456789abcdef0', destination: 'fd00:10:244:7::/64', state: 'pending' },
      ],
    };
    expect(formatLease(dual, NOW).split('\n')).toEqual([
      'subnet             10.244.7.0/24',
      'network            10.244.0.0/16',
      'ipv6 subnet        fd00:10:244:7::/64',
      'ipv6 network       fd00:10:244::/56',
      'instance           i-0abc1234def567890',
      'private ip         10.0.1.23',
      'network interface  eni-0a1b2c3d4e5f60718',
      'expires            in 23h 59m (2025-06-02T11:59:30.000Z)',
      'routes             rtb-0123456789abcdef0  10.244.7.0/24  active',
      '                   rtb-0123456789abcdef0  fd00:10:244:7::/64  pending',
      '',
    ]);
    const list = formatLeaseList([dual], NOW).split('\n');
    expect(list[0]).toMatch(/^SUBNET\s+IPV6 SUBNET\s+INSTANCE/);
    expect(list[1]).toContain('fd00:10:244:7::/64');
    expect(list[1]).toContain('rtb-0123456789abcdef0 active, rtb-0123456789abcdef0 IPv6 pending');
  });
});

describe('route-table utilisation', () => {
  const usage: RouteUsageJson = {
    tables: [
      {
        routeTableId: 'rtb-0123456789abcdef0',
        limit: 50,
        used: 40,
        owned: 38,
        foreign: 2,
        blackholes: 0,
        free: 10,
      },
      {
        routeTableId: 'rtb-0fedcba987654321f',
        limit: 1000,
        used: 12,
        owned: 11,
        foreign: 1,
        blackholes: 0,
        free: 988,
      },
    ],
  };

  it('shows used/limit and the percentage per table, marking tables at 80 % with WARNING', () => {
    const lines = formatRouteUsage(usage).split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'ROUTE TABLE            USED/LIMIT  USE  OWNED  FOREIGN  BLACKHOLES  FREE',
      'rtb-0123456789abcdef0       40/50  80%     38        2           0    10  WARNING',
      'rtb-0fedcba987654321f     12/1000   1%     11        1           0   988',
    ]);
    expect(lines[4]).toMatch(/^WARNING: rtb-0123456789abcdef0 is at 80 % or more of the route limit/);
    expect(formatRouteUsage(usage)).toContain('Backend.RouteLimit');
  });

  it('shows a row per family in dual stack, and warns when the IPv6 routes fill up first', () => {
    const dual: RouteUsageJson = {
      tables: [
        {
          routeTableId: 'rtb-0123456789abcdef0',
          limit: 50,
          used: 12,
          owned: 10,
          foreign: 2,
          blackholes: 0,
          free: 38,
          ipv6: { limit: 50, used: 48, owned: 10, foreign: 38, blackholes: 1, free: 2 },
        },
      ],
    };
    const lines = formatRouteUsage(dual).split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'ROUTE TABLE            FAMILY  USED/LIMIT  USE  OWNED  FOREIGN  BLACKHOLES  FREE',
      'rtb-0123456789abcdef0  IPv4         12/50  24%     10        2           0    38',
      'rtb-0123456789abcdef0  IPv6         48/50  96%     10       38           1     2  WARNING',
    ]);
    expect(formatRouteUsage(dual)).toMatch(/WARNING: rtb-0123456789abcdef0 is at 80 %/);
    expect(formatRouteUsage(dual)).toContain('vpc-lease reconcile');
  });

  it('warns from exactly 80 % on, and not at 79.9 %', () => {
    expect(isNearRouteLimit({ used: 40, limit: 50 })).toBe(true);
    expect(isNearRouteLimit({ used: 50, limit: 50 })).toBe(true);
    expect(isNearRouteLimit({ used: 39, limit: 50 })).toBe(false);
    expect(isNearRouteLimit({ used: 799, limit: 1000 })).toBe(false);
    expect(usagePercent({ used: 799, limit: 1000 })).toBe(79);
  });

  it('prints no WARNING line when every table has room', () => {
    const roomy: RouteUsageJson = {
      tables: [
        { routeTableId: 'rtb-0aaa1111', limit: 50, used: 3, owned: 2, foreign: 1, blackholes: 0, free: 47 },
      ],
    };
    expect(formatRouteUsage(roomy)).not.toContain('WARNING');
  });

  it('points at reconcile when a table holds blackhole routes', () => {
    const withBlackhole: RouteUsageJson = {
      tables: [
        { routeTableId: 'rtb-0aaa1111', limit: 50, used: 4, owned: 3, foreign: 1, blackholes: 1, free: 46 },
      ],
    };
    expect(formatRouteUsage(withBlackhole)).toContain('vpc-lease reconcile');
  });
});

describe('formatReconcileReport', () => {
  it('summarises, then lists each change and each error', () => {
    const report: ReconcileReportJson = {
      startedAt: '2025-06-01T12:00:00.000Z',
      changes: [
        {
          action: 'route-deleted',
          routeTableId: 'rtb-0123456789abcdef0',
          subnet: '10.244.9.0/24',
          instanceId: 'i-0dead',
          reason: 'instance terminated',
        },
        {
          action: 'lease-reclaimed',
          subnet: '10.244.9.0/24',
          instanceId: 'i-0dead',
          reason: 'lease expired',
        },
      ],
      errors: [{ routeTableId: 'rtb-0fedcba987654321f', message: 'DescribeRouteTables throttled' }],
    };
    expect(formatReconcileReport(report)).toBe(
      [
        'Reconcile started 2025-06-01T12:00:00.000Z: 2 changes, 1 error.',
        '',
        'ACTION           ROUTE TABLE            SUBNET         INSTANCE  REASON',
        'route-deleted    rtb-0123456789abcdef0  10.244.9.0/24  i-0dead   instance terminated',
        'lease-reclaimed  -                      10.244.9.0/24  i-0dead   lease expired',
        '',
        'Errors (the next reconcile retries them):',
        '  rtb-0fedcba987654321f: DescribeRouteTables throttled',
        '',
      ].join('\n'),
    );
  });

  it('says nothing changed when routes and leases already agree', () => {
    expect(formatReconcileReport({ startedAt: '2025-06-01T12:00:00.000Z', changes: [], errors: [] })).toBe(
      'Reconcile started 2025-06-01T12:00:00.000Z: 0 changes, 0 errors.\n\nRoutes and leases already agree; nothing changed.\n',
    );
  });
});

describe('JSON mode', () => {
  it('prints the API body exactly, pretty with two spaces, one trailing newline', () => {
    const body = { leases: [renewedLease], nextToken: 'abc' };
    const text = formatJson(body);
    expect(JSON.parse(text)).toEqual(body);
    expect(text).toBe(`${JSON.stringify(body, null, 2)}\n`);
    expect(text.startsWith('{\n  "leases": [')).toBe(true);
  });
});

/**
 * Human output of the admin CLI: aligned tables, relative expiry times, route-table
 * utilisation. Pure functions of the API's JSON (and `now`), so tests need no clock.
 * `--json` output bypasses all of this and prints the API's JSON as is (see `formatJson`).
 */
import type {
  FamilyRouteUsageJson,
  ImportEntryJson,
  ImportReportJson,
  LeaseJson,
  LeaseRouteJson,
  ReconcileReportJson,
  RouteTableUsageJson,
  RouteUsageJson,
} from '../shared/http/contract.js';

/** A route table at or above this share of its route limit is flagged: the next joins may be refused. */
export const ROUTE_USAGE_WARNING_PERCENT = 80;

export type Align = 'left' | 'right';

export interface Column {
  header: string;
  align?: Align;
}

/**
 * Columns separated by two spaces, each as wide as its widest cell. Trailing blanks are
 * trimmed so a last column that is mostly empty (a marker) costs nothing.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    columns
      .map((column, i) => {
        const cell = cells[i] ?? '';
        const width = widths[i] ?? 0;
        return column.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n');
}

/** `23h 59m`, `2d 3h`, `5m`, `42s`: the two largest units, rounded down. */
export function formatDuration(milliseconds: number): string {
  const totalSeconds = Math.floor(Math.abs(milliseconds) / 1000);
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  if (minutes > 0) return `${minutes}m`;
  return `${seconds}s`;
}

/**
 * `in 23h 59m` or `expired 5m ago`. A lease whose `expiresAt` is not after now counts as
 * expired, the same comparison the control plane makes (DynamoDB TTL deletes items late).
 */
export function formatExpiry(expiresAt: string, now: number): string {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return expiresAt;
  const remaining = at - now;
  if (remaining > 0) return remaining < 1000 ? 'expires now' : `in ${formatDuration(remaining)}`;
  return -remaining < 1000 ? 'expired just now' : `expired ${formatDuration(remaining)} ago`;
}

const isIpv6Route = (route: Pick<LeaseRouteJson, 'destination'>): boolean =>
  typeof route.destination === 'string' && route.destination.includes(':');

/** `rtb-0123 active, rtb-0123 IPv6 pending`: the IPv6 route of a dual-stack lease is marked. */
export function formatRouteStates(routes: readonly LeaseRouteJson[]): string {
  if (routes.length === 0) return 'none';
  return routes
    .map((route) => `${route.routeTableId}${isIpv6Route(route) ? ' IPv6' : ''} ${route.state}`)
    .join(', ');
}

/** `truncated`: more leases exist than are shown (`--limit`). */
export function formatLeaseList(
  leases: readonly LeaseJson[],
  now: number,
  options: { truncated?: boolean } = {},
): string {
  if (leases.length === 0) return options.truncated ? 'No leases shown.\n' : 'No leases.\n';
  // The IPv6 column only when some lease is dual stack: IPv4-only output stays as it was.
  const dual = leases.some((lease) => lease.ipv6Subnet !== undefined);
  const table = formatTable(
    [
      { header: 'SUBNET' },
      ...(dual ? [{ header: 'IPV6 SUBNET' }] : []),
      { header: 'INSTANCE' },
      { header: 'PRIVATE IP' },
      { header: 'INTERFACE' },
      { header: 'EXPIRES' },
      { header: 'ROUTES' },
    ],
    leases.map((lease) => [
      lease.subnet,
      ...(dual ? [lease.ipv6Subnet ?? '-'] : []),
      lease.instanceId,
      lease.privateIp,
      lease.networkInterfaceId,
      formatExpiry(lease.expiresAt, now),
      formatRouteStates(lease.routes),
    ]),
  );
  const count = `${leases.length} ${leases.length === 1 ? 'lease' : 'leases'}`;
  return `${table}\n\n${options.truncated ? `${count} shown; more exist (raise --limit)` : count}\n`;
}

export function formatLease(lease: LeaseJson, now: number): string {
  const [firstRoute, ...otherRoutes] = lease.routes.map((r) =>
    r.destination ? `${r.routeTableId}  ${r.destination}  ${r.state}` : `${r.routeTableId}  ${r.state}`,
  );
  const rows: [string, string][] = [
    ['subnet', lease.subnet],
    ['network', lease.network],
    ...(lease.ipv6Subnet !== undefined ? [['ipv6 subnet', lease.ipv6Subnet] as [string, string]] : []),
    ...(lease.ipv6Network !== undefined ? [['ipv6 network', lease.ipv6Network] as [string, string]] : []),
    ['instance', lease.instanceId],
    ['private ip', lease.privateIp],
    ['network interface', lease.networkInterfaceId],
    ['expires', `${formatExpiry(lease.expiresAt, now)} (${lease.expiresAt})`],
    ['routes', firstRoute ?? 'none'],
    ...otherRoutes.map((route): [string, string] => ['', route]),
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return `${rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')}\n`;
}

/** Integer percent, rounded down so 79.9 % is not reported as the 80 % that triggers the warning. */
export function usagePercent(table: Pick<RouteTableUsageJson, 'used' | 'limit'>): number {
  if (table.limit <= 0) return 100;
  return Math.floor((table.used * 100) / table.limit);
}

export const isNearRouteLimit = (table: Pick<RouteTableUsageJson, 'used' | 'limit'>): boolean =>
  table.limit <= 0 || table.used * 100 >= table.limit * ROUTE_USAGE_WARNING_PERCENT;

/**
 * One row per table, or in dual stack one per table and family (AWS counts a table's IPv4
 * and IPv6 routes against the limit separately, so either may fill up first).
 */
export function formatRouteUsage(usage: RouteUsageJson): string {
  if (usage.tables.length === 0) return 'No route tables.\n';
  const dual = usage.tables.some((t) => t.ipv6 !== undefined);
  const families = (t: RouteTableUsageJson): [string, FamilyRouteUsageJson][] =>
    dual ? [['IPv4', t], ...(t.ipv6 ? [['IPv6', t.ipv6] as [string, FamilyRouteUsageJson]] : [])] : [['', t]];
  const table = formatTable(
    [
      { header: 'ROUTE TABLE' },
      ...(dual ? [{ header: 'FAMILY' }] : []),
      { header: 'USED/LIMIT', align: 'right' },
      { header: 'USE', align: 'right' },
      { header: 'OWNED', align: 'right' },
      { header: 'FOREIGN', align: 'right' },
      { header: 'BLACKHOLES', align: 'right' },
      { header: 'FREE', align: 'right' },
      { header: '' },
    ],
    usage.tables.flatMap((t) =>
      families(t).map(([family, f]) => [
        t.routeTableId,
        ...(dual ? [family] : []),
        `${f.used}/${f.limit}`,
        `${usagePercent(f)}%`,
        String(f.owned),
        String(f.foreign),
        String(f.blackholes),
        String(f.free),
        isNearRouteLimit(f) ? 'WARNING' : '',
      ]),
    ),
  );
  const notes: string[] = [];
  const full = usage.tables.filter(
    (t) => isNearRouteLimit(t) || (t.ipv6 !== undefined && isNearRouteLimit(t.ipv6)),
  );
  if (full.length > 0) {
    notes.push(
      `WARNING: ${full.map((t) => t.routeTableId).join(', ')} ${full.length === 1 ? 'is' : 'are'} at ` +
        `${ROUTE_USAGE_WARNING_PERCENT} % or more of the route limit;\n` +
        'new leases are refused once a table is full. Raise the "Routes per route table" quota\n' +
        'and Backend.RouteLimit (vpc-lease config set), or move the cluster to the vxlan backend.',
    );
  }
  if (usage.tables.some((t) => t.blackholes > 0 || (t.ipv6?.blackholes ?? 0) > 0)) {
    notes.push(
      'Blackhole routes point at a target that no longer exists; `vpc-lease reconcile` removes those vpc-lease owns.',
    );
  }
  return notes.length === 0 ? `${table}\n` : `${table}\n\n${notes.join('\n\n')}\n`;
}

export function formatReconcileReport(report: ReconcileReportJson): string {
  const changes = report.changes.length;
  const errors = report.errors.length;
  const summary =
    `Reconcile started ${report.startedAt}: ${changes} ${changes === 1 ? 'change' : 'changes'}, ` +
    `${errors} ${errors === 1 ? 'error' : 'errors'}.`;
  const parts = [summary];
  if (changes === 0 && errors === 0) parts.push('Routes and leases already agree; nothing changed.');
  if (changes > 0) {
    parts.push(
      formatTable(
        [
          { header: 'ACTION' },
          { header: 'ROUTE TABLE' },
          { header: 'SUBNET' },
          { header: 'INSTANCE' },
          { header: 'REASON' },
        ],
        report.changes.map((change) => [
          change.action,
          change.routeTableId ?? '-',
          change.subnet,
          change.instanceId ?? '-',
          change.reason,
        ]),
      ),
    );
  }
  if (errors > 0) {
    parts.push(
      [
        'Errors (the next reconcile retries them):',
        ...report.errors.map((error) => {
          const where = [error.routeTableId, error.subnet].filter((part) => part !== undefined).join(' ');
          return `  ${where === '' ? '' : `${where}: `}${error.message}`;
        }),
      ].join('\n'),
    );
  }
  return `${parts.join('\n\n')}\n`;
}

const ROUTE_VERBS = { keep: 'keep route', repoint: 're-point route', create: 'create route' } as const;

/** `adopt (keep route)`, `adopted (re-point route)`, `unchanged`, `skip: no-instance`. */
function importAction(entry: ImportEntryJson): string {
  if (entry.action === 'skip') return `skip: ${entry.reason?.code ?? 'unknown'}`;
  if (entry.action === 'unchanged') return 'unchanged';
  const verbs = [...new Set(entry.routes.map((r) => ROUTE_VERBS[r.action]))];
  const pending = entry.pendingRouteTableIds?.length ? ', routes pending' : '';
  return verbs.length === 0 ? entry.action : `${entry.action} (${verbs.join(', ')}${pending})`;
}

/** The current target of the subnet's route: one table, the target; several, per table. */
function importTargets(entry: ImportEntryJson): string {
  if (entry.routes.length === 0) return '-';
  if (entry.routes.length === 1) return entry.routes[0]!.target ?? 'none';
  return entry.routes.map((r) => `${r.routeTableId}=${r.target ?? 'none'}`).join(' ');
}

/** The plan (or what was done) of `vpc-lease import`, one row per flannel lease, reasons below. */
export function formatImportReport(report: ImportReportJson): string {
  const { summary } = report;
  const parts: string[] = [
    report.applied
      ? 'Imported the flannel registry.'
      : 'Dry run: nothing was changed. Run again with --apply to adopt the leases marked "adopt".',
  ];
  const network = String(report.config.value.Network ?? '');
  parts.push(
    report.config.action === 'matches'
      ? `Network config: the registry's matches the published one (${network}).`
      : report.config.action === 'publish'
        ? `Network config: none is published; the registry's (${network}) would be.`
        : `Network config: published from the registry (${network}).`,
  );
  if (report.leases.length === 0) parts.push('The registry holds no subnet leases.');
  else {
    parts.push(
      formatTable(
        [
          { header: 'SUBNET' },
          { header: 'PUBLIC IP' },
          { header: 'INSTANCE' },
          { header: 'ENI' },
          { header: 'ROUTE TARGET' },
          { header: 'ACTION' },
        ],
        report.leases.map((entry) => [
          entry.subnet,
          entry.publicIp ?? '-',
          entry.instanceId ?? '-',
          entry.networkInterfaceId ?? '-',
          importTargets(entry),
          importAction(entry),
        ]),
      ),
    );
  }
  const skipped = report.leases.filter((entry) => entry.action === 'skip');
  if (skipped.length > 0) {
    parts.push(
      [
        'Skipped (left to flannel; see docs/migration.md, "Hosts that miss the window"):',
        ...skipped.map((entry) => `  ${entry.subnet}: ${entry.reason?.code}: ${entry.reason?.message}`),
      ].join('\n'),
    );
  }
  const counts = report.applied
    ? `${summary.adopted} adopted, ${summary.unchanged} unchanged, ${summary.skipped} skipped.`
    : `${summary.adopt} to adopt, ${summary.unchanged} unchanged, ${summary.skipped} to skip.`;
  parts.push(counts);
  return `${parts.join('\n\n')}\n`;
}

/** `--json`: the API's JSON, pretty, exactly as received. */
export const formatJson = (body: unknown): string => `${JSON.stringify(body, null, 2)}\n`;

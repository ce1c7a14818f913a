/**
 * The HTTP contract of DESIGN.md, shared by the functions, the host agent and the admin CLI.
 * Types only and tiny helpers: no AWS, no middy.
 */
export const HOST_PATHS = {
  config: '/v1/config',
  lease: '/v1/lease',
} as const;

export const ADMIN_PATHS = {
  leases: '/v1/admin/leases',
  lease: (subnetKey: string) => `/v1/admin/leases/${subnetKey}`,
  routes: '/v1/admin/routes',
  config: '/v1/admin/config',
  reconcile: '/v1/admin/reconcile',
} as const;

/** Request body of PUT /v1/lease. */
export interface AcquireLeaseRequest {
  privateIp: string;
  /** the subnet of the host's old subnet.env, e.g. "10.244.7.0/24" */
  previousSubnet?: string;
}

export interface LeaseRouteJson {
  routeTableId: string;
  state: 'active' | 'pending';
}

export interface LeaseJson {
  subnet: string;
  network: string;
  /** dual stack only: the IPv6 subnet paired with `subnet` (same index), e.g. "fd00:10:244:7::/64" */
  ipv6Subnet?: string;
  /** dual stack only: the config's IPv6Network, e.g. "fd00:10:244::/56" */
  ipv6Network?: string;
  instanceId: string;
  privateIp: string;
  networkInterfaceId: string;
  /** ISO 8601 */
  expiresAt: string;
  routes: LeaseRouteJson[];
}

export interface LeaseListJson {
  leases: LeaseJson[];
  /** present when there are more: pass as ?nextToken= */
  nextToken?: string;
}

export interface RouteTableUsageJson {
  routeTableId: string;
  limit: number;
  used: number;
  owned: number;
  foreign: number;
  blackholes: number;
  free: number;
}

export interface RouteUsageJson {
  tables: RouteTableUsageJson[];
}

export interface ReconcileChangeJson {
  action: 'route-created' | 'route-replaced' | 'route-deleted' | 'lease-reclaimed';
  routeTableId?: string;
  subnet: string;
  instanceId?: string;
  reason: string;
}

export interface ReconcileReportJson {
  startedAt: string;
  changes: ReconcileChangeJson[];
  errors: { subnet?: string; routeTableId?: string; message: string }[];
  /** per table in scope, after the changes */
  usage?: RouteTableUsageJson[];
}

export interface ErrorJson {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** serverless-offline's way to stand in for the IAM authorizer locally (run with --noAuth). */
export const OFFLINE_AUTHORIZER_HEADER = 'sls-offline-authorizer-override';

export const offlineIdentityHeader = (
  instanceId: string,
  options: { account?: string; role?: string } = {},
): Record<string, string> => ({
  [OFFLINE_AUTHORIZER_HEADER]: JSON.stringify({
    iam: {
      userArn: `arn:aws:sts::${options.account ?? '000000000000'}:assumed-role/${options.role ?? 'vpc-lease-host'}/${instanceId}`,
    },
  }),
});

/** Bodies above this are refused with 413 before parsing. */
export const MAX_BODY_BYTES = 8 * 1024;

/**
 * The HTTP contract (docs/api.md), shared by the functions, the host agent and the admin CLI.
 * Types only and tiny helpers: no AWS, no middy.
 */
import type { ImportSkipCode } from '../import-plan.js';

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
  import: '/v1/admin/import',
} as const;

/** Request body of PUT /v1/lease. */
export interface AcquireLeaseRequest {
  privateIp: string;
  /** the subnet of the host's old subnet.env, e.g. "10.244.7.0/24" */
  previousSubnet?: string;
}

/** One route of a lease: per route table, the IPv4 route and in dual stack the IPv6 route. */
export interface LeaseRouteJson {
  routeTableId: string;
  /** the route's destination: the lease's `subnet`, or its `ipv6Subnet` for the IPv6 route */
  destination: string;
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

/** One family's routes of a table against Backend.RouteLimit (AWS counts IPv4 and IPv6 routes apart). */
export interface FamilyRouteUsageJson {
  limit: number;
  used: number;
  owned: number;
  foreign: number;
  blackholes: number;
  free: number;
}

/** A table's IPv4 routes at the top level; in dual stack its IPv6 routes under `ipv6`. */
export interface RouteTableUsageJson extends FamilyRouteUsageJson {
  routeTableId: string;
  /** dual stack: the table's IPv6 routes, counted on their own */
  ipv6?: FamilyRouteUsageJson;
  /**
   * GET /v1/admin/routes: ranges inside Network that routes vpc-lease does not own claim
   * (gateway, peering... or another prefix length); no lease is granted on a subnet they overlap
   */
  foreignClaims?: string[];
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

/** One `<prefix>/subnets/<key>` of a flannel registry, in the body of POST /v1/admin/import. */
export interface FlannelLeaseJson {
  /** the key's last segment, as flannel writes it: "10.244.7.0-24" */
  key: string;
  /** the key's value: flannel's {"PublicIP","PublicIPv6","BackendType","BackendData"} */
  value: unknown;
  /** seconds left on the key's etcd lease; null when the key is on no lease */
  ttlSeconds: number | null;
}

/** Request body of POST /v1/admin/import. */
export interface ImportRequestJson {
  /** false: answer the plan and change nothing */
  apply: boolean;
  /** the registry's `<prefix>/config`; null or absent when it has none */
  config?: unknown;
  leases: FlannelLeaseJson[];
}

/** Why a flannel lease was not adopted: the import service's own codes, as they go on the wire. */
export type ImportSkipCodeJson = ImportSkipCode;

export interface ImportEntryJson {
  /** "10.244.7.0/24"; the raw key when it is not a subnet */
  subnet: string;
  publicIp: string | null;
  ttlSeconds: number | null;
  instanceId: string | null;
  networkInterfaceId: string | null;
  /** per route table in scope: the current target (null: no route) and what the import does with it */
  routes: { routeTableId: string; target: string | null; action: 'keep' | 'repoint' | 'create' }[];
  /** adopt (dry run), adopted, unchanged (already this instance's lease) or skip */
  action: 'adopt' | 'adopted' | 'unchanged' | 'skip';
  reason?: { code: ImportSkipCodeJson; message: string };
  /** tables whose route is not written yet (EC2 throttled); the reconcile finishes them */
  pendingRouteTableIds?: string[];
}

export interface ImportReportJson {
  applied: boolean;
  /** matches: the registry agrees with the published config; publish(ed): there was none, the registry's is (was) published */
  config: { action: 'matches' | 'publish' | 'published'; value: Record<string, unknown> };
  leases: ImportEntryJson[];
  summary: { adopt: number; adopted: number; unchanged: number; skipped: number };
}

export interface ErrorJson {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** serverless-offline's way to stand in for the IAM authorizer locally (run with --noAuth). */
export const OFFLINE_AUTHORIZER_HEADER = 'sls-offline-authorizer-override';

/** The account moto and the local stack answer for. */
export const LOCAL_ACCOUNT_ID = '000000000000';

/**
 * The identity an operator claims on the local stack (`--local`, the demo) in the authorizer
 * override header: an operator session, as an operator's assumed role appears to the IAM
 * authorizer in AWS.
 */
export const LOCAL_OPERATOR_ARN = `arn:aws:sts::${LOCAL_ACCOUNT_ID}:assumed-role/vpc-lease-operator/local-operator`;

export const offlineIdentityHeader = (
  instanceId: string,
  options: { account?: string; role?: string } = {},
): Record<string, string> => ({
  [OFFLINE_AUTHORIZER_HEADER]: JSON.stringify({
    iam: {
      userArn: `arn:aws:sts::${options.account ?? LOCAL_ACCOUNT_ID}:assumed-role/${options.role ?? 'vpc-lease-host'}/${instanceId}`,
    },
  }),
});

/** Bodies above this are refused with 413 before parsing. */
export const MAX_BODY_BYTES = 8 * 1024;

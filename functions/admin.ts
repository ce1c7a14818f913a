/**
 * Operator routes (/v1/admin/...; API Gateway's IAM policy decides who may call them).
 * Wiring only: HTTP in, AdminService, JSON out.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { createDependencies } from '../shared/adapters/dependencies.js';
import { readHostIdentity } from '../shared/adapters/environment.js';
import { lazyHandler } from '../shared/adapters/lazy-handler.js';
import { logger, METRIC_NAMES, metrics } from '../shared/adapters/observability.js';
import { AdminService, MAX_PAGE_SIZE, parseLeaseKey } from '../shared/admin-service.js';
import type { HostIdentityPolicy } from '../shared/caller-identity.js';
import { formatCidr } from '../shared/cidr.js';
import { MethodNotAllowedError, NotFoundError, ValidationError } from '../shared/errors.js';
import {
  ADMIN_PATHS,
  type LeaseJson,
  type LeaseListJson,
  type RouteUsageJson,
} from '../shared/http/contract.js';
import { importResultToJson, MAX_IMPORT_BODY_BYTES, parseImportRequest } from '../shared/http/import.js';
import { leaseToJson } from '../shared/http/mappers.js';
import {
  callerArn,
  type HttpEvent,
  type HttpResult,
  headerValue,
  httpHandler,
  json,
  jsonObjectBody,
  routeOf,
} from '../shared/http/middleware.js';
import type { ImportService } from '../shared/import-service.js';
import { toFlannelJson } from '../shared/network-config.js';
import type { StoredConfig } from '../shared/ports.js';

export interface AdminHandlerDependencies {
  admin: AdminService;
  /** who counts as a host: the only callers of host routes, refused on admin routes */
  hosts: HostIdentityPolicy;
  /** POST /v1/admin/import; the Lambda always has it, tests of the other routes may leave it out */
  imports?: Pick<ImportService, 'import'>;
  logger: Logger;
  metrics?: Metrics;
}

const LEASE_PREFIX = `${ADMIN_PATHS.leases}/`;
const LEASE_ROUTE = `${ADMIN_PATHS.leases}/{subnet}`;
const METHODS: Record<string, readonly string[]> = {
  [ADMIN_PATHS.leases]: ['GET'],
  [LEASE_ROUTE]: ['GET', 'DELETE'],
  [ADMIN_PATHS.routes]: ['GET'],
  [ADMIN_PATHS.config]: ['GET', 'PUT'],
  [ADMIN_PATHS.reconcile]: ['POST'],
  [ADMIN_PATHS.import]: ['POST'],
};

export function buildAdminHandler(deps: AdminHandlerDependencies) {
  const { admin } = deps;

  const route = async (event: HttpEvent): Promise<HttpResult> => {
    const operator = callerArn(event, deps.hosts);
    deps.logger.appendKeys({ operator });
    const { method, path, template } = adminRoute(event);

    switch (`${method} ${template}`) {
      case `GET ${ADMIN_PATHS.leases}`: {
        const query = queryOf(event, ['limit', 'nextToken']);
        const page = await admin.listLeases({
          ...(query.limit !== undefined ? { limit: parseLimit(query.limit) } : {}),
          ...(query.nextToken !== undefined ? { nextToken: query.nextToken } : {}),
        });
        const body: LeaseListJson = {
          leases: page.leases.map((l) => leaseToJson(l, page.config)),
          ...(page.nextToken ? { nextToken: page.nextToken } : {}),
        };
        return json(200, body);
      }
      case `GET ${LEASE_ROUTE}`: {
        const subnet = parseLeaseKey(subnetKeyOf(event, path));
        const { lease, config } = await admin.getLease(subnet);
        return json(200, leaseToJson(lease, config));
      }
      case `DELETE ${LEASE_ROUTE}`: {
        const subnet = parseLeaseKey(subnetKeyOf(event, path));
        const { lease, config } = await admin.revoke(subnet);
        deps.logger.info('lease revoked by operator', {
          subnet: formatCidr(lease.subnet),
          instanceId: lease.instanceId,
        });
        deps.metrics?.addMetric(METRIC_NAMES.leasesRevoked, MetricUnit.Count, 1);
        // Its routes are gone: the answer says so rather than repeating their former states.
        const body: LeaseJson = { ...leaseToJson(lease, config), routes: [] };
        return json(200, body);
      }
      case `GET ${ADMIN_PATHS.routes}`: {
        const body: RouteUsageJson = { tables: await admin.routeUsage() };
        return json(200, body);
      }
      case `GET ${ADMIN_PATHS.config}`:
        return configResponse(await admin.getConfig());
      case `PUT ${ADMIN_PATHS.config}`: {
        const expectedVersion = ifMatchVersion(event);
        const body = jsonObjectBody(event, { required: true });
        const stored = await admin.publishConfig(body, expectedVersion);
        deps.logger.info('network config published', {
          version: stored.version,
          config: toFlannelJson(stored.config),
        });
        return configResponse(stored);
      }
      case `POST ${ADMIN_PATHS.reconcile}`: {
        const report = await admin.reconcile();
        deps.logger.info('reconcile run by operator', {
          changes: report.changes.length,
          errors: report.errors.length,
        });
        return json(200, report);
      }
      case `POST ${ADMIN_PATHS.import}`: {
        if (!deps.imports) throw new Error('the import service is not wired into this admin handler');
        const body = jsonObjectBody(event, { required: true, maxBytes: MAX_IMPORT_BODY_BYTES });
        const report = importResultToJson(await deps.imports.import(parseImportRequest(body!)));
        deps.logger.info(report.applied ? 'flannel registry imported' : 'flannel registry import planned', {
          ...report.summary,
          config: report.config.action,
        });
        return json(200, report);
      }
      default: {
        const allowed = METHODS[template];
        if (allowed) throw new MethodNotAllowedError(`${path} answers ${allowed.join(', ')}, not ${method}.`);
        throw new NotFoundError(
          `No admin route ${method} ${path}: see /v1/admin/leases, /v1/admin/leases/{subnet}, ` +
            '/v1/admin/routes, /v1/admin/config, /v1/admin/reconcile, /v1/admin/import.',
        );
      }
    }
  };

  return httpHandler(deps, route);
}

export const handler = lazyHandler(() => {
  const { store, instances, leases, configs, routes, reconciler, imports, clock } = createDependencies();
  const admin = new AdminService({ store, instances, leases, configs, routes, reconciler, clock });
  return buildAdminHandler({ admin, imports, hosts: readHostIdentity(), logger, metrics });
});

// ---------------------------------------------------------------- HTTP mapping

/**
 * The route template: API Gateway's routeKey; where a local emulator leaves it out, the
 * raw path, with anything under /v1/admin/leases/ taken as the {subnet} route (so
 * `/v1/admin/leases/../config` is a bad subnet, 400, not another route).
 */
function adminRoute(event: HttpEvent): { method: string; path: string; template: string } {
  const { method, path, routeKey } = routeOf(event);
  const keyed = routeKey.slice(routeKey.indexOf(' ') + 1);
  if (keyed === LEASE_ROUTE || path.startsWith(LEASE_PREFIX)) return { method, path, template: LEASE_ROUTE };
  return { method, path, template: keyed in METHODS ? keyed : path };
}

/** The {subnet} segment, decoded once; an encoded `/` or a further segment fails parseLeaseKey. */
function subnetKeyOf(event: HttpEvent, path: string): string {
  const raw = event.pathParameters?.subnet ?? path.slice(LEASE_PREFIX.length);
  try {
    return raw.includes('%') ? decodeURIComponent(raw) : raw;
  } catch {
    throw new ValidationError('Invalid subnet in the path: bad percent-encoding. Write it as 10.244.7.0-24.');
  }
}

/** The query parameters, refusing any not in `allowed` (payload v2 joins repeated ones with commas). */
function queryOf<K extends string>(event: HttpEvent, allowed: readonly K[]): Partial<Record<K, string>> {
  // No prototype: a `__proto__` parameter must be a key like any other (and refused as unknown).
  const params: Record<string, string> = Object.create(null);
  if (event.queryStringParameters) {
    for (const [key, value] of Object.entries(event.queryStringParameters))
      if (value !== undefined) params[key] = value;
  } else if (event.rawQueryString) {
    new URLSearchParams(event.rawQueryString).forEach((value, key) => {
      params[key] = key in params ? `${params[key]},${value}` : value;
    });
  }
  for (const key of Object.keys(params)) {
    if (!(allowed as readonly string[]).includes(key)) {
      throw new ValidationError(
        `Unknown query parameter "${key.slice(0, 40)}"; allowed: ${allowed.join(', ')}.`,
      );
    }
  }
  return params as Partial<Record<K, string>>;
}

function parseLimit(text: string): number {
  if (!/^[1-9][0-9]{0,3}$/.test(text) || Number(text) > MAX_PAGE_SIZE) {
    throw new ValidationError(
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, not "${text.slice(0, 20)}".`,
    );
  }
  return Number(text);
}

/** The config as flannel JSON; its version as a strong ETag, the condition `config set` may send back. */
function configResponse(stored: StoredConfig): HttpResult {
  return json(200, toFlannelJson(stored.config), {
    etag: `"${stored.version}"`,
    'last-modified': stored.updatedAt.toUTCString(),
  });
}

/** `If-Match: "7"` (or bare 7): publish only over version 7. Absent: no condition. */
function ifMatchVersion(event: HttpEvent): number | undefined {
  const value = headerValue(event, 'if-match')?.trim();
  if (value === undefined || value === '') return undefined;
  const match = /^"?([1-9][0-9]{0,9})"?$/.exec(value);
  if (!match || value.startsWith('"') !== value.endsWith('"')) {
    throw new ValidationError(
      `If-Match must be the ETag of GET ${ADMIN_PATHS.config} (a version, like "3"), not ${value.slice(0, 40)}.`,
    );
  }
  return Number(match[1]);
}

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
import { type AdminService, parseLeaseKey } from '../shared/admin-service.js';
import type { HostIdentityPolicy } from '../shared/caller-identity.js';
import { formatCidr } from '../shared/cidr.js';
import { MethodNotAllowedError, NotFoundError } from '../shared/errors.js';
import {
  ADMIN_METHODS,
  adminRoute,
  configResponse,
  ifMatchVersion,
  LEASE_ROUTE,
  parseLimit,
  queryOf,
  subnetKeyOf,
} from '../shared/http/admin-request.js';
import {
  ADMIN_PATHS,
  type LeaseJson,
  type LeaseListJson,
  type RouteUsageJson,
} from '../shared/http/contract.js';
import { importResultToJson, MAX_IMPORT_BODY_BYTES, parseImportRequest } from '../shared/http/import.js';
import { leaseToJson, reconcileReportToJson } from '../shared/http/mappers.js';
import {
  callerArn,
  type HttpEvent,
  type HttpResult,
  httpHandler,
  json,
  jsonObjectBody,
} from '../shared/http/middleware.js';
import type { ImportService } from '../shared/import-service.js';
import { toFlannelJson } from '../shared/network-config.js';

export interface AdminHandlerDependencies {
  admin: AdminService;
  /** who counts as a host: the only callers of host routes, refused on admin routes */
  hosts: HostIdentityPolicy;
  /** POST /v1/admin/import; the Lambda always has it, tests of the other routes may leave it out */
  imports?: Pick<ImportService, 'import'>;
  logger: Logger;
  metrics?: Metrics;
}

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
        return json(200, reconcileReportToJson(report));
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
        const allowed = ADMIN_METHODS[template];
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
  const { admin, imports } = createDependencies();
  return buildAdminHandler({ admin, imports, hosts: readHostIdentity(), logger, metrics });
});

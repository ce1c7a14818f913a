/**
 * Host routes (granted to the hosts' instance role): GET /v1/config, PUT /v1/lease,
 * DELETE /v1/lease. Wiring only; the logic is LeaseService.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { createDependencies } from '../shared/adapters/dependencies.js';
import { readHostIdentity } from '../shared/adapters/environment.js';
import { lazyHandler } from '../shared/adapters/lazy-handler.js';
import { countRefusedLease, logger, METRIC_NAMES, metrics } from '../shared/adapters/observability.js';
import type { HostIdentityPolicy } from '../shared/caller-identity.js';
import { MethodNotAllowedError, NotFoundError, VpcLeaseError } from '../shared/errors.js';
import { HOST_PATHS } from '../shared/http/contract.js';
import { leaseToJson } from '../shared/http/mappers.js';
import {
  callerInstanceId,
  type HttpEvent,
  type HttpResult,
  httpHandler,
  json,
  jsonObjectBody,
  noContent,
  routeOf,
  stringFields,
} from '../shared/http/middleware.js';
import type { LeaseService } from '../shared/lease-service.js';
import { toFlannelJson } from '../shared/network-config.js';

export interface LeaseHandlerDependencies {
  leases: LeaseService;
  /** who counts as a host: the only callers of host routes, refused on admin routes */
  hosts: HostIdentityPolicy;
  logger: Logger;
  metrics?: Metrics;
}

/** The methods of each host path; any other method on these paths is answered 405. */
const HOST_METHODS: Record<string, readonly string[]> = {
  [HOST_PATHS.config]: ['GET'],
  [HOST_PATHS.lease]: ['PUT', 'DELETE'],
};

export function buildLeaseHandler(deps: LeaseHandlerDependencies) {
  const route = async (event: HttpEvent): Promise<HttpResult> => {
    const { method, routeKey } = routeOf(event);
    switch (routeKey) {
      case `GET ${HOST_PATHS.config}`: {
        callerInstanceId(event, deps.hosts);
        const { config } = await deps.leases.getConfig();
        return json(200, toFlannelJson(config));
      }
      case `PUT ${HOST_PATHS.lease}`: {
        try {
          const instanceId = callerInstanceId(event, deps.hosts);
          deps.logger.appendKeys({ instanceId });
          const body = jsonObjectBody(event, { required: true })!;
          const { privateIp, previousSubnet } = stringFields(body, {
            required: ['privateIp'],
            optional: ['previousSubnet'],
          });
          const { lease, config, outcome } = await deps.leases.acquire(instanceId, {
            privateIp: privateIp!,
            previousSubnet,
          });
          if (outcome === 'granted') deps.metrics?.addMetric(METRIC_NAMES.leasesGranted, MetricUnit.Count, 1);
          return json(200, leaseToJson(lease, config));
        } catch (error) {
          // every 4xx answer, by its code (a 5xx is the API's own 5xx metric)
          if (deps.metrics && error instanceof VpcLeaseError && error.status >= 400 && error.status < 500) {
            countRefusedLease(deps.metrics, error.code);
          }
          throw error;
        }
      }
      case `DELETE ${HOST_PATHS.lease}`: {
        const instanceId = callerInstanceId(event, deps.hosts);
        deps.logger.appendKeys({ instanceId });
        await deps.leases.release(instanceId);
        return noContent();
      }
      default: {
        const template = routeKey.slice(routeKey.indexOf(' ') + 1);
        const allowed = HOST_METHODS[template];
        if (allowed) {
          throw new MethodNotAllowedError(`${template} answers ${allowed.join(', ')}, not ${method}.`);
        }
        throw new NotFoundError(
          `No route ${routeKey}: host routes are GET /v1/config, PUT /v1/lease, DELETE /v1/lease.`,
        );
      }
    }
  };

  return httpHandler(deps, route);
}

export const handler = lazyHandler(() => {
  const { leases } = createDependencies();
  return buildLeaseHandler({ leases, hosts: readHostIdentity(), logger, metrics });
});

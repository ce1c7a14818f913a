/**
 * Host routes (granted to the hosts' instance role): GET /v1/config, PUT /v1/lease,
 * DELETE /v1/lease. Wiring only; the logic is LeaseService.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { createDependencies } from '../shared/adapters/dependencies.js';
import { readHostIdentity } from '../shared/adapters/environment.js';
import { lazyHandler } from '../shared/adapters/lazy-handler.js';
import { logger, metrics } from '../shared/adapters/observability.js';
import type { HostIdentityPolicy } from '../shared/caller-identity.js';
import { NotFoundError, VpcLeaseError } from '../shared/errors.js';
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

export function buildLeaseHandler(deps: LeaseHandlerDependencies) {
  const route = async (event: HttpEvent): Promise<HttpResult> => {
    const { routeKey } = routeOf(event);
    switch (routeKey) {
      case `GET ${HOST_PATHS.config}`: {
        callerInstanceId(event, deps.hosts);
        const { config } = await deps.leases.getConfig();
        return json(200, toFlannelJson(config));
      }
      case `PUT ${HOST_PATHS.lease}`: {
        const instanceId = callerInstanceId(event, deps.hosts);
        deps.logger.appendKeys({ instanceId });
        const body = jsonObjectBody(event, { required: true })!;
        const { privateIp, previousSubnet } = stringFields(body, {
          required: ['privateIp'],
          optional: ['previousSubnet'],
        });
        try {
          const { lease, config, outcome } = await deps.leases.acquire(instanceId, {
            privateIp: privateIp!,
            previousSubnet,
          });
          if (outcome === 'granted') deps.metrics?.addMetric('LeasesGranted', MetricUnit.Count, 1);
          return json(200, leaseToJson(lease, config));
        } catch (error) {
          if (
            error instanceof VpcLeaseError &&
            (error.code === 'RouteLimitExceeded' || error.code === 'SubnetsExhausted')
          ) {
            deps.metrics?.addMetric('LeasesRefused', MetricUnit.Count, 1);
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
      default:
        throw new NotFoundError(
          `No route ${routeKey}: host routes are GET /v1/config, PUT /v1/lease, DELETE /v1/lease.`,
        );
    }
  };

  return httpHandler(deps, route);
}

export const handler = lazyHandler(() => {
  const { leases } = createDependencies();
  return buildLeaseHandler({ leases, hosts: readHostIdentity(), logger, metrics });
});

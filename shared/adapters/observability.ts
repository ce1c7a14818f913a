/**
 * Powertools logger and metrics, one of each per Lambda process. Metrics go out as EMF
 * log lines (no API call); namespace and service come from POWERTOOLS_* variables.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Logger as CorePortLogger } from '../ports.js';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'vpc-lease' });

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'VpcLease',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'vpc-lease',
});

export { MetricUnit };

/**
 * Every metric the functions publish (EMF, namespace POWERTOOLS_METRICS_NAMESPACE), by the
 * name CloudWatch shows. Each carries Powertools' `service` dimension; the dimensions below
 * come on top where noted. The dashboard and the alarms in serverless.yml name these.
 */
export const METRIC_NAMES = {
  /** lease function: a lease granted or moved (a renewal is not counted) */
  leasesGranted: 'LeasesGranted',
  /** lease function: PUT /v1/lease answered 4xx, dimension ErrorCode (RouteLimitExceeded, TooManyRequests, ...) */
  leasesRefused: 'LeasesRefused',
  /** admin function: a lease revoked by an operator */
  leasesRevoked: 'LeasesRevoked',
  /** reconcile function: changes made by one sweep */
  reconcileChanges: 'ReconcileChanges',
  /** reconcile function: percent of RouteLimit in use, dimension RouteTableId */
  routeTableUtilisation: 'RouteTableUtilisation',
} as const;

export const METRIC_DIMENSIONS = {
  /** Powertools' default dimension: the service name (POWERTOOLS_SERVICE_NAME) */
  service: 'service',
  errorCode: 'ErrorCode',
  routeTableId: 'RouteTableId',
} as const;

/**
 * One LeasesRefused data point with the answer's error code as its dimension, published at
 * once as its own EMF line (the request's other metrics keep only the service dimension).
 * Any code counts, so a refusal the code base adds later shows up without a change here.
 */
export function countRefusedLease(metrics: Metrics, errorCode: string): void {
  const single = metrics.singleMetric();
  single.addDimension(METRIC_DIMENSIONS.errorCode, errorCode);
  single.addMetric(METRIC_NAMES.leasesRefused, MetricUnit.Count, 1);
}

/** The logger shape the core accepts (ports.ts), under the name the bench and older callers use. */
export type CoreLogger = CorePortLogger;

export const coreLogger = (log: Logger = logger): CoreLogger => ({
  info: (message, extra) => log.info(message, { ...extra }),
  warn: (message, extra) => log.warn(message, { ...extra }),
  error: (message, extra) => log.error(message, { ...extra }),
});

/**
 * Powertools logger and metrics, one of each per Lambda process. Metrics go out as EMF
 * log lines (no API call); namespace and service come from POWERTOOLS_* variables.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'vpc-lease' });

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'VpcLease',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'vpc-lease',
});

export { MetricUnit };

/** The logger shape the core accepts (a subset of Powertools' Logger). */
export interface CoreLogger {
  info(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
  error(message: string, extra?: object): void;
}

export const coreLogger = (log: Logger = logger): CoreLogger => ({
  info: (message, extra) => log.info(message, { ...extra }),
  warn: (message, extra) => log.warn(message, { ...extra }),
  error: (message, extra) => log.error(message, { ...extra }),
});

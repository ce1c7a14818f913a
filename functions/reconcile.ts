/**
 * Scheduled (rate 5 minutes) and on demand: repairs drift between the leases and the
 * route tables, reclaims expired leases, and publishes route-table utilisation.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createDependencies } from '../shared/adapters/dependencies.js';
import { lazyHandler } from '../shared/adapters/lazy-handler.js';
import { logger, METRIC_DIMENSIONS, METRIC_NAMES, metrics } from '../shared/adapters/observability.js';
import type { ConfigService } from '../shared/config-service.js';
import type { ReconcileReportJson } from '../shared/http/contract.js';
import { reconcileReportToJson } from '../shared/http/mappers.js';
import type { Reconciler } from '../shared/reconciler.js';

export interface ReconcileHandlerDependencies {
  reconciler: Pick<Reconciler, 'reconcile'>;
  configs: Pick<ConfigService, 'get'>;
  logger: Logger;
  metrics?: Metrics;
}

export function buildReconcileHandler(deps: ReconcileHandlerDependencies) {
  const chain = middy<unknown, ReconcileReportJson, Error, Context>().use(
    injectLambdaContext(deps.logger, { resetKeys: true }),
  );
  if (deps.metrics) chain.use(logMetrics(deps.metrics));
  return chain.handler(async () => {
    const { config } = await deps.configs.get();
    const report = reconcileReportToJson(await deps.reconciler.reconcile(config));
    deps.logger.debug('reconcile report', { report });
    if (deps.metrics) publishMetrics(deps.metrics, report);
    return report;
  });
}

export function publishMetrics(metrics: Metrics, report: ReconcileReportJson): void {
  metrics.addMetric(METRIC_NAMES.reconcileChanges, MetricUnit.Count, report.changes.length);
  for (const table of report.usage ?? []) {
    const single = metrics.singleMetric();
    single.addDimension(METRIC_DIMENSIONS.routeTableId, table.routeTableId);
    single.addMetric(
      METRIC_NAMES.routeTableUtilisation,
      MetricUnit.Percent,
      (100 * (table.limit - table.free)) / table.limit,
    );
  }
}

export const handler = lazyHandler(() => {
  const { reconciler, configs } = createDependencies();
  return buildReconcileHandler({ reconciler, configs, logger, metrics });
});

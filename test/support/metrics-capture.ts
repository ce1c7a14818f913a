/**
 * A Powertools Metrics that keeps the EMF documents it would print, single metrics
 * included, instead of printing them: the exact lines a Lambda would write to CloudWatch.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';

export interface EmfDocument {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [field: string]: unknown;
}

/** One published data point: metric name, value and every dimension with its value. */
export interface DataPoint {
  namespace: string;
  name: string;
  value: unknown;
  dimensions: Record<string, string>;
}

type Printer = { console: { log: (line: string) => void } };

export class CapturingMetrics extends Metrics {
  readonly documents: EmfDocument[];

  constructor(documents: EmfDocument[] = []) {
    super({ namespace: 'VpcLease', serviceName: 'vpc-lease' });
    this.documents = documents;
    capture(this, documents);
  }

  override singleMetric(): Metrics {
    return capture(super.singleMetric(), this.documents);
  }

  /** Every data point published so far, in order. */
  points(): DataPoint[] {
    return this.documents.flatMap((doc) =>
      doc._aws.CloudWatchMetrics.flatMap((directive) =>
        directive.Metrics.map((metric) => ({
          namespace: directive.Namespace,
          name: metric.Name,
          value: doc[metric.Name],
          dimensions: Object.fromEntries(
            (directive.Dimensions[0] ?? []).map((dimension) => [dimension, String(doc[dimension])]),
          ),
        })),
      ),
    );
  }

  clear(): void {
    this.documents.length = 0;
  }
}

function capture(metrics: Metrics, documents: EmfDocument[]): Metrics {
  (metrics as unknown as Printer).console = {
    log: (line) => documents.push(JSON.parse(line) as EmfDocument),
  };
  return metrics;
}

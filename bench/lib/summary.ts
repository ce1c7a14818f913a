/**
 * The bench's machine-readable result: its last line is `BENCH_SUMMARY ` + one JSON object
 * of this shape (the project's design notes fix it), so that CI and later sessions can
 * compare runs without parsing the tables. Strategy names are the tables' labels; ours
 * contains `ours`.
 */
import { baselineOf, type ColdStartRow, isBaseline } from './cold-start.js';
import type { ConvergenceResult } from './convergence.js';
import { ratio } from './stats.js';
import type { StormResult } from './storm.js';

export const SUMMARY_PREFIX = 'BENCH_SUMMARY ';

export interface BenchSummary {
  readonly storm: readonly {
    readonly n: number;
    readonly strategy: string;
    readonly granted: number;
    readonly grantAttemptsPerLease: number;
    readonly dynamodbRequestsPerLease: number;
  }[];
  readonly convergence: readonly {
    readonly n: number;
    readonly tables: number;
    readonly vsFloor: number;
    readonly leasesLost: number;
    readonly invocationsOverTimeout: number;
    readonly motoP50Ms: { readonly dynamodb: number; readonly ec2: number };
  }[];
  readonly coldStart: readonly {
    readonly function: string;
    readonly sdk: 'bundled' | 'external';
    readonly vsBaseline: number;
  }[];
}

/** Rounded for reading; NaN (no sample, a zero floor) becomes null in JSON. */
const round = (value: number, digits: number): number => Number(value.toFixed(digits));

export function benchSummary(input: {
  storm: readonly StormResult[];
  convergence: readonly ConvergenceResult[];
  coldStart: readonly ColdStartRow[];
  strategyLabel: (result: StormResult) => string;
}): BenchSummary {
  return {
    storm: input.storm.map((r) => ({
      n: r.n,
      strategy: input.strategyLabel(r),
      granted: r.granted,
      grantAttemptsPerLease: round(r.grantAttemptsPerLease, 3),
      dynamodbRequestsPerLease: round(r.dynamoPerLease, 3),
    })),
    convergence: input.convergence.map((r) => ({
      n: r.n,
      tables: r.tables,
      vsFloor: round(ratio(r.routesCompleteSeconds, r.floorSeconds), 3),
      leasesLost: r.leasesLost,
      invocationsOverTimeout: r.invocationsOverTimeout,
      motoP50Ms: { dynamodb: round(r.engineP50Ms.dynamo, 1), ec2: round(r.engineP50Ms.ec2, 1) },
    })),
    coldStart: input.coldStart
      .filter((r) => !isBaseline(r.name))
      .map((r) => ({
        function: r.name,
        sdk: r.packaging === 'sdk-bundled' ? ('bundled' as const) : ('external' as const),
        // against the function's own baseline: for the lease function, the SDK-only bundle
        // that sends the same 7 requests (cold-start-baseline-grant.ts)
        vsBaseline: round(ratio(r.totalMs, baselineOf(input.coldStart, r)?.totalMs ?? Number.NaN), 3),
      })),
  };
}

/** The last line of the bench's output. */
export const summaryLine = (summary: BenchSummary): string => `${SUMMARY_PREFIX}${JSON.stringify(summary)}`;

/**
 * A Powertools Logger that keeps what it would print instead of printing it: the exact
 * JSON lines a Lambda would write to CloudWatch, with their level. Tests assert on them
 * (no error-level line, no stack trace) without spying on the code under test.
 */
import { Logger, type LogItem, LogLevelThreshold } from '@aws-lambda-powertools/logger';

export interface CapturedLine {
  /** DEBUG, INFO, WARN, ERROR, CRITICAL */
  readonly level: string;
  /** the line as it would be printed */
  readonly text: string;
}

const LEVELS: ReadonlyMap<number, string> = new Map(
  Object.entries(LogLevelThreshold).map(([name, threshold]) => [threshold, name]),
);

export class CapturingLogger extends Logger {
  readonly lines: CapturedLine[] = [];

  constructor() {
    super({ serviceName: 'vpc-lease-test', logLevel: 'DEBUG' });
  }

  protected override printLog(logLevel: number, log: LogItem): void {
    log.prepareForPrint();
    this.lines.push({
      level: LEVELS.get(logLevel) ?? String(logLevel),
      text: JSON.stringify(log.getAttributes(), this.getJsonReplacer()),
    });
  }

  /** Lines at ERROR or above. */
  errors(): CapturedLine[] {
    return this.lines.filter((l) => l.level === 'ERROR' || l.level === 'CRITICAL');
  }

  /** Lines that carry a stack trace (a `stack` attribute or a V8 frame). */
  withStackTraces(): CapturedLine[] {
    return this.lines.filter((l) => /"stack"\s*:|\\n\s+at /.test(l.text));
  }

  clear(): void {
    this.lines.length = 0;
  }
}

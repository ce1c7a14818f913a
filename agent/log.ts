/**
 * The agent's log: one line per event on stderr, either JSON (for journald and log
 * shippers) or `time LEVEL message key=value` (for a person at a terminal).
 * stdout stays free for --help and --version.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  format: LogFormat;
  /** lowest level written; default info */
  level?: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: LoggerOptions): Logger {
  const minimum = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const emit =
    (level: LogLevel) =>
    (message: string, fields: LogFields = {}) => {
      if (RANK[level] < minimum) return;
      const time = now().toISOString();
      const plain = plainFields(fields);
      write(
        options.format === 'json'
          ? `${JSON.stringify({ time, level, message, ...plain })}\n`
          : `${time} ${level.toUpperCase().padEnd(5)} ${message}${textFields(plain)}\n`,
      );
    };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that drops everything: for tests that do not look at the log. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Errors become their message (and code/status when they have one), never a stack: logs are read by people. */
function plainFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = value instanceof Error ? errorSummary(value) : value;
  }
  return out;
}

function errorSummary(error: Error): string {
  const { code, status } = error as { code?: unknown; status?: unknown };
  const tags = [status, code].filter((t) => t !== undefined && t !== 0).join(' ');
  return tags ? `${error.message} [${tags}]` : error.message;
}

function textFields(fields: LogFields): string {
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    out += ` ${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`;
  }
  return out;
}

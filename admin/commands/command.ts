/**
 * What every admin command is: its words, its arguments, its own flags, its help, and a
 * `run` that gets everything else (the API client, the output, the clock) from the CLI.
 */
import type { ApiClient } from '../../shared/http/api-client.js';

export interface CommandOption {
  type: 'string' | 'boolean';
  /** shown in help as `--limit <n>` */
  valueName?: string;
  description: string;
}

export interface CommandContext {
  /** the positionals after the command words, one per name in `Command.args` */
  readonly args: readonly string[];
  /** values of the command's own flags */
  readonly options: Readonly<Record<string, string | boolean | undefined>>;
  readonly json: boolean;
  /** epoch milliseconds, fixed for the whole command so one table uses one "now" */
  readonly now: number;
  /** the API client; created on first use, so arguments are validated before any connection setup */
  api(): ApiClient;
  /** stdout */
  out(text: string): void;
  /** a file's text, or stdin's for `-` */
  readInput(source: string): Promise<string>;
}

export interface Command {
  /** `['config', 'set']` for `vpc-lease config set` */
  readonly words: readonly string[];
  /** names of the positional arguments, all required, e.g. `['subnet']` */
  readonly args: readonly string[];
  readonly options?: Readonly<Record<string, CommandOption>>;
  /** one line for the command list */
  readonly summary: string;
  /** the body of `--help`: what it does, what it prints, examples */
  readonly description: string;
  /** resolves to an exit code when success is not plain 0 (import: 6 when leases were skipped) */
  // biome-ignore lint/suspicious/noConfusingVoidType: most commands return nothing and exit 0
  run(context: CommandContext): Promise<void | number>;
}

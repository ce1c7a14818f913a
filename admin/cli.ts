/**
 * `vpc-lease`, the admin CLI: parses the command line, resolves where to connect, runs one
 * command and turns every failure into one stderr line and a documented exit code.
 * `main` takes its streams, environment and clock as arguments, so tests drive the real
 * CLI in-process; admin/bin/vpc-lease.mjs hands it the real ones.
 */
import { readFile } from 'node:fs/promises';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { ApiClient, ApiError, isMissingCredentials } from '../shared/http/api-client.js';
import { COMMANDS, type Command, type CommandContext } from './commands/index.js';
import { type Env, resolveConnection } from './connection.js';
import { ExitCode, exitCodeFor, UsageError } from './exit-codes.js';
import { commandHelp, GLOBAL_OPTIONS, generalHelp, groupHelp, PROGRAM } from './help.js';

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** AWS credentials themselves come from the SDK's provider chain, which reads process.env */
  env: Env;
  /** read by `config set -` */
  stdin: AsyncIterable<string | Uint8Array> & { isTTY?: boolean };
  /** epoch milliseconds; tests fix it to check relative expiry times */
  now: () => number;
  /** overrides the SDK's default provider chain (tests sign with fixed keys) */
  credentials?: AwsCredentialIdentityProvider;
}

type Invocation =
  | { kind: 'help'; text: string }
  | { kind: 'run'; command: Command; args: string[]; values: ParsedValues };

type ParsedValues = Record<string, string | boolean | undefined>;

export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<ExitCode> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (error) {
    return reportFailure(error, { stderr, hint: `Run "${PROGRAM} --help" for usage.` });
  }
  if (invocation.kind === 'help') {
    stdout.write(invocation.text);
    return ExitCode.Ok;
  }

  const { command, args, values } = invocation;
  const env = io.env ?? process.env;
  const local = values.local === true;
  let client: ApiClient | undefined;
  const context: CommandContext = {
    args,
    options: values,
    json: values.json === true,
    now: io.now?.() ?? Date.now(),
    out: (text) => {
      stdout.write(text);
    },
    api: () => {
      client ??= connect(values, env, io.credentials);
      return client;
    },
    readInput: (source) => readInput(source, io.stdin ?? process.stdin, stderr),
  };
  try {
    return ((await command.run(context)) ?? ExitCode.Ok) as ExitCode;
  } catch (error) {
    return reportFailure(error, { stderr, hint: hintFor(error, command, local) });
  }
}

/** The line after the error that says what to do next, when there is one. */
function hintFor(error: unknown, command: Command, local: boolean): string | undefined {
  if (error instanceof UsageError) return `Run "${PROGRAM} ${command.words.join(' ')} --help" for usage.`;
  if (!(error instanceof ApiError)) return undefined;
  if (error.status === 0 && local) return 'Is the local stack running? Start it with "npm start".';
  if (error.status === 404 && command.args.includes('subnet')) {
    return `Run "${PROGRAM}${local ? ' --local' : ''} leases" to see which subnets are leased.`;
  }
  if (error.retryable) {
    // also API Gateway's own bare 503/500 when a function ran out of time
    const when = error.retryAfterSeconds === undefined ? 'shortly' : `in ${error.retryAfterSeconds} s`;
    return `This is temporary (the API, or AWS behind it, was unavailable or too slow): run the command again ${when}.`;
  }
  return undefined;
}

function parseInvocation(argv: readonly string[]): Invocation {
  const optionConfig: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, option] of Object.entries(GLOBAL_OPTIONS)) {
    optionConfig[name] = { type: option.type, ...(option.short ? { short: option.short } : {}) };
  }
  for (const command of COMMANDS) {
    for (const [name, option] of Object.entries(command.options ?? {}))
      optionConfig[name] = { type: option.type };
  }

  let values: ParsedValues;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: optionConfig,
      allowPositionals: true,
      strict: true,
    });
    // no option is declared `multiple`, so no value is an array
    values = parsed.values as ParsedValues;
    positionals = parsed.positionals;
  } catch (error) {
    // node:util's messages name the flag; anything else it throws is a bug, not a usage error
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((error as Error).message);
    throw error;
  }

  let wantsHelp = values.help === true;
  if (positionals[0] === 'help') {
    wantsHelp = true;
    positionals = positionals.slice(1);
  }
  if (positionals.length === 0) {
    if (wantsHelp) return { kind: 'help', text: generalHelp() };
    throw new UsageError('No command given.');
  }

  const command = findCommand(positionals);
  if (command === undefined) {
    const [first, second] = positionals;
    const isGroup = COMMANDS.some((c) => c.words.length > 1 && c.words[0] === first);
    if (isGroup && wantsHelp) return { kind: 'help', text: groupHelp(first!) };
    if (isGroup) {
      const members = COMMANDS.filter((c) => c.words[0] === first).map((c) => c.words[1]);
      throw new UsageError(
        second === undefined
          ? `"${first}" needs a subcommand: ${members.join(' or ')}.`
          : `Unknown command "${first} ${second}"; expected ${members.map((m) => `"${first} ${m}"`).join(' or ')}.`,
      );
    }
    throw new UsageError(`Unknown command "${first}".`);
  }
  if (wantsHelp) return { kind: 'help', text: commandHelp(command) };

  const args = positionals.slice(command.words.length);
  const name = command.words.join(' ');
  if (args.length < command.args.length) {
    throw new UsageError(`"${name}" needs ${command.args.map((a) => `<${a}>`).join(' ')}.`);
  }
  if (args.length > command.args.length) {
    throw new UsageError(`Unexpected argument "${args[command.args.length]}" for "${name}".`);
  }
  for (const [flag, value] of Object.entries(values)) {
    if (value !== undefined && !(flag in GLOBAL_OPTIONS) && !(flag in (command.options ?? {}))) {
      throw new UsageError(`--${flag} is not a flag of "${name}".`);
    }
  }
  return { kind: 'run', command, args, values };
}

/** The command whose words start the positionals, longest first (`config set` before `config`). */
function findCommand(positionals: readonly string[]): Command | undefined {
  return [...COMMANDS]
    .sort((a, b) => b.words.length - a.words.length)
    .find((command) => command.words.every((word, i) => positionals[i] === word));
}

function connect(values: ParsedValues, env: Env, credentials?: AwsCredentialIdentityProvider): ApiClient {
  const options = resolveConnection(
    {
      apiUrl: stringValue(values['api-url']),
      region: stringValue(values.region),
      local: values.local === true,
    },
    env,
    credentials,
  );
  try {
    return new ApiClient(options);
  } catch (error) {
    // the client refuses a malformed URL, or --local against a non-loopback one: the caller's to fix
    throw new UsageError((error as Error).message, { cause: error });
  }
}

async function readInput(source: string, stdin: CliIo['stdin'], stderr: CliIo['stderr']): Promise<string> {
  if (source === '-') {
    if (stdin.isTTY) stderr.write('Reading from stdin; finish with Ctrl-D.\n');
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of stdin)
      text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    return text + decoder.decode();
  }
  try {
    return await readFile(source, 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read ${source}: ${(error as Error).message}`, { cause: error });
  }
}

/** One line a person can act on, never a stack trace; the exit code tells scripts the rest. */
function reportFailure(
  error: unknown,
  options: { stderr: CliIo['stderr']; hint?: string | undefined },
): ExitCode {
  const lines: string[] = [];
  if (error instanceof ApiError) {
    // Retry-After matters to whoever reruns the command; ThrottledError's message already carries it
    const retry =
      error.retryAfterSeconds === undefined || /retry after/i.test(error.message)
        ? ''
        : ` (retry after ${error.retryAfterSeconds} s)`;
    lines.push(`error: ${error.code}: ${error.message}${retry}`);
  } else if (isMissingCredentials(error)) {
    lines.push(
      `error: No AWS credentials to sign with: ${(error as Error).message.replace(/[^.]$/, '$&.')} ` +
        'Configure the operator\'s credentials (AWS_PROFILE, "aws sso login", environment variables) or use --local.',
    );
  } else {
    lines.push(`error: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (options.hint) lines.push(options.hint);
  options.stderr.write(`${lines.join('\n')}\n`);
  return exitCodeFor(error);
}

const stringValue = (value: string | boolean | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

/** The text of `--help`: generated from the command table so it cannot drift from what parses. */
import { COMMANDS, type Command, type CommandOption } from './commands/index.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

export const PROGRAM = 'vpc-lease';

export interface GlobalOption extends CommandOption {
  short?: string;
}

export const GLOBAL_OPTIONS: Readonly<Record<string, GlobalOption>> = {
  'api-url': {
    type: 'string',
    valueName: 'url',
    description: 'the vpc-lease HTTP API URL (env VPCLEASE_API_URL)',
  },
  region: {
    type: 'string',
    valueName: 'region',
    description: 'AWS region to sign for (env AWS_REGION; else read from an execute-api URL)',
  },
  local: {
    type: 'boolean',
    description:
      'use the local stack (npm start): http://127.0.0.1:$VPCLEASE_API_PORT\n' +
      '(default port 3000), unsigned, as the local operator identity',
  },
  json: { type: 'boolean', description: "print the API's JSON (pretty) instead of tables" },
  help: { type: 'boolean', short: 'h', description: 'show help for vpc-lease or a command' },
};

export const synopsis = (command: Command): string =>
  [PROGRAM, ...command.words, ...command.args.map((arg) => `<${arg}>`)].join(' ');

export function generalHelp(): string {
  return `${PROGRAM}: the vpc-lease admin CLI. Who has which subnet, how full the route tables
are, the network config, and repairs, through the admin routes of the vpc-lease API.
Requests are signed with your standard AWS credentials (SigV4), or sent to the local
stack with --local.

Usage: ${PROGRAM} <command> [flags]

Commands:
${commandList(COMMANDS)}

${formatOptions('Global flags', GLOBAL_OPTIONS)}

${EXIT_CODES_HELP}

Errors go to stderr as "error: <Code>: <message>"; stdout then stays empty.
Run "${PROGRAM} <command> --help" for a command's details.
`;
}

export function commandHelp(command: Command): string {
  const ownOptions = command.options && Object.keys(command.options).length > 0 ? command.options : undefined;
  return `Usage: ${synopsis(command)} [flags]

${command.description}
${ownOptions ? `\n${formatOptions('Flags', ownOptions)}\n` : ''}
${formatOptions('Global flags', GLOBAL_OPTIONS)}

${EXIT_CODES_HELP}
`;
}

/** `vpc-lease config --help`: the commands under a group word. */
export function groupHelp(group: string): string {
  const members = COMMANDS.filter((command) => command.words[0] === group && command.words.length > 1);
  return `Usage: ${PROGRAM} ${group} <${members.map((c) => c.words[1]).join('|')}> [flags]

${commandList(members)}

Run "${PROGRAM} ${group} <command> --help" for details.
`;
}

function commandList(commands: readonly Command[]): string {
  const names = commands.map((command) => synopsis(command).slice(PROGRAM.length + 1));
  const width = Math.max(...names.map((name) => name.length));
  return commands.map((command, i) => `  ${names[i]!.padEnd(width)}  ${command.summary}`).join('\n');
}

function formatOptions(title: string, options: Readonly<Record<string, GlobalOption>>): string {
  const flags = Object.entries(options).map(([name, option]) => {
    const value = option.type === 'string' ? ` <${option.valueName ?? 'value'}>` : '';
    return `${option.short ? `-${option.short}, ` : ''}--${name}${value}`;
  });
  const width = Math.max(...flags.map((flag) => flag.length));
  const lines = Object.values(options).map((option, i) =>
    option.description
      .split('\n')
      .map((text, line) => `  ${(line === 0 ? flags[i]! : '').padEnd(width)}  ${text}`)
      .join('\n'),
  );
  return `${title}:\n${lines.join('\n')}`;
}

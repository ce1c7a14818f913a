/** `config get`, `config set <file|->`: the flannel-style network config (etcdctl get/set of old). */
import { ADMIN_PATHS } from '../../shared/http/contract.js';
import type { FlannelNetworkConfig } from '../../shared/network-config.js';
import { UsageError } from '../exit-codes.js';
import { formatJson } from '../format.js';
import type { Command } from './command.js';

export const configGetCommand: Command = {
  words: ['config', 'get'],
  args: [],
  summary: 'print the published network config (JSON)',
  description: `Prints the published network config as JSON, with every default filled in.
The output is valid input for "config set", so editing is:
  vpc-lease config get > network.json && $EDITOR network.json && vpc-lease config set network.json`,
  async run(context) {
    const { body } = await context.api().request<FlannelNetworkConfig>('GET', ADMIN_PATHS.config);
    context.out(formatJson(body));
  },
};

export const configSetCommand: Command = {
  words: ['config', 'set'],
  args: ['file|-'],
  summary: 'publish a network config from a file, or from stdin with -',
  description: `Publishes the network config in <file|-> (a file, or stdin for -), flannel's JSON:
  {"Network": "10.244.0.0/16", "Backend": {"Type": "aws-vpc", "RouteLimit": 50}}
The file must be JSON; everything else is validated by the API, which refuses (and
changes nothing) a malformed or misaligned config (exit 1) or a change that would strand
live leases (exit 4, naming them). Prints the config as published, defaults filled in.`,
  async run(context) {
    const source = context.args[0]!;
    const config = parseJsonInput(await context.readInput(source), source === '-' ? 'stdin' : source);
    const { body } = await context
      .api()
      .request<FlannelNetworkConfig | undefined>('PUT', ADMIN_PATHS.config, {
        body: config,
      });
    if (context.json) {
      if (body !== undefined) context.out(formatJson(body));
      return;
    }
    context.out(`Published the network config.\n${body === undefined ? '' : formatJson(body)}`);
  },
};

function parseJsonInput(text: string, origin: string): unknown {
  if (text.trim() === '') throw new UsageError(`${origin} is empty; expected the network config as JSON.`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${origin} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

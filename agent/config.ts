/**
 * The agent's configuration: every flag, its VPCLEASE_* environment fallback, its
 * default and its help text live in one table (AGENT_OPTIONS), from which --help and
 * the parser are both built. Flags win over the environment; the result is validated
 * once into a typed AgentConfig, and every refusal says which flag or variable to fix.
 */
import { parseArgs } from 'node:util';
import { isIp } from '../shared/cidr.js';
import { isLoopbackUrl, nonEmpty } from '../shared/http/api-client.js';
import { INSTANCE_ID } from '../shared/lease.js';
import type { LogFormat, LogLevel } from './log.js';

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';

export interface AgentConfig {
  apiUrl: string;
  /** absent: AWS_REGION / AWS_DEFAULT_REGION, then the instance identity document */
  region?: string;
  subnetFile: string;
  renewMarginMs: number;
  /** masquerade (iptables) and write FLANNEL_IPMASQ=true; false leaves it to the CNI plugin */
  ipMasq: boolean;
  /** absent: the MTU of the interface holding the private IP */
  mtu?: number;
  once: boolean;
  releaseOnExit: boolean;
  /** 0 = no health server */
  healthzPort: number;
  healthzIp: string;
  /** local mode (the local stack): this instance id instead of IMDS, unsigned identity header */
  localInstanceId?: string;
  /** required in local mode; on EC2 overrides IMDS local-ipv4 (e.g. an address of a secondary ENI) */
  privateIp?: string;
  imdsEndpoint?: string;
  logFormat: LogFormat | 'auto';
  logLevel: LogLevel;
}

type Kind = 'string' | 'boolean';

interface OptionSpec {
  flag: string;
  env?: string;
  kind: Kind;
  placeholder?: string;
  defaultText?: string;
  help: string;
}

/** The one list of options: --help and docs/agent.md are written from it. */
export const AGENT_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'api-url',
    env: 'VPCLEASE_API_URL',
    kind: 'string',
    placeholder: 'URL',
    help: 'the lease API, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com (required)',
  },
  {
    flag: 'region',
    env: 'VPCLEASE_REGION',
    kind: 'string',
    placeholder: 'REGION',
    defaultText: 'AWS_REGION, else the instance identity document',
    help: 'AWS region of the API, for SigV4 signing',
  },
  {
    flag: 'subnet-file',
    env: 'VPCLEASE_SUBNET_FILE',
    kind: 'string',
    placeholder: 'PATH',
    defaultText: DEFAULT_SUBNET_FILE,
    help: "where to write flannel's subnet.env",
  },
  {
    flag: 'renew-margin',
    env: 'VPCLEASE_RENEW_MARGIN',
    kind: 'string',
    placeholder: 'MINUTES',
    defaultText: '60',
    help: 'renew the lease this many minutes before it expires',
  },
  {
    flag: 'ip-masq',
    env: 'VPCLEASE_IP_MASQ',
    kind: 'boolean',
    defaultText: 'on on EC2, off in local mode',
    help: "masquerade as flanneld's --ip-masq: traffic from the network to outside it leaves with the host's address, traffic inside it keeps its source (iptables chain VPCLEASE-POSTRTG; needs CAP_NET_ADMIN); writes FLANNEL_IPMASQ=true",
  },
  {
    flag: 'no-ip-masq',
    kind: 'boolean',
    help: 'install no masquerade rules and write FLANNEL_IPMASQ=false: the CNI plugin masquerades instead (same as VPCLEASE_IP_MASQ=false)',
  },
  {
    flag: 'mtu',
    env: 'VPCLEASE_MTU',
    kind: 'string',
    placeholder: 'BYTES',
    defaultText: 'MTU of the interface holding the private IP',
    help: 'FLANNEL_MTU to write',
  },
  {
    flag: 'once',
    env: 'VPCLEASE_ONCE',
    kind: 'boolean',
    help: 'acquire the lease, write the subnet file and exit (no renewals)',
  },
  {
    flag: 'release-on-exit',
    env: 'VPCLEASE_RELEASE_ON_EXIT',
    kind: 'boolean',
    help: 'on SIGTERM/SIGINT release the lease (DELETE /v1/lease) and remove the subnet file',
  },
  {
    flag: 'healthz-port',
    env: 'VPCLEASE_HEALTHZ_PORT',
    kind: 'string',
    placeholder: 'PORT',
    defaultText: '0 (off)',
    help: 'serve /healthz (loop running) and /readyz (subnet file written, lease live) on this port',
  },
  {
    flag: 'healthz-ip',
    env: 'VPCLEASE_HEALTHZ_IP',
    kind: 'string',
    placeholder: 'IP',
    defaultText: '127.0.0.1',
    help: 'address the health server binds',
  },
  {
    flag: 'local-instance-id',
    env: 'VPCLEASE_LOCAL_INSTANCE_ID',
    kind: 'string',
    placeholder: 'ID',
    help: 'local mode: act as this instance (skips IMDS, sends the serverless-offline identity header unsigned; loopback API only)',
  },
  {
    flag: 'private-ip',
    env: 'VPCLEASE_PRIVATE_IP',
    kind: 'string',
    placeholder: 'IP',
    defaultText: 'IMDS local-ipv4',
    help: "the host's private IP (required in local mode)",
  },
  {
    flag: 'imds-endpoint',
    env: 'VPCLEASE_IMDS_ENDPOINT',
    kind: 'string',
    placeholder: 'URL',
    defaultText: 'AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254',
    help: 'instance metadata service',
  },
  {
    flag: 'log-format',
    env: 'VPCLEASE_LOG_FORMAT',
    kind: 'string',
    placeholder: 'auto|json|text',
    defaultText: 'auto: text on a terminal, else json',
    help: 'log lines on stderr',
  },
  {
    flag: 'log-level',
    env: 'VPCLEASE_LOG_LEVEL',
    kind: 'string',
    placeholder: 'debug|info|warn|error',
    defaultText: 'info',
    help: 'lowest level logged',
  },
  { flag: 'help', kind: 'boolean', help: 'print this help and exit' },
  { flag: 'version', kind: 'boolean', help: 'print the version and exit' },
];

/** A flag or variable a person has to fix; the CLI prints the message and exits with status 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type ParsedCommand = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: AgentConfig };

export function parseAgentArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(AGENT_OPTIONS.map((o) => [o.flag, { type: o.kind }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError(
      `${(error as Error).message.replace(/\.$/, '')}. Run with --help for the list of flags.`,
    );
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const read = new OptionReader(values, env);
  const apiUrl = read.string('api-url');
  if (apiUrl === undefined) {
    throw new ConfigError(
      'The lease API URL is missing: pass --api-url (or set VPCLEASE_API_URL), e.g. https://abc123.execute-api.eu-west-1.amazonaws.com, or http://127.0.0.1:3000 for the local stack.',
    );
  }
  try {
    const url = new URL(apiUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(
      `${read.source('api-url')} "${apiUrl}" is not an http(s) URL; expected like https://abc123.execute-api.eu-west-1.amazonaws.com.`,
    );
  }

  const localInstanceId = read.string('local-instance-id');
  const privateIp = read.string('private-ip');
  if (privateIp !== undefined && !isIp(privateIp)) {
    throw new ConfigError(
      `${read.source('private-ip')} "${privateIp}" is not an IPv4 address like 10.0.1.23.`,
    );
  }
  if (localInstanceId !== undefined) {
    if (!INSTANCE_ID.test(localInstanceId)) {
      throw new ConfigError(
        `${read.source('local-instance-id')} "${localInstanceId}" is not an instance id; expected i- and 8 or 17 hex digits, like i-0123456789abcdef0 (the id of an instance launched in the local VPC).`,
      );
    }
    if (privateIp === undefined) {
      throw new ConfigError(
        'Local mode needs the private IP too: pass --private-ip (or VPCLEASE_PRIVATE_IP) with the address of the local instance.',
      );
    }
    if (!isLoopbackUrl(apiUrl)) {
      throw new ConfigError(
        `Local mode (--local-instance-id) sends an unsigned identity header that only the local stack accepts, so it only talks to a loopback API URL such as http://127.0.0.1:3000, not ${apiUrl}. Against AWS, drop --local-instance-id: the agent then reads its identity from IMDS and signs with SigV4.`,
      );
    }
  }

  const once = read.boolean('once');
  const releaseOnExit = read.boolean('release-on-exit');
  if (once && releaseOnExit) {
    throw new ConfigError(
      '--once and --release-on-exit together would release the lease right after writing the subnet file; pick one.',
    );
  }

  const renewMarginMinutes = read.number('renew-margin', 60, { min: 0, integer: false });
  const mtuValue = read.string('mtu');
  const mtu =
    mtuValue === undefined ? undefined : read.number('mtu', 0, { min: 68, max: 65_535, integer: true });
  const imdsEndpoint = read.string('imds-endpoint') ?? nonEmpty(env.AWS_EC2_METADATA_SERVICE_ENDPOINT);

  const config: AgentConfig = {
    apiUrl,
    subnetFile: read.string('subnet-file') ?? DEFAULT_SUBNET_FILE,
    renewMarginMs: Math.round(renewMarginMinutes * 60_000),
    ipMasq: ipMasqOf(read, localInstanceId !== undefined),
    once,
    releaseOnExit,
    healthzPort: read.number('healthz-port', 0, { min: 0, max: 65_535, integer: true }),
    healthzIp: read.string('healthz-ip') ?? '127.0.0.1',
    logFormat: read.choice('log-format', ['auto', 'json', 'text'] as const, 'auto'),
    logLevel: read.choice('log-level', ['debug', 'info', 'warn', 'error'] as const, 'info'),
  };
  const region = read.string('region') ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION);
  if (region !== undefined) config.region = region;
  if (mtu !== undefined) config.mtu = mtu;
  if (localInstanceId !== undefined) config.localInstanceId = localInstanceId;
  if (privateIp !== undefined) config.privateIp = privateIp;
  if (imdsEndpoint !== undefined) config.imdsEndpoint = imdsEndpoint;
  if (!isIp(config.healthzIp)) {
    throw new ConfigError(
      `${read.source('healthz-ip')} "${config.healthzIp}" is not an IPv4 address (127.0.0.1 keeps the health server local).`,
    );
  }
  return { kind: 'run', config };
}

/**
 * --ip-masq / --no-ip-masq, else VPCLEASE_IP_MASQ, else on for a host on EC2 (as flanneld is
 * deployed) and off in local mode, so that an agent run on a laptop or in a test never
 * rewrites that machine's iptables unless asked to.
 */
function ipMasqOf(read: OptionReader, localMode: boolean): boolean {
  const on = read.flagGiven('ip-masq');
  const off = read.flagGiven('no-ip-masq');
  if (on && off) throw new ConfigError('--ip-masq and --no-ip-masq contradict each other; pass one.');
  if (on) return true;
  if (off) return false;
  return read.optionalBoolean('ip-masq') ?? !localMode;
}

/** Looks up one option: the flag if given, else its environment variable. */
class OptionReader {
  constructor(
    private readonly values: Record<string, string | boolean | undefined>,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  source(flag: string): string {
    const spec = specOf(flag);
    return this.values[flag] !== undefined || spec.env === undefined ? `--${flag}` : spec.env;
  }

  string(flag: string): string | undefined {
    const value = this.values[flag];
    if (typeof value === 'string') return nonEmpty(value.trim());
    const envName = specOf(flag).env;
    return envName === undefined ? undefined : nonEmpty(this.env[envName]?.trim());
  }

  boolean(flag: string): boolean {
    return this.optionalBoolean(flag) ?? false;
  }

  /** the flag's own presence on the command line, ignoring its variable */
  flagGiven(flag: string): boolean {
    return this.values[flag] === true;
  }

  /** true/false from the flag or its variable; undefined when neither is set */
  optionalBoolean(flag: string): boolean | undefined {
    if (this.values[flag] === true) return true;
    const envName = specOf(flag).env;
    const raw = envName === undefined ? undefined : nonEmpty(this.env[envName]?.trim().toLowerCase());
    if (raw === undefined) return undefined;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    throw new ConfigError(`${envName}="${raw}" is not a boolean; use true or false.`);
  }

  number(flag: string, fallback: number, range: { min: number; max?: number; integer: boolean }): number {
    const text = this.string(flag);
    if (text === undefined) return fallback;
    const value = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : Number.NaN;
    const ok =
      Number.isFinite(value) &&
      value >= range.min &&
      (range.max === undefined || value <= range.max) &&
      (!range.integer || Number.isInteger(value));
    if (!ok) {
      const kind = range.integer ? 'a whole number' : 'a number';
      const bounds = range.max === undefined ? `>= ${range.min}` : `from ${range.min} to ${range.max}`;
      throw new ConfigError(`${this.source(flag)} "${text}" must be ${kind} ${bounds}.`);
    }
    return value;
  }

  choice<T extends string>(flag: string, choices: readonly T[], fallback: T): T {
    const text = this.string(flag);
    if (text === undefined) return fallback;
    if ((choices as readonly string[]).includes(text)) return text as T;
    throw new ConfigError(`${this.source(flag)} "${text}" must be one of ${choices.join(', ')}.`);
  }
}

function specOf(flag: string): OptionSpec {
  const spec = AGENT_OPTIONS.find((o) => o.flag === flag);
  if (!spec) throw new Error(`unknown option ${flag}`); // a typo in this file, not a user error
  return spec;
}

export function helpText(): string {
  const rows = AGENT_OPTIONS.map((o) => {
    const left = `  --${o.flag}${o.placeholder ? ` ${o.placeholder}` : ''}`;
    const extras = [
      o.env ? `env ${o.env}` : undefined,
      o.defaultText ? `default: ${o.defaultText}` : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    return `${left}\n      ${o.help}${extras ? `\n      (${extras})` : ''}`;
  });
  return [
    'vpc-lease-agent: leases this host a subnet of the overlay network from the vpc-lease API',
    "and writes flannel's subnet.env, then keeps the lease renewed.",
    '',
    'Usage:',
    '  vpc-lease-agent --api-url https://abc123.execute-api.eu-west-1.amazonaws.com [flags]',
    '  vpc-lease-agent --api-url http://127.0.0.1:3000 --local-instance-id i-0123456789abcdef0 \\',
    '                  --private-ip 10.0.1.23 --subnet-file /tmp/subnet.env --once',
    '',
    'Flags (a flag wins over its environment variable):',
    ...rows,
    '',
    'On EC2 the identity comes from IMDSv2 and credentials from the instance profile',
    '(standard AWS SDK chain); every request is signed with SigV4. See docs/agent.md.',
    '',
    'Exit status: 0 stopped or --once done; 1 the API refused this host (the message says why)',
    'or the subnet file cannot be written; 2 a flag or variable is wrong.',
    '',
  ].join('\n');
}

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { main } from '../../agent/cli.js';
import { AGENT_OPTIONS, ConfigError, helpText, parseAgentArgs } from '../../agent/config.js';

const API = ['--api-url', 'https://abc123.execute-api.eu-west-1.amazonaws.com'];

function config(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const command = parseAgentArgs(argv, env);
  if (command.kind !== 'run') throw new Error(`expected run, got ${command.kind}`);
  return command.config;
}

function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseAgentArgs(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('agent flags', () => {
  it('has flannel-like defaults', () => {
    expect(config(API)).toEqual({
      apiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
      subnetFile: '/run/flannel/subnet.env',
      renewMarginMs: 60 * 60_000,
      ipMasq: true,
      once: false,
      releaseOnExit: false,
      healthzPort: 0,
      healthzIp: '127.0.0.1',
      logFormat: 'auto',
      logLevel: 'info',
    });
  });

  it('reads every flag', () => {
    const c = config([
      ...API,
      '--region=eu-west-1',
      '--subnet-file',
      '/tmp/s.env',
      '--renew-margin',
      '90',
      '--ip-masq',
      '--mtu',
      '8950',
      '--once',
      '--healthz-port',
      '8471',
      '--healthz-ip',
      '0.0.0.0',
      '--private-ip',
      '10.0.1.23',
      '--imds-endpoint',
      'http://127.0.0.1:1338',
      '--log-format',
      'json',
      '--log-level',
      'debug',
    ]);
    expect(c).toMatchObject({
      region: 'eu-west-1',
      subnetFile: '/tmp/s.env',
      renewMarginMs: 90 * 60_000,
      ipMasq: true,
      mtu: 8950,
      once: true,
      healthzPort: 8471,
      healthzIp: '0.0.0.0',
      privateIp: '10.0.1.23',
      imdsEndpoint: 'http://127.0.0.1:1338',
      logFormat: 'json',
      logLevel: 'debug',
    });
  });

  it('falls back to VPCLEASE_* variables, and a flag wins over its variable', () => {
    const env = {
      VPCLEASE_API_URL: 'http://127.0.0.1:3000',
      VPCLEASE_SUBNET_FILE: '/tmp/from-env.env',
      VPCLEASE_RENEW_MARGIN: '0.5',
      VPCLEASE_IP_MASQ: 'true',
      VPCLEASE_RELEASE_ON_EXIT: '1',
      VPCLEASE_LOCAL_INSTANCE_ID: 'i-0123456789abcdef0',
      VPCLEASE_PRIVATE_IP: '10.0.1.5',
      VPCLEASE_HEALTHZ_PORT: '9000',
    };
    expect(config([], env)).toMatchObject({
      apiUrl: 'http://127.0.0.1:3000',
      subnetFile: '/tmp/from-env.env',
      renewMarginMs: 30_000,
      ipMasq: true,
      releaseOnExit: true,
      localInstanceId: 'i-0123456789abcdef0',
      privateIp: '10.0.1.5',
      healthzPort: 9000,
    });
    expect(config(['--subnet-file', '/tmp/flag.env'], env).subnetFile).toBe('/tmp/flag.env');
  });

  it('masquerades by default on EC2 and only with --ip-masq in local mode', () => {
    const local = ['--api-url', 'http://127.0.0.1:3000', '--local-instance-id', 'i-0123456789abcdef0'];
    const localMode = [...local, '--private-ip', '10.0.1.5'];
    expect(config(API).ipMasq).toBe(true);
    expect(config([...API, '--no-ip-masq']).ipMasq).toBe(false);
    expect(config(API, { VPCLEASE_IP_MASQ: 'false' }).ipMasq).toBe(false);
    expect(config(localMode).ipMasq).toBe(false);
    expect(config([...localMode, '--ip-masq']).ipMasq).toBe(true);
    expect(config(localMode, { VPCLEASE_IP_MASQ: 'true' }).ipMasq).toBe(true);
    expect(config([...localMode, '--no-ip-masq'], { VPCLEASE_IP_MASQ: 'true' }).ipMasq).toBe(false);
    expect(refusal([...API, '--ip-masq', '--no-ip-masq'])).toContain('--ip-masq and --no-ip-masq contradict');
  });

  it('takes the region from AWS_REGION and the IMDS endpoint from the SDK variable', () => {
    const c = config(API, {
      AWS_REGION: 'us-west-2',
      AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1338',
    });
    expect(c.region).toBe('us-west-2');
    expect(c.imdsEndpoint).toBe('http://127.0.0.1:1338');
  });

  it.each([
    [[], 'pass --api-url (or set VPCLEASE_API_URL)'],
    [['--api-url', 'ftp://x'], 'is not an http(s) URL'],
    [[...API, '--renew-margin=-5'], '--renew-margin "-5" must be a number >= 0'],
    [[...API, '--renew-margin', 'soon'], '--renew-margin "soon" must be a number'],
    [[...API, '--mtu', '20'], '--mtu "20" must be a whole number from 68 to 65535'],
    [[...API, '--healthz-port', '70000'], '--healthz-port'],
    [[...API, '--healthz-ip', 'localhost'], '--healthz-ip "localhost" is not an IPv4 address'],
    [[...API, '--private-ip', '10.0.1'], '--private-ip "10.0.1" is not an IPv4 address'],
    [[...API, '--log-format', 'xml'], 'must be one of auto, json, text'],
    [[...API, '--once', '--release-on-exit'], 'pick one'],
    [[...API, '--nope'], "Unknown option '--nope'"],
    [[...API, 'extra'], 'Run with --help'],
    [
      ['--api-url', 'http://127.0.0.1:3000', '--local-instance-id', 'i-0123456789abcdef0'],
      'needs the private IP',
    ],
    [
      ['--api-url', 'http://127.0.0.1:3000', '--local-instance-id', 'host-1', '--private-ip', '10.0.1.5'],
      'not an instance id',
    ],
  ])('refuses %j with a message saying what to fix', (argv, message) => {
    expect(refusal(argv)).toContain(message);
  });

  it('names the variable when the value came from the environment', () => {
    expect(refusal(API, { VPCLEASE_MTU: 'big' })).toContain('VPCLEASE_MTU "big"');
    expect(refusal(API, { VPCLEASE_ONCE: 'sure' })).toContain('VPCLEASE_ONCE="sure" is not a boolean');
  });

  it('refuses local mode against a non-loopback API URL, saying why and what to do', () => {
    const message = refusal([
      ...API,
      '--local-instance-id',
      'i-0123456789abcdef0',
      '--private-ip',
      '10.0.1.5',
    ]);
    expect(message).toContain('only talks to a loopback API URL');
    expect(message).toContain('drop --local-instance-id');
  });

  it('accepts local mode against 127.0.0.1 and localhost', () => {
    for (const url of ['http://127.0.0.1:3000', 'http://localhost:3000']) {
      expect(
        config(['--api-url', url, '--local-instance-id', 'i-0123456789abcdef0', '--private-ip', '10.0.1.5']),
      ).toMatchObject({ localInstanceId: 'i-0123456789abcdef0' });
    }
  });
});

describe('--help', () => {
  it('documents every flag and its variable', () => {
    const text = helpText();
    for (const option of AGENT_OPTIONS) {
      expect(text).toContain(`--${option.flag}`);
      if (option.env) expect(text).toContain(option.env);
    }
  });

  it('is printed on stdout with exit status 0, even without --api-url', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['--help'], {}, fakeIo(out, err));
    expect(code).toBe(0);
    expect(out.join('')).toContain('--renew-margin MINUTES');
    expect(err).toEqual([]);
  });
});

describe('the CLI', () => {
  it('exits 2 with the message on a bad flag, without a stack trace', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      [
        '--api-url',
        'https://example.com',
        '--local-instance-id',
        'i-0123456789abcdef0',
        '--private-ip',
        '10.0.1.5',
      ],
      {},
      fakeIo(out, err),
    );
    expect(code).toBe(2);
    expect(err.join('')).toMatch(/^vpc-lease-agent: Local mode/);
    expect(err.join('')).not.toContain('    at ');
  });

  it('prints its version', async () => {
    const out: string[] = [];
    expect(await main(['--version'], {}, fakeIo(out, []))).toBe(0);
    expect(out.join('')).toMatch(/^vpc-lease-agent \d+\.\d+\.\d+/);
  });
});

function fakeIo(out: string[], err: string[]) {
  return {
    stdout: (text: string) => void out.push(text),
    stderr: (text: string) => void err.push(text),
    onSignal: () => () => {},
    stderrIsTty: false,
  };
}

describe('docs/agent.md', () => {
  it('documents every flag and variable of --help', async () => {
    const doc = await readFile(new URL('../../docs/agent.md', import.meta.url), 'utf8');
    for (const option of AGENT_OPTIONS) {
      expect(doc).toContain(`--${option.flag}`);
      if (option.env) expect(doc).toContain(option.env);
    }
  });
});

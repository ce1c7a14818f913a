/**
 * vpc-lease-agent: wiring only. Parse the flags, find out who this host is, build the
 * API client, start the health server, run the agent until it finishes or a signal
 * stops it, and turn the outcome into an exit status.
 */
import { readFile } from 'node:fs/promises';
import { ApiClient } from '../shared/http/api-client.js';
import { EXIT_REFUSED, HostAgent } from './agent.js';
import { type AgentConfig, ConfigError, helpText, parseAgentArgs } from './config.js';
import { type HealthServer, startHealthServer } from './healthz.js';
import { resolveIdentity } from './identity.js';
import { httpLeaseApi } from './lease-api.js';
import { createLogger, type Logger } from './log.js';
import { type Masquerade, prepareMasquerade } from './masquerade.js';
import { detectMtu } from './mtu.js';

export const EXIT_USAGE = 2;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** process signals; tests pass an EventEmitter-like stand-in */
  onSignal: (signal: 'SIGTERM' | 'SIGINT', handler: () => void) => () => void;
  stderrIsTty: boolean;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  onSignal: (signal, handler) => {
    process.on(signal, handler);
    return () => process.off(signal, handler);
  },
  stderrIsTty: Boolean(process.stderr.isTTY),
};

export async function main(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CliIo = processIo,
): Promise<number> {
  let config: AgentConfig;
  try {
    const command = parseAgentArgs(argv, env);
    if (command.kind === 'help') {
      io.stdout(helpText());
      return 0;
    }
    if (command.kind === 'version') {
      io.stdout(`vpc-lease-agent ${await packageVersion()}\n`);
      return 0;
    }
    config = command.config;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`vpc-lease-agent: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }

  const log = createLogger({
    format: config.logFormat === 'auto' ? (io.stderrIsTty ? 'text' : 'json') : config.logFormat,
    level: config.logLevel,
    write: io.stderr,
  });

  // The first SIGTERM/SIGINT stops the loop (and releases with --release-on-exit); a second one is impatience.
  const stop = new AbortController();
  const signalled = (name: string) => () => {
    if (stop.signal.aborted) {
      log.warn(`second ${name}: exiting without cleanup`);
      process.exit(130);
    }
    log.info(`${name} received; stopping`);
    stop.abort();
  };
  const unsubscribe = [
    io.onSignal('SIGTERM', signalled('SIGTERM')),
    io.onSignal('SIGINT', signalled('SIGINT')),
  ];
  let health: HealthServer | undefined;
  try {
    return await runAgent(config, log, stop.signal, (server) => {
      health = server;
    });
  } catch (error) {
    log.error('vpc-lease-agent failed unexpectedly; this is a bug, please report it with this log', {
      error,
      stack: error instanceof Error ? error.stack : undefined,
    });
    return EXIT_REFUSED;
  } finally {
    for (const off of unsubscribe) off();
    await health?.close();
  }
}

async function runAgent(
  config: AgentConfig,
  log: Logger,
  signal: AbortSignal,
  onHealthServer: (server: HealthServer) => void,
): Promise<number> {
  let identity: Awaited<ReturnType<typeof resolveIdentity>>;
  try {
    identity = await resolveIdentity(config, { log, signal });
  } catch (error) {
    log.error(`cannot find out which instance this is: ${(error as Error).message}`);
    return EXIT_REFUSED;
  }
  if (signal.aborted) return 0;

  let client: ApiClient;
  try {
    client = new ApiClient({
      apiUrl: config.apiUrl,
      ...(identity.region !== undefined ? { region: identity.region } : {}),
      ...(identity.localIdentityArn !== undefined ? { localIdentityArn: identity.localIdentityArn } : {}),
      userAgent: `vpc-lease-agent/${await packageVersion()}`,
    });
  } catch (error) {
    log.error(`${(error as Error).message}`);
    return EXIT_USAGE;
  }

  let mtu = config.mtu;
  if (mtu === undefined) {
    const detected = await detectMtu(identity.privateIp);
    // Local mode usually leases for a moto instance whose address is on no interface here:
    // the fallback is expected then, not worth a warning on every run.
    if (detected.warning) (identity.localIdentityArn ? log.debug : log.warn)(detected.warning);
    mtu = detected.mtu;
  }

  // Checked before asking for a lease: a host that cannot masquerade must not say FLANNEL_IPMASQ=true.
  let masquerade: Masquerade | undefined;
  if (config.ipMasq) {
    try {
      masquerade = await prepareMasquerade();
    } catch (error) {
      log.error((error as Error).message);
      return EXIT_REFUSED;
    }
  }

  log.info('starting', {
    instanceId: identity.instanceId,
    privateIp: identity.privateIp,
    apiUrl: config.apiUrl,
    mode: identity.localIdentityArn ? 'local' : 'aws',
    subnetFile: config.subnetFile,
    mtu,
    ipMasq: config.ipMasq,
  });

  const agent = new HostAgent({
    api: httpLeaseApi(client),
    privateIp: identity.privateIp,
    subnetFile: config.subnetFile,
    mtu,
    ipMasq: config.ipMasq,
    ...(masquerade ? { masquerade } : {}),
    renewMarginMs: config.renewMarginMs,
    once: config.once,
    releaseOnExit: config.releaseOnExit,
    log,
    signal,
  });

  if (config.healthzPort > 0) {
    try {
      const server = await startHealthServer(agent, { ip: config.healthzIp, port: config.healthzPort });
      onHealthServer(server);
      log.info('health server listening', { url: `http://${config.healthzIp}:${server.port}/healthz` });
    } catch (error) {
      log.error((error as Error).message);
      return EXIT_USAGE;
    }
  }
  return agent.run();
}

/** Set by `npm run build:agent` (the bundles have no package.json beside them); absent under tsx. */
declare const VPCLEASE_AGENT_VERSION: string | undefined;

let version: string | undefined;
async function packageVersion(): Promise<string> {
  if (typeof VPCLEASE_AGENT_VERSION === 'string') return VPCLEASE_AGENT_VERSION;
  if (version === undefined) {
    try {
      const text = await readFile(new URL('../package.json', import.meta.url), 'utf8');
      version = String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

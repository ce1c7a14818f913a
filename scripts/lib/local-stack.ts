/**
 * The whole control plane on this machine, nothing in AWS (docs/local-stack.md):
 * moto_server for EC2 + DynamoDB, the seeded VPC, the table, serverless-offline serving
 * the real handlers (stage `local`, `--noAuth`), and the default network config published
 * through the real admin API. Every port binds 127.0.0.1.
 *
 * Used by `npm start` (scripts/local-stack.ts), the e2e tests, the demo and the agent's e2e
 * tests, which start it on free ports: `startLocalStack({ apiPort: await freePort(), ... })`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeInternetGatewaysCommand,
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  LOCAL_ACCOUNT_ID,
  LOCAL_OPERATOR_ARN,
  OFFLINE_AUTHORIZER_HEADER,
} from '../../shared/http/contract.js';
import { type MotoServer, startMoto } from './moto.js';
import { ensureTable, findLocalVpc, LOCAL_VPC_NAME, type SeededVpc, seedVpc } from './seed.js';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_STAGE = 'local';
/** `${service}-${stage}`, as serverless.yml names the table */
export const LOCAL_TABLE_NAME = 'vpc-lease-local';
export const LOCAL_ACCOUNT = LOCAL_ACCOUNT_ID;
export const DEFAULT_NETWORK_CONFIG = {
  Network: '10.244.0.0/16',
  Backend: { Type: 'aws-vpc', RouteLimit: 50 },
} as const;
/**
 * The default config in dual stack: each lease also gets a /64 of a unique local /56, routed
 * to its ENI beside the IPv4 route (clear of the seeded VPC's Amazon-provided /56).
 */
export const DUAL_STACK_NETWORK_CONFIG = {
  ...DEFAULT_NETWORK_CONFIG,
  EnableIPv6: true,
  IPv6Network: 'fd00:10:244::/56',
} as const;
export const DEFAULT_PORTS = { api: 3000, moto: 5000, lambda: 3002 } as const;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface LocalStackOptions {
  /** default: VPCLEASE_API_PORT, else 3000 */
  apiPort?: number;
  /** default: VPCLEASE_MOTO_PORT, else 5000 */
  motoPort?: number;
  /** default: VPCLEASE_LAMBDA_PORT, else 3002 */
  lambdaPort?: number;
  /** no child output on the console (tests); errors still carry the output's tail */
  quiet?: boolean;
  /** rebuild the handlers when functions/ or shared/ change (npm start); off by default */
  watch?: boolean;
  /** publish DEFAULT_NETWORK_CONFIG (or `networkConfig`) through PUT /v1/admin/config (default true) */
  publishConfig?: boolean;
  /** the network config to publish instead of DEFAULT_NETWORK_CONFIG, e.g. DUAL_STACK_NETWORK_CONFIG */
  networkConfig?: object;
  /** how long serverless-offline may take to answer (default 90 s: it bundles first) */
  startTimeoutMs?: number;
  /** where child output goes when not quiet (default: process.stderr) */
  log?: (text: string) => void;
  /** the directory holding serverless.yml (default: this repository) */
  serviceDir?: string;
  /**
   * every function's timeout on this stack, in seconds (default: serverless.yml's own, as in
   * AWS). Tests that stall the engine shorten it to keep their runtime down.
   */
  functionTimeoutSeconds?: number;
  /** aborts a start in progress (Ctrl-C during start-up); whatever was started is stopped */
  signal?: AbortSignal;
}

export interface LocalStack {
  /** serverless-offline's HTTP API, e.g. http://127.0.0.1:3000 */
  readonly apiUrl: string;
  /** moto_server (EC2 + DynamoDB): what AWS_ENDPOINT_URL points at */
  readonly motoEndpoint: string;
  /** the stack's own moto_server process (tests pause it to stage an engine stall) */
  readonly motoPid: number;
  /** serverless-offline's Lambda invoke API (functions vpc-lease-local-<name>) */
  readonly lambdaEndpoint: string;
  readonly ports: { readonly api: number; readonly moto: number; readonly lambda: number };
  readonly vpc: SeededVpc;
  readonly tableName: string;
  readonly region: string;
  /** process group of serverless-offline (and its esbuild): gone after stop() */
  readonly offlinePid: number;
  /** the config publish's response body, when publishConfig */
  readonly publishedConfig: unknown;
  /** stops everything it started and waits until the ports are free; safe to call twice */
  stop(): Promise<void>;
}

/** A port the stack needs is taken; says by what, when the system can tell. */
export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number, role: string, envVar: string, holder: string | undefined) {
    super(
      `Port ${port} on 127.0.0.1 (${role}) is already in use${holder ? ` by ${holder}` : ''}. ` +
        `A serverless-offline or moto_server left over from an earlier start can keep it bound: stop that ` +
        `process, or choose another port with ${envVar}=<port>.`,
    );
    this.name = 'PortInUseError';
    this.port = port;
  }
}

export class LocalStackStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalStackStartError';
  }
}

export function portsFromEnvironment(env: NodeJS.ProcessEnv = process.env): {
  api: number;
  moto: number;
  lambda: number;
} {
  const read = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const port = Number(text);
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new Error(`${name}="${text}" is not a TCP port (1-65535).`);
    }
    return port;
  };
  return {
    api: read('VPCLEASE_API_PORT', DEFAULT_PORTS.api),
    moto: read('VPCLEASE_MOTO_PORT', DEFAULT_PORTS.moto),
    lambda: read('VPCLEASE_LAMBDA_PORT', DEFAULT_PORTS.lambda),
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const fromEnv = portsFromEnvironment();
  const ports = {
    api: options.apiPort ?? fromEnv.api,
    moto: options.motoPort ?? fromEnv.moto,
    lambda: options.lambdaPort ?? fromEnv.lambda,
  };
  const log = options.quiet ? () => {} : (options.log ?? ((text: string) => process.stderr.write(text)));

  await assertPortFree(ports.moto, 'moto_server', 'VPCLEASE_MOTO_PORT');
  await assertPortFree(ports.api, 'the HTTP API', 'VPCLEASE_API_PORT');
  await assertPortFree(ports.lambda, 'the Lambda invoke API', 'VPCLEASE_LAMBDA_PORT');

  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // keep stopping the rest
      }
    }
  };

  const checkAborted = () => {
    if (options.signal?.aborted) throw new LocalStackStartError('Start of the local stack was aborted.');
  };

  try {
    // 1. moto (throws MotoNotInstalledError with the install hint when missing)
    const moto: MotoServer = await startMoto({ port: ports.moto });
    cleanups.push(() => moto.stop());
    checkAborted();

    // 2. the VPC of the seed guide, and the table
    const { ec2, dynamo } = localClients(moto.endpoint);
    let vpc: SeededVpc;
    try {
      const existing = await findLocalVpc(ec2);
      vpc = existing ? await describeSeededVpc(ec2, existing) : await seedVpc(ec2);
      await ensureTable(dynamo, LOCAL_TABLE_NAME);
    } finally {
      ec2.destroy();
      dynamo.destroy();
    }

    checkAborted();

    // 3. serverless-offline, in its own process group so that stop() reaches its children
    const serviceDir = options.serviceDir ?? REPO_ROOT;
    const workFolder = `.esbuild/local-${process.pid}-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => rm(join(serviceDir, workFolder), { recursive: true, force: true }));
    const offline = spawnOffline({
      serviceDir,
      ports,
      motoEndpoint: moto.endpoint,
      vpcId: vpc.vpcId,
      workFolder,
      watch: options.watch,
      functionTimeoutSeconds: options.functionTimeoutSeconds,
    });
    const output = captureOutput(offline, log);
    cleanups.push(() => stopProcessGroup(offline));

    const apiUrl = `http://127.0.0.1:${ports.api}`;
    const lambdaEndpoint = `http://127.0.0.1:${ports.lambda}`;
    await waitForOffline(
      offline,
      output,
      apiUrl,
      ports.lambda,
      options.startTimeoutMs ?? 90_000,
      checkAborted,
    );

    // 4. the default network config, through the operator API like any operator would
    const publishedConfig =
      options.publishConfig === false
        ? undefined
        : await publishNetworkConfig(apiUrl, options.networkConfig ?? DEFAULT_NETWORK_CONFIG);
    checkAborted();

    let stopping: Promise<void> | undefined;
    return {
      apiUrl,
      motoEndpoint: moto.endpoint,
      motoPid: moto.pid,
      lambdaEndpoint,
      ports,
      vpc,
      tableName: LOCAL_TABLE_NAME,
      region: LOCAL_REGION,
      offlinePid: offline.pid!,
      publishedConfig,
      stop() {
        stopping ??= (async () => {
          await cleanUp();
          await waitForPortsFree([ports.api, ports.lambda, ports.moto], 10_000);
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/**
 * SDK clients for the stack's moto, with dummy credentials (moto accepts any; the SDK's
 * default chain would look for real ones). Destroy them when done.
 */
export function localClients(motoEndpoint: string): { ec2: EC2Client; dynamo: DynamoDBDocumentClient } {
  const options = {
    region: LOCAL_REGION,
    endpoint: motoEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
  };
  return {
    ec2: new EC2Client(options),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient(options), {
      marshallOptions: { removeUndefinedValues: true },
    }),
  };
}

/** The operator identity header, for curl examples and tests. */
export const operatorHeaders = (): Record<string, string> => ({
  [OFFLINE_AUTHORIZER_HEADER]: JSON.stringify({ iam: { userArn: LOCAL_OPERATOR_ARN } }),
});

// ------------------------------------------------------------------ serverless-offline

function spawnOffline(args: {
  serviceDir: string;
  ports: { api: number; lambda: number };
  motoEndpoint: string;
  vpcId: string;
  workFolder: string;
  watch: boolean | undefined;
  functionTimeoutSeconds: number | undefined;
}): ChildProcess {
  const serverlessBin = createRequire(import.meta.url).resolve('osls/bin/serverless.js');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // what the handlers see (serverless-offline passes AWS_* through; the rest is serverless.yml)
    AWS_ENDPOINT_URL: args.motoEndpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    VPC_ID: args.vpcId,
    TABLE_NAME: LOCAL_TABLE_NAME,
    // Node 20 here, nodejs22.x in Lambda: the SDK's notice about it is noise locally
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // serverless.yml reads these
    VPCLEASE_API_PORT: String(args.ports.api),
    VPCLEASE_LAMBDA_PORT: String(args.ports.lambda),
    VPCLEASE_ESBUILD_DIR: args.workFolder,
    ...(args.functionTimeoutSeconds !== undefined
      ? { VPCLEASE_LOCAL_FUNCTION_TIMEOUT: String(args.functionTimeoutSeconds) }
      : {}),
    // a pattern that matches nothing turns the rebuild-on-change watcher off
    ...(args.watch ? {} : { VPCLEASE_WATCH_PATTERN: `${args.workFolder}/no-watch` }),
  };
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN']) delete env[name];
  // --noTimeout: serverless-offline's own timer starts when the request arrives, before its
  // worker thread has started and loaded the bundle (in AWS, the init phase, outside the
  // function's timeout), while the handler's deadline (context.getRemainingTimeInMillis)
  // starts when the handler does. Under load (concurrent cold workers, requests queued on
  // moto) its timer ran out first and it answered 200 with a stack trace. Without it the
  // handler's own early timeout (middy timeoutEarlyInMillis, shared/http/middleware.ts) ends
  // every invocation, as Lambda's clock does in AWS: 503 with Retry-After for the HTTP
  // functions, a function error (X-Amz-Function-Error: Unhandled) for a direct invocation.
  const offlineArgs = [serverlessBin, 'offline', 'start', '--stage', LOCAL_STAGE, '--noAuth', '--noTimeout'];
  return spawn(process.execPath, offlineArgs, {
    cwd: args.serviceDir,
    env,
    detached: true, // own process group: stop() signals the group, esbuild included
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

interface CapturedOutput {
  tail(): string;
}

function captureOutput(child: ChildProcess, log: (text: string) => void): CapturedOutput {
  let buffer = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    buffer = (buffer + text).slice(-8000);
    log(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { tail: () => buffer };
}

async function waitForOffline(
  child: ChildProcess,
  output: CapturedOutput,
  apiUrl: string,
  lambdaPort: number,
  timeoutMs: number,
  checkAborted: () => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    checkAborted();
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new LocalStackStartError(
        `serverless-offline exited (${child.exitCode ?? child.signalCode}) before serving the API:\n${output.tail()}`,
      );
    }
    if ((await answers(`${apiUrl}/v1/config`)) && (await listening(lambdaPort))) return;
    if (Date.now() > deadline) {
      throw new LocalStackStartError(
        `serverless-offline did not answer on ${apiUrl} within ${Math.round(timeoutMs / 1000)} s:\n${output.tail()}`,
      );
    }
    await sleep(250);
  }
}

/** Any HTTP answer counts: 403 without an identity is the API being up. */
async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function publishNetworkConfig(apiUrl: string, config: object): Promise<unknown> {
  const response = await fetch(`${apiUrl}/v1/admin/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...operatorHeaders() },
    body: JSON.stringify(config),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new LocalStackStartError(
      `Publishing the network config (PUT ${apiUrl}/v1/admin/config) failed with ${response.status}: ${text}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function stopProcessGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once('exit', () => done());
  });
  signalGroup(pid, 'SIGTERM');
  const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
  // The leader may be gone while a worker or esbuild still holds a port: finish the group.
  if (!killed || groupAlive(pid)) signalGroup(pid, 'SIGKILL');
  await exited;
  const deadline = Date.now() + 5000;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(50);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ ports

async function canBind(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => done(true)));
  });
}

async function listening(port: number): Promise<boolean> {
  return !(await canBind(port));
}

async function assertPortFree(port: number, role: string, envVar: string): Promise<void> {
  if (await canBind(port)) return;
  throw new PortInUseError(port, role, envVar, portHolder(port));
}

/** Best effort: "pid 1234 (node)" from `ss`, when it is installed and allowed to tell. */
function portHolder(port: number): string | undefined {
  const out = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8', timeout: 2000 });
  const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(out.stdout ?? '');
  return match ? `pid ${match[2]} (${match[1]})` : undefined;
}

async function waitForPortsFree(ports: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await canBind(port))) {
      if (Date.now() > deadline)
        throw new Error(`Port ${port} is still bound after stopping the local stack.`);
      await sleep(100);
    }
  }
}

// ------------------------------------------------------------------ VPC

/** The ids of a VPC seeded earlier by `seedVpc` (moto kept its state, or a shared moto). */
async function describeSeededVpc(ec2: EC2Client, vpcId: string): Promise<SeededVpc> {
  const filter = [{ Name: 'vpc-id', Values: [vpcId] }];
  const [subnets, gateways, tables] = await Promise.all([
    ec2.send(new DescribeSubnetsCommand({ Filters: filter })),
    ec2.send(
      new DescribeInternetGatewaysCommand({ Filters: [{ Name: 'attachment.vpc-id', Values: [vpcId] }] }),
    ),
    ec2.send(new DescribeRouteTablesCommand({ Filters: filter })),
  ]);
  const named = (tags: { Key?: string; Value?: string }[] | undefined) =>
    tags?.some((t) => t.Key === 'Name' && t.Value === `${LOCAL_VPC_NAME}-public`) ?? false;
  const subnetId = (subnets.Subnets?.find((s) => named(s.Tags)) ?? subnets.Subnets?.[0])?.SubnetId;
  const internetGatewayId = gateways.InternetGateways?.[0]?.InternetGatewayId;
  const routeTableId = (tables.RouteTables?.find((t) => named(t.Tags)) ?? tables.RouteTables?.[0])
    ?.RouteTableId;
  if (!subnetId || !internetGatewayId || !routeTableId) {
    throw new LocalStackStartError(
      `VPC ${vpcId} (Name=${LOCAL_VPC_NAME}) exists but lacks its subnet, internet gateway or route table; ` +
        'restart moto_server to seed it afresh.',
    );
  }
  return { vpcId, subnetId, internetGatewayId, routeTableId };
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

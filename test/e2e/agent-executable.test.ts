/**
 * What an operator installs (npm run build:agent): the single executable, started as a host
 * would start it, with an empty environment (`env -i`: no PATH, so no node, npm or
 * repository to lean on), against the real local stack. The build runs here, into a
 * temporary directory, exactly as `npm run build:agent` runs it.
 */
import '../support/aws.js';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentArtifacts,
  BUNDLE_NAME,
  buildAgentArtifacts,
  CHECKSUMS_NAME,
  ENV_EXAMPLE_NAME,
  EXECUTABLE_NAME,
  UNIT_NAME,
} from '../../scripts/build-agent.js';
import {
  type LocalStack,
  localClients,
  operatorHeaders,
  startLocalStack,
} from '../../scripts/lib/local-stack.js';
import { freePort } from '../../scripts/lib/moto.js';
import { type LaunchedInstance, launchInstances } from '../../scripts/lib/seed.js';
import type { LeaseListJson } from '../../shared/http/contract.js';

const run = promisify(execFile);
const MTU = 9001;

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts `file` with exactly `env` (no inherited variable) and collects stderr. */
function start(file: string, args: readonly string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const finished = new Promise<Finished>((resolve) => {
    // 'close', not 'exit': all of stderr has arrived
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, finished, stderr: () => stderr };
}

/** Resolves with the exit, or fails with the output when the process is still running at the deadline. */
async function exitWithin(process: ReturnType<typeof start>, timeoutMs: number): Promise<Finished> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      process.child.kill('SIGKILL');
      reject(new Error(`no exit within ${timeoutMs} ms; stderr:\n${process.stderr().slice(-4000)}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([process.finished, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

describe('the built agent executable (npm run build:agent)', () => {
  let artifacts: AgentArtifacts;
  let stack: LocalStack;
  let ec2: EC2Client;
  let host: LaunchedInstance;
  let workDir: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'vpc-lease-agent-executable-'));
    const [apiPort, motoPort, lambdaPort] = await distinctFreePorts(3);
    // The build (esbuild, the SEA blob, postject over a ~90 MB binary) and the stack start together.
    [artifacts, stack] = await Promise.all([
      buildAgentArtifacts(join(workDir, 'dist')),
      startLocalStack({ apiPort, motoPort, lambdaPort, quiet: true }),
    ]);
    const clients = localClients(stack.motoEndpoint);
    clients.dynamo.destroy();
    ec2 = clients.ec2;
    [host] = (await launchInstances(ec2, stack.vpc.subnetId, 1)) as [LaunchedInstance];
  }, 300_000);

  afterAll(async () => {
    for (const server of servers) server.close();
    ec2?.destroy();
    await stack?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  const executable = () => join(artifacts.dir, EXECUTABLE_NAME);

  it('writes the executable, the one-file bundle, the unit, the environment example and their checksums', async () => {
    expect(artifacts.executable).toEqual({ built: true, file: executable() });
    expect(artifacts.files).toEqual([
      EXECUTABLE_NAME,
      BUNDLE_NAME,
      UNIT_NAME,
      ENV_EXAMPLE_NAME,
      CHECKSUMS_NAME,
    ]);
    expect((await stat(executable())).mode & 0o111).toBe(0o111);
    // sha256sum itself checks the list: what an operator runs before installing
    const { stdout } = await run('sha256sum', ['-c', CHECKSUMS_NAME], { cwd: artifacts.dir });
    expect(stdout.trim().split('\n').sort()).toEqual(
      [EXECUTABLE_NAME, BUNDLE_NAME, UNIT_NAME, ENV_EXAMPLE_NAME].map((name) => `${name}: OK`).sort(),
    );
  });

  it('with an empty environment (env -i) and --once, leases a subnet and writes the subnet.env the API lists', async () => {
    const subnetFile = join(workDir, 'run', 'flannel', 'subnet.env');
    const agent = start(executable(), [
      '--api-url',
      stack.apiUrl,
      '--local-instance-id',
      host.instanceId,
      '--private-ip',
      host.privateIp,
      '--subnet-file',
      subnetFile,
      '--mtu',
      String(MTU),
      '--once',
      '--log-format',
      'json',
    ]);
    const exit = await exitWithin(agent, 60_000);
    expect({ code: exit.code, signal: exit.signal }, exit.stderr).toEqual({ code: 0, signal: null });

    const response = await fetch(`${stack.apiUrl}/v1/admin/leases?limit=1000`, {
      headers: operatorHeaders(),
    });
    const { leases } = (await response.json()) as LeaseListJson;
    const lease = leases.find((l) => l.instanceId === host.instanceId);
    expect(lease, `a lease for ${host.instanceId}`).toMatchObject({ network: '10.244.0.0/16' });
    const [, prefix] = /^(10\.244\.\d{1,3})\.0\/24$/.exec(lease!.subnet) ?? [];
    expect(prefix, lease!.subnet).toBeDefined();
    expect(await readFile(subnetFile, 'utf8')).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\n' +
        `FLANNEL_SUBNET=${prefix}.1/24\n` +
        `FLANNEL_MTU=${MTU}\n` +
        'FLANNEL_IPMASQ=false\n',
    );
    // every stderr line is one of the agent's JSON log lines: no Node or SDK warning among them
    const lines = exit.stderr.trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(exit.stderr).not.toMatch(/Warning|ExperimentalWarning|NodeVersionSupport/);
  });

  it('says nothing of the AWS SDK Node version warning when the SDK builds a client (web identity credentials -> STS)', async () => {
    // A stand-in for IMDSv2 and STS on one loopback port: the agent learns its identity, then
    // its credential chain constructs the SDK's STS client (where the SDK warns on Node < 22),
    // calls AssumeRoleWithWebIdentity and is refused.
    const stsCalls: string[] = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        const answers: Record<string, string> = {
          '/latest/api/token': 'token',
          '/latest/meta-data/instance-id': host.instanceId,
          '/latest/meta-data/local-ipv4': host.privateIp,
          '/latest/dynamic/instance-identity/document': JSON.stringify({ region: 'us-east-1' }),
        };
        const answer = request.url ? answers[request.url] : undefined;
        if (answer !== undefined) {
          response.end(answer);
          return;
        }
        stsCalls.push(body);
        response.statusCode = 403;
        response.setHeader('content-type', 'text/xml');
        response.end(
          '<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not in this test</Message></Error></ErrorResponse>',
        );
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const token = join(workDir, 'web-identity-token');
    await writeFile(token, 'not-a-real-token');

    const agent = start(
      executable(),
      [
        '--api-url',
        url,
        '--imds-endpoint',
        url,
        '--subnet-file',
        join(workDir, 'sts', 'subnet.env'),
        '--mtu',
        '1500',
        // an EC2-mode run masquerades by default; this one is about credentials, not iptables
        '--no-ip-masq',
        '--once',
        '--log-format',
        'json',
      ],
      {
        AWS_WEB_IDENTITY_TOKEN_FILE: token,
        AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/vpc-lease-host',
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_STS: url,
      },
    );
    try {
      const deadline = Date.now() + 60_000;
      while (!stsCalls.some((call) => call.includes('Action=AssumeRoleWithWebIdentity'))) {
        if (agent.child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no AssumeRoleWithWebIdentity call; stderr:\n${agent.stderr().slice(-4000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      agent.child.kill('SIGTERM');
      const { stderr } = await exitWithin(agent, 10_000);
      // the SDK warns while it constructs the client, before the call: the whole output is in
      expect(stderr).not.toMatch(/NodeVersionSupportWarning/);
    } finally {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
      await agent.finished;
    }
  });
});

/**
 * Starts Python moto's server (EC2 + DynamoDB in one process) on 127.0.0.1.
 * Used by the tests, the local stack and the benchmarks.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

export class MotoNotInstalledError extends Error {
  constructor() {
    super(
      'moto was not found for python3. Install it with: python3 -m pip install "moto[server]" ' +
        '(vpc-lease runs moto through its own launcher, scripts/lib/moto_serialized.py).',
    );
    this.name = 'MotoNotInstalledError';
  }
}

const SERIALISED_LAUNCHER = fileURLToPath(new URL('./moto_serialized.py', import.meta.url));

/**
 * How to run moto: always through our launcher (moto_serialized.py) under the python3 that
 * has moto. The launcher serialises moto's backends and makes EC2 answer as EC2 does
 * (moto_ec2_fidelity.py); a bare `moto_server` would give the tests, the local stack and the
 * demo an engine that differs from the one they are specified against.
 */
export function motoCommand(): { command: string; args: string[] } {
  if (spawnSync('python3', ['-c', 'import moto.server, werkzeug'], { stdio: 'ignore' }).status === 0) {
    return { command: 'python3', args: [SERIALISED_LAUNCHER] };
  }
  throw new MotoNotInstalledError();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startMoto(
  options: { port?: number; log?: (line: string) => void } = {},
): Promise<MotoServer> {
  const { command, args } = motoCommand();
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(command, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    if (output.length < 20_000) output += text;
    options.log?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  // A caller that dies or gives up (a test hook's timeout) before stop() must not leave moto behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', killOnExit);
      resolve();
    }),
  );
  const endpoint = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 45_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`);
      if (response.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not answer on ${endpoint} within 45 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    endpoint,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Wipes every resource in moto (all services, all regions). */
export async function resetMoto(endpoint: string): Promise<void> {
  const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!response.ok) throw new Error(`moto reset failed: ${response.status}`);
}

/**
 * Starts Python moto's server (EC2 + DynamoDB in one process) on 127.0.0.1.
 * Used by the tests, the local stack and the benchmarks.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  /** the moto process (fault-injection tests pause it with SIGSTOP, by this pid only) */
  readonly pid: number;
  stop(): Promise<void>;
}

/** The moto release the tests run against; `npm run setup:moto` installs exactly this one. */
export const MOTO_REQUIREMENT = 'moto[server]==5.2.1';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The project-local Python environment that `npm run setup:moto` creates (gitignored). */
export const LOCAL_VENV = join(REPO_ROOT, '.venv');
const VENV_PYTHON = join(LOCAL_VENV, 'bin', 'python3');

export class MotoNotInstalledError extends Error {
  /** a python3 with pip and venv is here: `npm run setup:moto` can install moto */
  readonly canSetUp: boolean;
  constructor(canSetUp: boolean) {
    super(
      canSetUp
        ? 'moto_server (Python moto, the local EC2 + DynamoDB) was not found. Run:\n\n' +
            '  npm run setup:moto\n\n' +
            `It creates .venv/ in this repository with ${MOTO_REQUIREMENT}, which npm start and npm test then use.`
        : 'moto_server (Python moto, the local EC2 + DynamoDB) was not found, and there is no python3 with pip ' +
            'and venv to install it with. Install them (Debian/Ubuntu: sudo apt install python3-pip python3-venv), then run:\n\n' +
            '  npm run setup:moto\n\n' +
            `(or install moto for python3 yourself: python3 -m pip install '${MOTO_REQUIREMENT}').`,
    );
    this.name = 'MotoNotInstalledError';
    this.canSetUp = canSetUp;
  }
}

const SERIALISED_LAUNCHER = fileURLToPath(new URL('./moto_serialized.py', import.meta.url));

const hasMoto = (python: string) =>
  spawnSync(python, ['-c', 'import moto.server, werkzeug'], { stdio: 'ignore' }).status === 0;

/** python3 with pip and venv: what `npm run setup:moto` needs. */
export function canSetUpMoto(): boolean {
  return spawnSync('python3', ['-c', 'import pip, venv, ensurepip'], { stdio: 'ignore' }).status === 0;
}

/**
 * How to run moto: always through our launcher (moto_serialized.py), under the project's
 * .venv (npm run setup:moto) when it has moto, else under the python3 on PATH that has moto.
 * The launcher serialises moto's backends and makes EC2 answer as EC2 does
 * (moto_ec2_fidelity.py); a bare `moto_server` would give the tests, the local stack and the
 * demo an engine that differs from the one they are specified against.
 */
export function motoCommand(): { command: string; args: string[] } {
  if (existsSync(VENV_PYTHON) && hasMoto(VENV_PYTHON))
    return { command: VENV_PYTHON, args: [SERIALISED_LAUNCHER] };
  if (hasMoto('python3')) return { command: 'python3', args: [SERIALISED_LAUNCHER] };
  throw new MotoNotInstalledError(canSetUpMoto());
}

/**
 * `npm run setup:moto`: creates .venv/ in the repository and installs MOTO_REQUIREMENT into
 * it with pip (output goes to the terminal). Throws with pip's exit status when it fails.
 */
export function setUpMoto(): void {
  const run = (command: string, args: string[]) => {
    const result = spawnSync(command, args, { stdio: 'inherit' });
    if (result.status !== 0) {
      throw new Error(
        `${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}).`,
      );
    }
  };
  if (!existsSync(VENV_PYTHON)) run('python3', ['-m', 'venv', LOCAL_VENV]);
  run(VENV_PYTHON, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', MOTO_REQUIREMENT]);
  if (!hasMoto(VENV_PYTHON))
    throw new Error(`${MOTO_REQUIREMENT} was installed into .venv/ but does not import.`);
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

  // moto imports every AWS service it mocks at start: seconds on an idle machine, much more
  // on a loaded one (tests run several suites, each with its own moto, side by side)
  const startTimeoutMs = 60_000;
  const deadline = Date.now() + startTimeoutMs;
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
      throw new Error(
        `moto_server did not answer on ${endpoint} within ${startTimeoutMs / 1000} s:\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    endpoint,
    port,
    pid: child.pid!,
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

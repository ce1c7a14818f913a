/** What the figures were measured on: CPU, memory, load, and the versions that matter. */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { version as esbuildVersion } from 'esbuild';
import { REPO_ROOT } from './cold-start.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly moto: string;
  readonly esbuild: string;
  readonly awsSdk: string;
  readonly commit: string;
}

export function describeMachine(): Machine {
  const list = cpus();
  const require = createRequire(`${REPO_ROOT}package.json`);
  const sdk = (require('@aws-sdk/client-ec2/package.json') as { version: string }).version;
  const moto = spawnSync('python3', ['-c', 'import moto; print(moto.__version__)'], { encoding: 'utf8' });
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return {
    cpu: `${list[0]?.model ?? 'unknown'}${list[0]?.speed ? ` @ ${list[0].speed} MHz` : ''}`,
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    moto: moto.status === 0 ? moto.stdout.trim() : 'unknown',
    esbuild: esbuildVersion,
    awsSdk: sdk,
    commit: git.status === 0 ? git.stdout.trim() : 'unknown',
  };
}

/** The 1-minute load average: other work on the machine slows moto down. */
export const loadAverage = (): number => loadavg()[0] ?? Number.NaN;

/**
 * Commands and processes of the lab: every command it runs goes through `sh` (so a failure
 * says which command and what it printed), and every long-running process it starts is
 * registered in a ProcessSet, so that cleanup can stop exactly those, by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number,
    readonly output: string,
  ) {
    super(`\`${command}\` failed (exit ${code}): ${output.trim()}`);
    this.name = 'CommandError';
  }
}

export interface ShOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** resolve with the result instead of throwing on a non-zero exit */
  allowFailure?: boolean;
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(command: string, args: readonly string[], options: ShOptions = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.env ? { env: options.env } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    // A command that exits without reading its input must not crash the lab with EPIPE.
    child.stdin.on('error', () => {});
    child.once('close', (code) => {
      const result = { code: code ?? 1, stdout, stderr };
      if (result.code !== 0 && !options.allowFailure) {
        reject(new CommandError([command, ...args].join(' '), result.code, stderr || stdout));
      } else {
        resolve(result);
      }
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A command inside a network namespace. */
export const inNs = (ns: string, command: string, args: readonly string[], options: ShOptions = {}) =>
  sh('ip', ['netns', 'exec', ns, command, ...args], options);

/** A long-running process of the lab, with what it printed so far. */
export interface LabProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** resolves with the exit code (or the signal name) */
  readonly exited: Promise<number | string>;
}

export class ProcessSet {
  private readonly processes = new Set<LabProcess>();
  /** every pid ever started, for the "nothing left running" check */
  readonly pids: number[] = [];

  start(name: string, command: string, args: readonly string[], env?: NodeJS.ProcessEnv): LabProcess {
    const child = spawn(command, [...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env ? { env } : {}),
    });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const exited = new Promise<number | string>((resolve) =>
      child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    );
    const process: LabProcess = { name, child, pid: child.pid, output: () => output, exited };
    this.processes.add(process);
    this.pids.push(child.pid);
    void exited.then(() => this.processes.delete(process));
    return process;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(process: LabProcess, graceMs = 8_000): Promise<number | string> {
    if (process.child.exitCode === null && process.child.signalCode === null) {
      process.child.kill('SIGTERM');
      const timer = setTimeout(() => process.child.kill('SIGKILL'), graceMs);
      const code = await process.exited;
      clearTimeout(timer);
      return code;
    }
    return process.exited;
  }

  kill(process: LabProcess): Promise<number | string> {
    process.child.kill('SIGKILL');
    return process.exited;
  }

  async stopAll(graceMs = 8_000): Promise<void> {
    await Promise.all([...this.processes].map((p) => this.stop(p, graceMs)));
  }
}

/** Resolves once `process` printed `text`; rejects when it exits first or the deadline passes. */
export async function waitForOutput(process: LabProcess, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitedWith: number | string | undefined;
  void process.exited.then((code) => {
    exitedWith = code;
  });
  while (!process.output().includes(text)) {
    if (exitedWith !== undefined) {
      throw new Error(`${process.name} exited (${exitedWith}) before "${text}":\n${process.output()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${process.name} did not print "${text}" within ${timeoutMs} ms:\n${process.output()}`);
    }
    await sleep(50);
  }
}

/** Polls `probe` until it returns a value other than undefined; throws `what` at the deadline. */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new Error('interrupted');
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} (waited ${Math.round(timeoutMs / 1000)} s)`);
    await sleep(200);
  }
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

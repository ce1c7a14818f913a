/**
 * Test doubles for the host agent tests: a clock driven by the test, a log that
 * remembers, and a small in-process lease API that speaks the HTTP contract
 * (PUT/DELETE /v1/lease with the serverless-offline identity header) on 127.0.0.1.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Clock } from '../../agent/clock.js';
import type { Logger } from '../../agent/log.js';
import { formatCidr, nthSubnet, parseCidr } from '../../shared/cidr.js';
import { type LeaseJson, OFFLINE_AUTHORIZER_HEADER } from '../../shared/http/contract.js';

/** A clock that only moves when the test says so; sleepers wake when their time is reached. */
export class FakeClock implements Clock {
  private nowMs: number;
  private sleepers: { until: number; wake: () => void }[] = [];
  private sleepWaiters: ((ms: number) => void)[] = [];
  /** every delay ever requested, in order */
  readonly requested: number[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.nowMs = start;
  }

  now(): number {
    return this.nowMs;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.requested.push(ms);
    for (const waiter of this.sleepWaiters.splice(0)) waiter(ms);
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper = {
        until: this.nowMs + Math.max(0, ms),
        wake: () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          signal?.removeEventListener('abort', sleeper.wake);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', sleeper.wake, { once: true });
    });
  }

  /** Resolves with the delay of the next sleep() call (rejects after `realMs` of real time). */
  nextSleep(realMs = 5_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nobody slept within ${realMs} ms`)), realMs);
      this.sleepWaiters.push((ms) => {
        clearTimeout(timer);
        resolve(ms);
      });
    });
  }

  /** Moves time forward and wakes every sleeper whose time has come. */
  advance(ms: number): void {
    this.nowMs += ms;
    for (const sleeper of [...this.sleepers]) if (sleeper.until <= this.nowMs) sleeper.wake();
  }

  /** Moves time to the earliest sleeper's wake-up time and wakes it. */
  wakeNext(): void {
    const next = Math.min(...this.sleepers.map((s) => s.until));
    if (Number.isFinite(next)) this.advance(Math.max(0, next - this.nowMs));
  }

  get sleeping(): number {
    return this.sleepers.length;
  }
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export function memoryLogger(): Logger & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, message, fields });
    };
  return {
    lines,
    text: () =>
      lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(l.fields, errorAsMessage)}`).join('\n'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

function errorAsMessage(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/** Polls `condition` until it holds, failing after `realMs` of real time: no fixed sleeps. */
export async function until(condition: () => boolean, realMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + realMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface RecordedRequest {
  method: string;
  path: string;
  instanceId: string | undefined;
  body: Record<string, unknown> | undefined;
}

export interface InjectedFailure {
  status: number;
  code?: string;
  message?: string;
  retryAfter?: number;
  /** never answer (the request hangs until the client gives up) */
  hang?: boolean;
}

interface FakeLease {
  subnet: string;
  instanceId: string;
  privateIp: string;
  expiresAt: number;
}

/**
 * The host half of the lease API, in memory: idempotent acquire, previousSubnet honoured
 * when free, expiry compared with the injected clock. Failures are queued per request.
 */
export class FakeLeaseApi {
  readonly network = '10.244.0.0/16';
  readonly requests: RecordedRequest[] = [];
  readonly leases = new Map<string, FakeLease>();
  ttlMs = 24 * 3_600_000;
  /** routes state of the next grants */
  routeState: 'active' | 'pending' = 'active';
  private failures: InjectedFailure[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private hanging: ServerResponse[] = [];
  private portNumber = 0;

  /** dual stack: answer leases with ipv6Network and the IPv6 subnet paired with the IPv4 one (…:<third octet>::/64) */
  ipv6Network: string | undefined;

  constructor(private readonly clock: Clock) {}

  get url(): string {
    return `http://127.0.0.1:${this.portNumber}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, '127.0.0.1', () => resolve());
    });
    this.portNumber = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Closes the listener and every connection: the next request is refused (restart() reuses the port). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const res of this.hanging.splice(0)) res.destroy();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  restart(): Promise<void> {
    return this.start();
  }

  failNext(failure: InjectedFailure, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(failure);
  }

  puts(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'PUT');
  }

  /** What an operator's revoke does: the lease is gone. */
  revoke(instanceId: string): void {
    this.leases.delete(instanceId);
  }

  /** Another host takes `subnet` (so a re-acquire must get a different one). */
  occupy(subnet: string, instanceId = 'i-00000000000000099'): void {
    this.leases.set(instanceId, {
      subnet,
      instanceId,
      privateIp: '10.0.9.9',
      expiresAt: Number.MAX_SAFE_INTEGER,
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const identity = req.headers[OFFLINE_AUTHORIZER_HEADER];
    const userArn =
      typeof identity === 'string'
        ? (JSON.parse(identity) as { iam?: { userArn?: string } }).iam?.userArn
        : undefined;
    const instanceId = userArn?.split('/').at(-1);
    const body = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', instanceId, body });

    const failure = this.failures.shift();
    if (failure?.hang) {
      this.hanging.push(res);
      return;
    }
    if (failure) {
      return send(
        res,
        failure.status,
        {
          error: {
            code: failure.code ?? 'ServiceUnavailable',
            message: failure.message ?? 'injected failure',
          },
        },
        failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : {},
      );
    }
    if (!instanceId) return send(res, 403, { error: { code: 'Forbidden', message: 'no instance identity' } });

    if (req.url === '/v1/lease' && req.method === 'PUT')
      return send(res, 200, this.acquire(instanceId, body ?? {}));
    if (req.url === '/v1/lease' && req.method === 'DELETE') {
      if (!this.leases.delete(instanceId))
        return send(res, 404, { error: { code: 'NotFound', message: 'no lease' } });
      res.writeHead(204).end();
      return;
    }
    send(res, 404, { message: 'Not Found' });
  }

  private acquire(instanceId: string, body: Record<string, unknown>): LeaseJson {
    const now = this.clock.now();
    const live = [...this.leases.values()].filter((l) => l.expiresAt > now);
    const taken = new Set(live.filter((l) => l.instanceId !== instanceId).map((l) => l.subnet));
    let lease = this.leases.get(instanceId);
    if (!lease || lease.expiresAt <= now) {
      const previous = typeof body.previousSubnet === 'string' ? body.previousSubnet : undefined;
      const subnet = previous !== undefined && !taken.has(previous) ? previous : this.firstFree(taken);
      lease = { subnet, instanceId, privateIp: String(body.privateIp), expiresAt: now + this.ttlMs };
    }
    lease.expiresAt = now + this.ttlMs;
    this.leases.set(instanceId, lease);
    const ipv6 = this.ipv6Network
      ? {
          ipv6Subnet: `${this.ipv6Network.replace(/::\/\d+$/, '')}:${Number(lease.subnet.split('.')[2]).toString(16)}::/64`,
          ipv6Network: this.ipv6Network,
        }
      : {};
    return {
      subnet: lease.subnet,
      network: this.network,
      ...ipv6,
      instanceId,
      privateIp: lease.privateIp,
      networkInterfaceId: 'eni-0123456789abcdef0',
      expiresAt: new Date(lease.expiresAt).toISOString(),
      routes: [{ routeTableId: 'rtb-0123456789abcdef0', destination: lease.subnet, state: this.routeState }],
    };
  }

  private firstFree(taken: Set<string>): string {
    const network = parseCidr(this.network);
    for (let i = 1; i < 255; i++) {
      const subnet = formatCidr(nthSubnet(4, network.base, 24, i));
      if (!taken.has(subnet)) return subnet;
    }
    throw new Error('fake API out of subnets');
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * A real etcd (Debian's etcd-server) for the import tests: one member on free loopback
 * ports with a fresh data directory, and flannel's registry written into it exactly as
 * flanneld writes it (v3 API: each subnet key on an etcd lease with a TTL). Stopped, and its
 * data directory removed, by `stop()`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../../scripts/lib/moto.js';

export interface EtcdServer {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** flannel's lease value for a host, as flanneld v0.19 writes it for the aws-vpc backend */
  putSubnet(
    subnetKey: string,
    publicIp: string,
    options: { ttlSeconds: number; prefix?: string },
  ): Promise<void>;
  /** a key as is (a config, a malformed value), on no lease */
  put(key: string, value: string): Promise<void>;
  deleteAll(prefix?: string): Promise<void>;
  stop(): Promise<void>;
}

export const FLANNEL_PREFIX = '/coreos.com/network';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export function etcdInstalled(): boolean {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startEtcd(): Promise<EtcdServer> {
  if (!etcdInstalled()) {
    throw new Error(
      'etcd is not installed: apt-get install etcd-server etcd-client (the import tests run a real etcd).',
    );
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'vpc-lease-etcd-'));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let log = '';
  const child: ChildProcess = spawn(
    'etcd',
    [
      '--name',
      'flannel-test',
      '--data-dir',
      join(dataDir, 'data'),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `flannel-test=${peer}`,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const call = async <T>(path: string, body: object): Promise<T> => {
    const response = await fetch(`${client}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  };

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), delay(10_000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await call('/v3/kv/range', { key: b64('probe') });
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`etcd did not start on ${client}:\n${log}`);
      }
      await delay(200);
    }
  }

  return {
    endpoint: client,
    async putSubnet(subnetKey, publicIp, options) {
      const { ID } = await call<{ ID: string }>('/v3/lease/grant', { TTL: options.ttlSeconds });
      const value = JSON.stringify({
        PublicIP: publicIp,
        PublicIPv6: null,
        BackendType: 'aws-vpc',
        BackendData: null,
      });
      await call('/v3/kv/put', {
        key: b64(`${options.prefix ?? FLANNEL_PREFIX}/subnets/${subnetKey}`),
        value: b64(value),
        lease: ID,
      });
    },
    async put(key, value) {
      await call('/v3/kv/put', { key: b64(key), value: b64(value) });
    },
    async deleteAll(prefix = FLANNEL_PREFIX) {
      const end = Buffer.from(`${prefix}/`, 'utf8');
      end[end.length - 1] = end[end.length - 1]! + 1;
      await call('/v3/kv/deleterange', { key: b64(`${prefix}/`), range_end: end.toString('base64') });
    },
    stop,
  };
}

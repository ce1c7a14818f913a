/**
 * The IMDSv2 client against a small metadata server on 127.0.0.1 that speaks the
 * token protocol: PUT /latest/api/token with a TTL header, then GETs that must carry
 * the token (token-less or stale-token GETs get 401, as on an IMDSv2-only instance).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveIdentity } from '../../agent/identity.js';
import { ImdsClient } from '../../agent/imds.js';
import { silentLogger } from '../../agent/log.js';
import { FakeClock } from './agent-support.js';

interface Seen {
  method: string;
  path: string;
  token: string | undefined;
  ttl: string | undefined;
}

class FakeImds {
  readonly seen: Seen[] = [];
  validTokens = new Set<string>();
  issued = 0;
  /** 'hang': never answer the token PUT (the hop limit case); 'forbidden': IMDS turned off */
  tokenMode: 'ok' | 'hang' | 'forbidden' = 'ok';
  document = JSON.stringify({
    instanceId: 'i-0123456789abcdef0',
    privateIp: '10.0.1.23',
    region: 'eu-west-1',
  });
  private server: Server | undefined;
  private hanging: ServerResponse[] = [];

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    await new Promise<void>((resolve) => {
      this.server!.close(() => resolve());
      this.server!.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const token = req.headers['x-aws-ec2-metadata-token'] as string | undefined;
    const ttl = req.headers['x-aws-ec2-metadata-token-ttl-seconds'] as string | undefined;
    this.seen.push({ method: req.method!, path: req.url!, token, ttl });
    if (req.url === '/latest/api/token') {
      if (req.method !== 'PUT') return void res.writeHead(405).end();
      if (this.tokenMode === 'hang') return void this.hanging.push(res);
      if (this.tokenMode === 'forbidden') return void res.writeHead(403).end();
      if (!ttl || !(Number(ttl) >= 1 && Number(ttl) <= 21_600)) return void res.writeHead(400).end();
      const value = `token-${++this.issued}`;
      this.validTokens.add(value);
      return void res.writeHead(200).end(value);
    }
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (!token || !this.validTokens.has(token)) return void res.writeHead(401).end();
    const answers: Record<string, string> = {
      '/latest/meta-data/instance-id': 'i-0123456789abcdef0',
      '/latest/meta-data/local-ipv4': '10.0.1.23',
      '/latest/dynamic/instance-identity/document': this.document,
    };
    const answer = answers[req.url!];
    if (answer === undefined) return void res.writeHead(404).end();
    res.writeHead(200).end(answer);
  }
}

describe('IMDSv2 client', () => {
  let imds: FakeImds;
  beforeEach(async () => {
    imds = new FakeImds();
    await imds.start();
  });
  afterEach(async () => {
    await imds.stop();
  });

  it('gets a token first, then instance id, private IP and region with it', async () => {
    const identity = await new ImdsClient({ endpoint: imds.endpoint }).identity();

    expect(identity).toEqual({
      instanceId: 'i-0123456789abcdef0',
      privateIp: '10.0.1.23',
      region: 'eu-west-1',
    });
    expect(imds.seen[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token', ttl: '21600' });
    expect(imds.seen.slice(1).every((s) => s.method === 'GET' && s.token === 'token-1')).toBe(true);
    expect(imds.issued).toBe(1); // one token for all three reads
  });

  it('the fake refuses token-less GETs, as an IMDSv2-only instance does', async () => {
    const response = await fetch(`${imds.endpoint}/latest/meta-data/instance-id`);
    expect(response.status).toBe(401);
  });

  it('fetches a new token once when IMDS stops accepting the old one', async () => {
    const client = new ImdsClient({ endpoint: imds.endpoint });
    await client.get('/latest/meta-data/instance-id');
    imds.validTokens.clear();

    expect(await client.get('/latest/meta-data/local-ipv4')).toBe('10.0.1.23');
    expect(imds.issued).toBe(2);
  });

  it('renews the token before its six hours run out', async () => {
    let now = 0;
    const client = new ImdsClient({ endpoint: imds.endpoint, now: () => now });
    await client.get('/latest/meta-data/instance-id');
    now += 6 * 3_600_000 - 30_000;
    await client.get('/latest/meta-data/instance-id');
    expect(imds.issued).toBe(2);
  });

  it('explains the hop limit when the token request times out', async () => {
    imds.tokenMode = 'hang';
    const client = new ImdsClient({ endpoint: imds.endpoint, timeoutMs: 200 });

    await expect(client.identity()).rejects.toThrow(/hop limit.*--http-put-response-hop-limit 2/s);
  });

  it('says how to turn IMDS on when it answers 403', async () => {
    imds.tokenMode = 'forbidden';
    await expect(new ImdsClient({ endpoint: imds.endpoint }).identity()).rejects.toThrow(
      /--http-endpoint enabled/,
    );
  });

  it('says what to do when nothing listens (not on EC2)', async () => {
    const endpoint = imds.endpoint;
    await imds.stop();
    imds = new FakeImds();
    await imds.start(); // keep afterEach happy; the old port is closed now

    await expect(new ImdsClient({ endpoint }).identity()).rejects.toThrow(/cannot reach IMDS.*local mode/s);
  });

  it('refuses an identity document without a region', async () => {
    imds.document = '{"instanceId":"i-0123456789abcdef0"}';
    await expect(new ImdsClient({ endpoint: imds.endpoint }).identity()).rejects.toThrow(/--region/);
  });
});

describe('resolving the host identity', () => {
  let imds: FakeImds;
  beforeEach(async () => {
    imds = new FakeImds();
    await imds.start();
  });
  afterEach(async () => {
    await imds.stop();
  });

  const base = {
    apiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
    subnetFile: '/tmp/x.env',
    renewMarginMs: 3_600_000,
    ipMasq: false,
    once: false,
    releaseOnExit: false,
    healthzPort: 0,
    healthzIp: '127.0.0.1',
    logFormat: 'json' as const,
    logLevel: 'info' as const,
  };

  it('uses IMDS on EC2, with --private-ip and --region winning', async () => {
    const found = await resolveIdentity(
      { ...base, imdsEndpoint: imds.endpoint, privateIp: '10.0.2.50', region: 'us-east-1' },
      { log: silentLogger },
    );
    expect(found).toEqual({ instanceId: 'i-0123456789abcdef0', privateIp: '10.0.2.50', region: 'us-east-1' });
  });

  it('skips IMDS in local mode and uses the local stack identity ARN', async () => {
    const found = await resolveIdentity(
      { ...base, imdsEndpoint: imds.endpoint, localInstanceId: 'i-0abcdef0123456789', privateIp: '10.0.1.5' },
      { log: silentLogger },
    );
    expect(found.localIdentityArn).toBe(
      'arn:aws:sts::000000000000:assumed-role/vpc-lease-host/i-0abcdef0123456789',
    );
    expect(imds.seen).toEqual([]);
  });

  it('retries IMDS a few times (boot race), then gives up with the last error', async () => {
    imds.tokenMode = 'forbidden';
    const clock = new FakeClock();
    const resolving = resolveIdentity({ ...base, imdsEndpoint: imds.endpoint }, { log: silentLogger, clock });
    for (let i = 0; i < 4; i++) {
      await clock.nextSleep();
      clock.wakeNext();
    }
    await expect(resolving).rejects.toThrow(/turned off/);
    expect(imds.seen.filter((s) => s.path === '/latest/api/token')).toHaveLength(5);
  });
});

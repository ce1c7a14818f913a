/**
 * The agent's whole flow against an in-process lease API on 127.0.0.1 (real HTTP, the
 * real ApiClient in local mode), with a clock the test drives: a day of renewals and
 * an outage take milliseconds.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostAgent, type HostAgentOptions } from '../../agent/agent.js';
import { Backoff } from '../../agent/backoff.js';
import { localIdentityArn } from '../../agent/identity.js';
import { httpLeaseApi } from '../../agent/lease-api.js';
import { ApiClient } from '../../shared/http/api-client.js';
import { FakeClock, FakeLeaseApi, memoryLogger, until } from './agent-support.js';

const INSTANCE = 'i-0123456789abcdef0';
const HOUR = 3_600_000;

const fileFor = (subnetHost: string) =>
  `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${subnetHost}\nFLANNEL_MTU=9001\nFLANNEL_IPMASQ=false\n`;

describe('host agent flow', () => {
  let dir: string;
  let subnetFile: string;
  let clock: FakeClock;
  let api: FakeLeaseApi;
  let stop: AbortController;
  let log: ReturnType<typeof memoryLogger>;
  let running: Promise<number> | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vpc-lease-agent-'));
    subnetFile = join(dir, 'run', 'flannel', 'subnet.env');
    clock = new FakeClock();
    api = new FakeLeaseApi(clock);
    await api.start();
    stop = new AbortController();
    log = memoryLogger();
    running = undefined;
  });

  afterEach(async () => {
    stop.abort();
    await running;
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function agentWith(overrides: Partial<HostAgentOptions> = {}): HostAgent {
    const client = new ApiClient({
      apiUrl: api.url,
      localIdentityArn: localIdentityArn(INSTANCE),
      timeoutMs: 2_000,
    });
    return new HostAgent({
      api: httpLeaseApi(client),
      privateIp: '10.0.1.23',
      subnetFile,
      mtu: 9001,
      ipMasq: false,
      renewMarginMs: HOUR,
      once: false,
      releaseOnExit: false,
      log,
      signal: stop.signal,
      clock,
      // random() = 1 - tiny: the jittered delay is (almost) the ceiling, so assertions on bounds are exact.
      backoff: new Backoff({ baseMs: 1_000, capMs: 30_000, random: () => 0.999_999 }),
      ...overrides,
    });
  }

  function start(agent: HostAgent): void {
    running = agent.run();
  }

  const readFileText = () => readFile(subnetFile, 'utf8');

  async function writeOldFile(contents: string): Promise<void> {
    await mkdir(dirname(subnetFile), { recursive: true });
    await writeFile(subnetFile, contents);
  }

  it('acquires a lease, writes subnet.env, becomes ready and renews a margin before expiry', async () => {
    const agent = agentWith();
    start(agent);

    const firstSleep = await clock.nextSleep();
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
    expect(agent.isReady()).toBe(true);
    expect(agent.isLive()).toBe(true);
    expect(firstSleep).toBe(23 * HOUR); // 24 h lease, 60 min margin
    expect(api.puts()[0]).toMatchObject({ instanceId: INSTANCE, body: { privateIp: '10.0.1.23' } });

    const renewed = clock.nextSleep();
    clock.wakeNext();
    expect(await renewed).toBe(23 * HOUR);
    expect(api.puts()).toHaveLength(2);
    expect(api.puts()[1]?.body).toEqual({ privateIp: '10.0.1.23', previousSubnet: '10.244.1.0/24' });
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
  });

  it('asks for the subnet of the old file and gets it back', async () => {
    await writeOldFile(fileFor('10.244.42.1/24'));

    start(agentWith());
    await clock.nextSleep();

    expect(api.puts()[0]?.body).toEqual({ privateIp: '10.0.1.23', previousSubnet: '10.244.42.0/24' });
    expect(await readFileText()).toBe(fileFor('10.244.42.1/24'));
  });

  it('ignores a garbage old file and asks for any subnet', async () => {
    await writeOldFile('FLANNEL_SUBNET=banana\n\x00\x01garbage');

    start(agentWith());
    await clock.nextSleep();

    expect(api.puts()[0]?.body).toEqual({ privateIp: '10.0.1.23' });
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
    expect(log.text()).toContain('FLANNEL_SUBNET=banana');
  });

  it('with --once writes the file and exits 0 without renewing', async () => {
    const code = await agentWith({ once: true }).run();

    expect(code).toBe(0);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
    expect(api.puts()).toHaveLength(1);
    expect(clock.requested).toEqual([]);
  });

  it('with --once on a host whose file already holds its lease, ends with a success line', async () => {
    await writeOldFile(fileFor('10.244.1.1/24'));

    const code = await agentWith({ once: true }).run();

    expect(code).toBe(0);
    expect(log.lines.at(-1)).toMatchObject({
      level: 'info',
      message: 'lease held, subnet file up to date; exiting (--once)',
      fields: { subnet: '10.244.1.0/24', subnetFile },
    });
  });

  it('during an outage keeps the file and stays ready, then recovers when the API is back', async () => {
    const agent = agentWith();
    start(agent);
    await clock.nextSleep();
    const before = await stat(subnetFile);
    await api.stop(); // connection refused from now on

    let sleep = clock.nextSleep();
    clock.wakeNext(); // renewal time: the PUT fails
    expect(await sleep).toBeLessThanOrEqual(1_000); // first backoff ceiling
    for (let i = 0; i < 6; i++) {
      sleep = clock.nextSleep();
      clock.wakeNext();
      expect(await sleep).toBeLessThanOrEqual(30_000); // capped
    }
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
    expect((await stat(subnetFile)).mtimeMs).toBe(before.mtimeMs);
    expect(agent.isReady()).toBe(true); // the lease is still live
    expect(log.text()).toContain('keeping the subnet file');

    await api.restart();
    sleep = clock.nextSleep();
    clock.wakeNext();
    expect(await sleep).toBeGreaterThan(20 * HOUR); // renewed: back to the long wait
    expect(api.puts().length).toBeGreaterThanOrEqual(2);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
  });

  it('honours Retry-After on 503', async () => {
    start(agentWith());
    await clock.nextSleep();
    api.failNext({ status: 503, code: 'ServiceUnavailable', message: 'EC2 throttled', retryAfter: 7 });

    const sleep = clock.nextSleep();
    clock.wakeNext();

    expect(await sleep).toBe(7_000);
    expect(log.text()).toContain('EC2 throttled');
  });

  it('re-acquires a revoked lease (404 on renewal) and rewrites the file when the subnet changed', async () => {
    const agent = agentWith();
    start(agent);
    await clock.nextSleep();
    api.revoke(INSTANCE);
    api.occupy('10.244.1.0/24'); // someone else got our subnet in the meantime
    api.failNext({ status: 404, code: 'NotFound', message: 'no lease for i-0123456789abcdef0' });

    const sleep = clock.nextSleep();
    clock.wakeNext();

    expect(await sleep).toBe(23 * HOUR); // re-acquired at once, no backoff
    expect(api.puts().at(-1)?.body).toEqual({ privateIp: '10.0.1.23', previousSubnet: '10.244.1.0/24' });
    expect(await readFileText()).toBe(fileFor('10.244.2.1/24'));
    expect(log.text()).toContain('revoked');
    expect(log.text()).toContain('another subnet');
    expect(agent.isReady()).toBe(true);
  });

  it('rewrites the file when a renewal answers with another subnet', async () => {
    start(agentWith());
    await clock.nextSleep();
    api.revoke(INSTANCE);
    api.occupy('10.244.1.0/24');

    const sleep = clock.nextSleep();
    clock.wakeNext();
    await sleep;

    expect(await readFileText()).toBe(fileFor('10.244.2.1/24'));
  });

  it('exits 1 on 403 with the server message, keeping an existing file', async () => {
    await writeOldFile(fileFor('10.244.42.1/24'));
    api.failNext({
      status: 403,
      code: 'Forbidden',
      message: '10.0.1.23 is not an address of i-0123456789abcdef0',
    });

    const code = await agentWith().run();

    expect(code).toBe(1);
    expect(log.lines.at(-1)?.level).toBe('error');
    expect(log.text()).toContain('10.0.1.23 is not an address of i-0123456789abcdef0');
    expect(log.text()).toContain('host policy');
    expect(await readFileText()).toBe(fileFor('10.244.42.1/24'));
  });

  it.each([
    ['RouteLimitExceeded', 'route table rtb-1 holds 50 of 50 routes: raise the quota and RouteLimit'],
    ['SubnetsExhausted', 'no free subnet in 10.244.0.0/16'],
  ])('exits 1 on 409 %s with the server message', async (code, message) => {
    api.failNext({ status: 409, code, message });

    expect(await agentWith().run()).toBe(1);
    expect(log.text()).toContain(message);
    await expect(stat(subnetFile)).rejects.toThrow(/ENOENT/);
  });

  it("ends the server's sentence once before its own advice (no double period)", async () => {
    api.failNext({
      status: 409,
      code: 'RouteLimitExceeded',
      message:
        'Route table full: 50/50 routes in use. Raise the quota, or switch this cluster to the vxlan backend.',
    });

    expect(await agentWith().run()).toBe(1);
    expect(log.lines.at(-1)?.message).toBe(
      'the API answered 409 RouteLimitExceeded: Route table full: 50/50 routes in use. Raise the quota, ' +
        'or switch this cluster to the vxlan backend. An operator must act (see the message); then restart the agent.',
    );
  });

  it('asks again without previousSubnet when the API rejects it (400)', async () => {
    await writeOldFile('FLANNEL_NETWORK=10.99.0.0/16\nFLANNEL_SUBNET=10.99.3.1/24\n');
    api.failNext({ status: 400, code: 'ValidationError', message: 'previousSubnet is outside the network' });

    start(agentWith());
    await clock.nextSleep();

    expect(api.puts().map((r) => r.body?.previousSubnet)).toEqual(['10.99.3.0/24', undefined]);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
  });

  it('does not write the file while the route is still pending', async () => {
    api.routeState = 'pending';
    const agent = agentWith();
    start(agent);

    const sleep = await clock.nextSleep();
    expect(sleep).toBeLessThanOrEqual(1_000);
    await expect(stat(subnetFile)).rejects.toThrow(/ENOENT/);
    expect(agent.isReady()).toBe(false);

    api.routeState = 'active';
    const next = clock.nextSleep();
    clock.wakeNext();
    expect(await next).toBe(23 * HOUR);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
  });

  it('when the lease expires during the outage: says so once, turns unready, and gets the same subnet back', async () => {
    api.ttlMs = 2 * HOUR;
    const agent = agentWith({ renewMarginMs: 30 * 60_000 });
    start(agent);
    expect(await clock.nextSleep()).toBe(90 * 60_000);
    await api.stop();

    const expiresAt = clock.now() + 2 * HOUR;
    // Retry through the outage until past expiry, and once more so the agent notices.
    for (let failures = 0; clock.now() <= expiresAt || failures < 2; failures++) {
      if (failures > 500) throw new Error('the agent never got past the expiry');
      const sleep = clock.nextSleep();
      clock.wakeNext();
      await sleep;
    }
    expect(agent.isReady()).toBe(false);
    expect(log.lines.filter((l) => l.message.includes('lease expired')).length).toBe(1);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));

    await api.restart();
    const back = clock.nextSleep();
    clock.wakeNext();
    expect(await back).toBe(90 * 60_000);
    expect(agent.isReady()).toBe(true);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24'));
  });

  it('stops on SIGTERM while waiting for the renewal, without waiting it out', async () => {
    start(agentWith());
    await clock.nextSleep();
    const sleptAt = clock.now();
    const requests = api.requests.length;

    stop.abort();

    // exits although the clock never moves on to the renewal (a fake clock only moves when told)
    expect(await running).toBe(0);
    expect(clock.now()).toBe(sleptAt);
    expect(clock.sleeping).toBe(0);
    expect(api.requests).toHaveLength(requests);
    expect(await readFileText()).toBe(fileFor('10.244.1.1/24')); // the file stays for the next start
  });

  it('stops on SIGTERM while a request hangs, without waiting for an answer', async () => {
    api.failNext({ status: 0, hang: true });
    // the client would wait an hour for the answer: only the stop can end this run in time
    const patient = new ApiClient({
      apiUrl: api.url,
      localIdentityArn: localIdentityArn(INSTANCE),
      timeoutMs: HOUR,
    });
    start(agentWith({ api: httpLeaseApi(patient) }));
    await until(() => api.requests.length === 1, 5_000, 'the PUT to arrive');

    stop.abort();

    expect(await running).toBe(0);
    expect(api.requests).toHaveLength(1);
  });

  it('with --release-on-exit sends DELETE /v1/lease and removes the file on stop', async () => {
    const agent = agentWith({ releaseOnExit: true });
    start(agent);
    await clock.nextSleep();

    stop.abort();
    expect(await running).toBe(0);

    expect(api.requests.at(-1)).toMatchObject({ method: 'DELETE', path: '/v1/lease', instanceId: INSTANCE });
    expect(api.leases.has(INSTANCE)).toBe(false);
    await expect(stat(subnetFile)).rejects.toThrow(/ENOENT/);
    expect(agent.isLive()).toBe(false);
  });

  it('exits 1 with advice when the subnet file cannot be written', async () => {
    await writeFile(join(dir, 'not-a-dir'), '');
    const code = await agentWith({ subnetFile: join(dir, 'not-a-dir', 'subnet.env') }).run();

    expect(code).toBe(1);
    expect(log.text()).toContain('--subnet-file');
  });
});

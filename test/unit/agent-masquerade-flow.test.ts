/**
 * How the agent's loop uses masquerading (the Masquerade port), against the in-process lease
 * API on a driven clock. The port here records calls instead of running iptables: the real
 * rules are applied and checked inside network namespaces by the data path lab (test/lab).
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostAgent, type HostAgentOptions } from '../../agent/agent.js';
import { Backoff } from '../../agent/backoff.js';
import { localIdentityArn } from '../../agent/identity.js';
import { httpLeaseApi } from '../../agent/lease-api.js';
import type { MasqTarget } from '../../agent/masq-rules.js';
import { type Masquerade, MasqueradeError } from '../../agent/masquerade.js';
import { ApiClient } from '../../shared/http/api-client.js';
import { FakeClock, FakeLeaseApi, memoryLogger, until } from './agent-support.js';

const INSTANCE = 'i-0123456789abcdef0';

class RecordingMasquerade implements Masquerade {
  readonly calls: string[] = [];
  readonly applied: MasqTarget[][] = [];
  /** the subnet file's existence at each apply */
  readonly fileExistedAtApply: boolean[] = [];
  /** whether the API still held the lease at each remove */
  readonly leaseHeldAtRemove: boolean[] = [];
  failApply: Error | undefined;
  nextEnsure: 'intact' | 'restored' = 'intact';

  constructor(
    private readonly subnetFile: string,
    private readonly api: FakeLeaseApi,
  ) {}

  async apply(targets: readonly MasqTarget[]): Promise<void> {
    this.calls.push('apply');
    this.fileExistedAtApply.push(
      await stat(this.subnetFile).then(
        () => true,
        () => false,
      ),
    );
    if (this.failApply) throw this.failApply;
    this.applied.push([...targets]);
  }

  async ensure(): Promise<'intact' | 'restored'> {
    this.calls.push('ensure');
    return this.nextEnsure;
  }

  async remove(): Promise<void> {
    this.calls.push('remove');
    this.leaseHeldAtRemove.push(this.api.leases.has(INSTANCE));
  }
}

describe('the agent with --ip-masq', () => {
  let dir: string;
  let subnetFile: string;
  let clock: FakeClock;
  let api: FakeLeaseApi;
  let stop: AbortController;
  let log: ReturnType<typeof memoryLogger>;
  let masq: RecordingMasquerade;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vpc-lease-masq-'));
    subnetFile = join(dir, 'subnet.env');
    clock = new FakeClock();
    api = new FakeLeaseApi(clock);
    await api.start();
    stop = new AbortController();
    log = memoryLogger();
    masq = new RecordingMasquerade(subnetFile, api);
  });

  afterEach(async () => {
    stop.abort();
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
      ipMasq: true,
      masquerade: masq,
      renewMarginMs: 3_600_000,
      once: false,
      releaseOnExit: false,
      log,
      signal: stop.signal,
      clock,
      backoff: new Backoff({ baseMs: 1_000, capMs: 30_000, random: () => 0.5 }),
      ...overrides,
    });
  }

  it('installs the rules for the lease before subnet.env says FLANNEL_IPMASQ=true', async () => {
    expect(await agentWith({ once: true }).run()).toBe(0);

    expect(masq.applied).toEqual([[{ family: 'ipv4', network: '10.244.0.0/16', subnet: '10.244.1.0/24' }]]);
    expect(masq.fileExistedAtApply).toEqual([false]);
    expect(await readFile(subnetFile, 'utf8')).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=9001\nFLANNEL_IPMASQ=true\n',
    );
    expect(masq.calls).toEqual(['apply']);
  });

  it('installs IPv6 rules beside the IPv4 ones for a dual-stack lease, and writes both families', async () => {
    api.ipv6Network = 'fd00:10:244::/56';
    expect(await agentWith({ once: true }).run()).toBe(0);

    expect(masq.applied).toEqual([
      [
        { family: 'ipv4', network: '10.244.0.0/16', subnet: '10.244.1.0/24' },
        { family: 'ipv6', network: 'fd00:10:244::/56', subnet: 'fd00:10:244:1::/64' },
      ],
    ]);
    expect(await readFile(subnetFile, 'utf8')).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n' +
        'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\n' +
        'FLANNEL_MTU=9001\nFLANNEL_IPMASQ=true\n',
    );
  });

  it('exits 1 without writing subnet.env when the rules cannot be installed, naming --no-ip-masq', async () => {
    masq.failApply = new MasqueradeError(
      'iptables-restore -w 5 --noflush failed (exit 4): Permission denied.',
    );

    expect(await agentWith({ once: true }).run()).toBe(1);

    await expect(stat(subnetFile)).rejects.toThrow(/ENOENT/);
    expect(log.text()).toContain('cannot install the masquerade rules');
    expect(log.text()).toContain('--no-ip-masq');
  });

  it('re-asserts the rules every resync period and says so when they had gone', async () => {
    const running = agentWith({ masqResyncMs: 5_000 }).run();
    await until(() => masq.applied.length === 1, 5_000, 'the rules to be applied');
    await until(() => clock.sleeping === 2, 5_000, 'the renewal and the resync to sleep');

    masq.nextEnsure = 'restored';
    clock.advance(5_000);
    await until(() => masq.calls.filter((c) => c === 'ensure').length === 1, 5_000, 'a resync');
    await until(() => log.text().includes('masquerade rules were missing'), 5_000, 'the warning');

    stop.abort();
    expect(await running).toBe(0);
    expect(masq.calls).toEqual(['apply', 'ensure']);
  });

  it('removes the rules after the lease is released with --release-on-exit, and not before', async () => {
    const running = agentWith({ releaseOnExit: true }).run();
    await until(() => masq.applied.length === 1, 5_000, 'the rules to be applied');

    stop.abort();
    expect(await running).toBe(0);

    expect(masq.calls).toEqual(['apply', 'remove']);
    expect(masq.leaseHeldAtRemove).toEqual([false]);
  });

  it('keeps the rules when it stops without --release-on-exit (they survive restarts)', async () => {
    const running = agentWith().run();
    await until(() => masq.applied.length === 1, 5_000, 'the rules to be applied');

    stop.abort();
    expect(await running).toBe(0);
    expect(masq.calls).toEqual(['apply']);
  });
});

/**
 * The host agent's one loop, in place of flanneld: hold a lease on a subnet of the
 * overlay network and keep subnet.env telling the truth about it.
 *
 *   read the old subnet.env -> PUT /v1/lease (previousSubnet = its subnet)
 *   -> write subnet.env (only from a lease answer, and only once the routes exist)
 *   -> sleep until renew-margin before expiry -> PUT /v1/lease again -> ...
 *
 * Renewal is the same idempotent PUT as acquisition, so one loop does both. While the
 * API is unreachable the file is kept and the agent keeps trying (the lease is still
 * valid until expiresAt, and the routes stay in place); a refusal a person must fix
 * ends the run with exit status 1.
 */
import { rm } from 'node:fs/promises';
import type { LeaseJson } from '../shared/http/contract.js';
import { Backoff } from './backoff.js';
import { type Clock, sleepUntil, systemClock } from './clock.js';
import { decideOnFailure } from './errors.js';
import type { LeaseApi } from './lease-api.js';
import type { Logger } from './log.js';
import type { MasqTarget } from './masq-rules.js';
import { MASQ_RESYNC_MS, type Masquerade } from './masquerade.js';
import { planRenewal } from './renewal.js';
import { formatSubnetEnv, readSubnetEnv, subnetEnvOfLease, writeSubnetEnvAtomically } from './subnet-env.js';

export interface HostAgentOptions {
  api: LeaseApi;
  privateIp: string;
  subnetFile: string;
  mtu: number;
  /** FLANNEL_IPMASQ; when true the CLI also passes `masquerade`, which makes it so */
  ipMasq: boolean;
  /**
   * The rules of --ip-masq: applied for each lease before subnet.env names it, re-asserted
   * every `masqResyncMs` while the agent runs, removed when --release-on-exit releases.
   */
  masquerade?: Masquerade;
  /** default MASQ_RESYNC_MS (flanneld's --iptables-resync) */
  masqResyncMs?: number;
  renewMarginMs: number;
  once: boolean;
  releaseOnExit: boolean;
  log: Logger;
  /** aborted by SIGTERM/SIGINT: every wait and the request in flight give up at once */
  signal: AbortSignal;
  clock?: Clock;
  backoff?: Backoff;
  /** how long the DELETE of --release-on-exit may take; default 5 s */
  releaseTimeoutMs?: number;
}

export const EXIT_OK = 0;
/** the API refused this host, or the subnet file cannot be written: a person must act */
export const EXIT_REFUSED = 1;

type Attempt = { ok: true; lease: LeaseJson } | { ok: false; error: unknown } | { stopped: true };

export class HostAgent {
  private readonly options: HostAgentOptions;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private running = false;
  /** the latest lease the API granted; undefined before the first and after a revocation */
  private lease: LeaseJson | undefined;
  /** the subnet subnet.env names (written by this run or found at start) */
  private fileSubnet: string | undefined;
  private published = false;
  private sentAnyRequest = false;
  private expiryReported = false;
  /** the targets the masquerade rules were last applied for (JSON), undefined before */
  private masqApplied: string | undefined;
  /** apply/ensure/remove one at a time: they read and then rewrite the same chain */
  private masqQueue: Promise<unknown> = Promise.resolve();

  constructor(options: HostAgentOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? new Backoff();
  }

  /** /healthz: the loop is running */
  isLive(): boolean {
    return this.running;
  }

  /** /readyz: subnet.env was written from a lease that has not expired */
  isReady(): boolean {
    return (
      this.running &&
      this.published &&
      this.lease !== undefined &&
      Date.parse(this.lease.expiresAt) > this.clock.now()
    );
  }

  /** Resolves with the process exit status. */
  async run(): Promise<number> {
    this.running = true;
    const resync = new AbortController();
    const keeping =
      this.options.masquerade && !this.options.once ? this.keepMasquerade(resync.signal) : undefined;
    try {
      return await this.loop();
    } finally {
      this.running = false;
      resync.abort();
      await keeping;
      if (this.options.releaseOnExit && this.sentAnyRequest) await this.release();
    }
  }

  /** flanneld's resync: every few seconds, put back masquerade rules that someone deleted. */
  private async keepMasquerade(stop: AbortSignal): Promise<void> {
    const { log, masquerade } = this.options;
    const every = this.options.masqResyncMs ?? MASQ_RESYNC_MS;
    while (!stop.aborted) {
      await this.clock.sleep(every, stop);
      if (stop.aborted || this.masqApplied === undefined || !masquerade) continue;
      try {
        const outcome = await this.serialMasq(() => masquerade.ensure());
        if (outcome === 'restored') {
          log.warn('masquerade rules were missing (deleted by someone else); installed them again', {
            subnet: this.lease?.subnet,
          });
        }
      } catch (error) {
        log.error(`cannot check the masquerade rules: ${(error as Error).message}`);
      }
    }
  }

  private serialMasq<T>(work: () => Promise<T>): Promise<T> {
    const next = this.masqQueue.then(work, work);
    this.masqQueue = next.catch(() => undefined);
    return next;
  }

  private async loop(): Promise<number> {
    const { log, signal } = this.options;
    let previousSubnet = await this.previousSubnetFromFile();
    let reacquiredImmediately = false;

    while (!signal.aborted) {
      const attempt = await this.acquire(previousSubnet);
      if ('stopped' in attempt) break;

      if (attempt.ok) {
        const lease = attempt.lease;
        this.lease = lease;
        this.expiryReported = false;
        reacquiredImmediately = false;
        previousSubnet = lease.subnet;
        const pending = (lease.routes ?? []).filter((r) => r.state !== 'active');
        if (pending.length > 0 && !this.published) {
          // DESIGN: subnet.env only once the route exists, or containers would start unreachable.
          const delay = this.backoff.next();
          log.warn(
            'lease granted but its routes are not written yet; asking again before writing the subnet file',
            {
              subnet: lease.subnet,
              pendingRouteTables: pending.map((r) => r.routeTableId),
              retryInMs: delay,
            },
          );
          await this.clock.sleep(delay, signal);
          continue;
        }
        this.backoff.reset();
        if (pending.length > 0) {
          log.warn('lease renewed but some routes are missing; the control plane rewrites them', {
            subnet: lease.subnet,
            pendingRouteTables: pending.map((r) => r.routeTableId),
          });
        }
        const written = await this.publish(lease);
        if (written !== undefined) return written;
        if (this.options.once) {
          // the one line that says --once succeeded, also when the file already held this lease
          log.info('lease held, subnet file up to date; exiting (--once)', {
            subnet: lease.subnet,
            expiresAt: lease.expiresAt,
            subnetFile: this.options.subnetFile,
          });
          return EXIT_OK;
        }

        const plan = planRenewal(Date.parse(lease.expiresAt), this.clock.now(), this.options.renewMarginMs);
        if (plan.marginTooLong) {
          log.warn('--renew-margin is not shorter than the lease; renewing half-way to expiry instead', {
            renewMarginMinutes: this.options.renewMarginMs / 60_000,
            expiresAt: lease.expiresAt,
          });
        }
        log.info('lease held', {
          subnet: lease.subnet,
          expiresAt: lease.expiresAt,
          renewAt: new Date(plan.renewAt).toISOString(),
        });
        await sleepUntil(this.clock, plan.renewAt, signal);
        continue;
      }

      const decision = decideOnFailure(attempt.error, {
        hadLease: this.lease !== undefined || this.published,
        sentHint: previousSubnet !== undefined,
      });
      switch (decision.action) {
        case 'exit':
          log.error(decision.message, { subnetFile: this.options.subnetFile });
          return EXIT_REFUSED;
        case 'drop-hint':
          log.warn(decision.message, { previousSubnet });
          previousSubnet = undefined;
          continue;
        case 'reacquire': {
          log.warn(decision.message, { subnet: this.lease?.subnet ?? previousSubnet });
          this.lease = undefined;
          // Once at once (a revocation is not an outage), then with backoff if it keeps happening.
          if (!reacquiredImmediately) {
            reacquiredImmediately = true;
            continue;
          }
          await this.clock.sleep(this.backoff.next(), signal);
          continue;
        }
        case 'retry': {
          const delay = this.backoff.next(decision.retryAfterSeconds);
          this.reportOutage(decision.message, delay);
          await this.clock.sleep(delay, signal);
        }
      }
    }
    log.info('stopped');
    return EXIT_OK;
  }

  /** PUT /v1/lease, abandoned (not awaited) when the agent is told to stop. */
  private async acquire(previousSubnet: string | undefined): Promise<Attempt> {
    this.sentAnyRequest = true;
    const request = this.options.api.acquire({
      privateIp: this.options.privateIp,
      ...(previousSubnet !== undefined ? { previousSubnet } : {}),
    });
    const result = await untilAborted(request, this.options.signal);
    if (result === ABORTED) return { stopped: true };
    return result;
  }

  private reportOutage(message: string, retryInMs: number): void {
    const { log } = this.options;
    const expiresAt = this.lease ? Date.parse(this.lease.expiresAt) : undefined;
    if (expiresAt === undefined) {
      log.warn(`cannot get a lease yet: ${message}`, { retryInMs });
      return;
    }
    if (expiresAt > this.clock.now()) {
      log.warn(
        `cannot renew the lease; keeping the subnet file, it stays valid until the lease expires: ${message}`,
        {
          subnet: this.lease?.subnet,
          expiresAt: this.lease?.expiresAt,
          retryInMs,
        },
      );
      return;
    }
    if (!this.expiryReported) {
      this.expiryReported = true;
      log.error(
        'the lease expired while the API was unreachable: the control plane may reclaim the subnet and its route. ' +
          'Keeping the subnet file and asking for the same subnet again; check the API (vpc-lease routes, the API logs).',
        { subnet: this.lease?.subnet, expiredAt: this.lease?.expiresAt },
      );
    }
    log.warn(`cannot get the lease back yet: ${message}`, { retryInMs });
  }

  /** Writes subnet.env for the lease when its bytes differ; returns an exit status when that is impossible. */
  private async publish(lease: LeaseJson): Promise<number | undefined> {
    const { log, subnetFile } = this.options;
    if (this.fileSubnet !== undefined && this.fileSubnet !== lease.subnet) {
      log.warn(
        'the API granted another subnet than the one in the subnet file; containers started before keep addresses of the old one: restart them (or drain the node)',
        { previousSubnet: this.fileSubnet, subnet: lease.subnet },
      );
    }
    if (this.options.masquerade) {
      const failed = await this.applyMasquerade(this.options.masquerade, lease);
      if (failed !== undefined) return failed;
    }
    // In dual stack also FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET, as flanneld writes them.
    const contents = formatSubnetEnv(
      subnetEnvOfLease(lease, { mtu: this.options.mtu, ipMasq: this.options.ipMasq }),
    );
    const current = await readSubnetEnv(subnetFile);
    if (current.status === 'read' && current.contents === contents) {
      this.published = true;
      this.fileSubnet = lease.subnet;
      return undefined;
    }
    try {
      await writeSubnetEnvAtomically(subnetFile, contents);
    } catch (error) {
      log.error(
        `cannot write the subnet file: ${(error as Error).message}. Run the agent as root or point --subnet-file at a writable path.`,
        { subnetFile },
      );
      return EXIT_REFUSED;
    }
    this.published = true;
    this.fileSubnet = lease.subnet;
    log.info('subnet file written', {
      subnetFile,
      subnet: lease.subnet,
      network: lease.network,
      ...(lease.ipv6Subnet !== undefined
        ? { ipv6Subnet: lease.ipv6Subnet, ipv6Network: lease.ipv6Network }
        : {}),
      mtu: this.options.mtu,
    });
    return undefined;
  }

  /** Before subnet.env says FLANNEL_IPMASQ=true for this lease, the rules for it must exist. */
  private async applyMasquerade(masquerade: Masquerade, lease: LeaseJson): Promise<number | undefined> {
    // flanneld's MasqIP6Rules beside the IPv4 ones in dual stack (ip6tables, the same chain name).
    const targets: MasqTarget[] = [{ family: 'ipv4', network: lease.network, subnet: lease.subnet }];
    if (lease.ipv6Network !== undefined && lease.ipv6Subnet !== undefined) {
      targets.push({ family: 'ipv6', network: lease.ipv6Network, subnet: lease.ipv6Subnet });
    }
    const key = JSON.stringify(targets);
    if (key === this.masqApplied) return undefined;
    try {
      await this.serialMasq(() => masquerade.apply(targets));
    } catch (error) {
      this.options.log.error(`cannot install the masquerade rules: ${(error as Error).message}`, {
        subnet: lease.subnet,
      });
      return EXIT_REFUSED;
    }
    this.masqApplied = key;
    this.options.log.info('masquerade rules installed', {
      network: lease.network,
      subnet: lease.subnet,
      ...(targets.length > 1 ? { ipv6Network: lease.ipv6Network, ipv6Subnet: lease.ipv6Subnet } : {}),
    });
    return undefined;
  }

  private async previousSubnetFromFile(): Promise<string | undefined> {
    const { log, subnetFile } = this.options;
    const previous = await readSubnetEnv(subnetFile);
    if (previous.status === 'missing') {
      log.info('no previous subnet file; asking for any free subnet', { subnetFile });
      return undefined;
    }
    if (previous.status === 'unreadable') {
      log.warn(`${previous.message}; asking for any free subnet`, { subnetFile });
      return undefined;
    }
    for (const problem of previous.env.problems) log.warn(`previous subnet file: ${problem}`, { subnetFile });
    this.fileSubnet = previous.env.subnet;
    if (previous.env.subnet !== undefined) {
      log.info('asking for the previous subnet again', { subnetFile, previousSubnet: previous.env.subnet });
    }
    return previous.env.subnet;
  }

  /** With the lease gone, its masquerade rules go too (the next holder of the subnet may be another host). */
  private async removeMasquerade(): Promise<void> {
    const { masquerade, log } = this.options;
    if (!masquerade) return;
    try {
      await this.serialMasq(() => masquerade.remove());
      this.masqApplied = undefined;
      log.info('masquerade rules removed');
    } catch (error) {
      log.warn(`could not remove the masquerade rules: ${(error as Error).message}`);
    }
  }

  /** --release-on-exit: bounded, best effort; the control plane reclaims the lease anyway when it expires. */
  private async release(): Promise<void> {
    const { log, api, subnetFile } = this.options;
    const timeoutMs = this.options.releaseTimeoutMs ?? 5_000;
    const timer = new AbortController();
    try {
      const outcome = await Promise.race([
        api.release().then(() => 'released' as const),
        this.clock.sleep(timeoutMs, timer.signal).then(() => 'timed-out' as const),
      ]);
      if (outcome === 'timed-out') throw new Error(`no answer within ${timeoutMs} ms`);
      // The file would name a subnet this host no longer holds; another host may get it next.
      if (this.published) await rm(subnetFile, { force: true });
      log.info('lease released', { subnet: this.lease?.subnet, subnetFile });
      await this.removeMasquerade();
    } catch (error) {
      log.warn(
        'could not release the lease; the control plane reclaims it when it expires or the instance terminates',
        { error, subnet: this.lease?.subnet, expiresAt: this.lease?.expiresAt },
      );
    } finally {
      timer.abort();
    }
  }
}

const ABORTED = Symbol('aborted');

/** The outcome of `promise`, or ABORTED as soon as `signal` aborts (the promise is then left to settle alone). */
function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
): Promise<{ ok: true; lease: T } | { ok: false; error: unknown } | typeof ABORTED> {
  const settled = promise.then(
    (lease) => ({ ok: true as const, lease }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    void settled.then((outcome) => {
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    });
  });
}

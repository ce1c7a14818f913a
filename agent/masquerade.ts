/**
 * IP masquerade as flanneld's --ip-masq does it: the rules of masq-rules.ts, applied with
 * the host's iptables, kept in place while the agent runs, and removed with the lease.
 *
 * - apply: one `iptables-restore --noflush` transaction rewrites the agent's chain whole
 *   (idempotent: the same lease gives the same chain; another subnet replaces the old rules)
 *   and adds the POSTROUTING jump when it is missing.
 * - ensure: what flanneld does every --iptables-resync seconds: if any rule or the jump is
 *   gone (someone flushed the nat table, a firewall reload), apply again.
 * - remove: the jump, then the chain. Only --release-on-exit calls it: rules otherwise
 *   survive the agent, like the lease and subnet.env they belong to.
 *
 * Only this module runs iptables; the rules themselves are planned in masq-rules.ts.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  commandsOf,
  MASQ_CHAIN,
  MASQ_JUMP,
  type MasqFamily,
  type MasqPlan,
  type MasqTarget,
  type NatRule,
  planMasqRules,
  restoreInput,
  supportsRandomFully,
} from './masq-rules.js';

/** flanneld's default --iptables-resync */
export const MASQ_RESYNC_MS = 5_000;

const DISABLE_HINT =
  'Fix that, or pass --no-ip-masq (VPCLEASE_IP_MASQ=false) to leave masquerading to the CNI plugin (FLANNEL_IPMASQ=false).';

/** Masquerading cannot be set up here; the message says why and names --no-ip-masq. */
export class MasqueradeError extends Error {
  constructor(message: string) {
    super(`${message} ${DISABLE_HINT}`);
    this.name = 'MasqueradeError';
  }
}

/** What the agent asks of masquerading; the HostAgent knows nothing of iptables. */
export interface Masquerade {
  /** makes the rules those of `targets`, replacing any earlier ones */
  apply(targets: readonly MasqTarget[]): Promise<void>;
  /** puts back rules someone deleted; 'restored' when it had to */
  ensure(): Promise<'intact' | 'restored'>;
  /** removes the jump and the chain (of every family applied in this run or found) */
  remove(): Promise<void>;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with code ENOENT when it is not installed. */
export type RunCommand = (command: string, args: readonly string[], input?: string) => Promise<CommandResult>;

export const runCommand: RunCommand = (command, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.stdin.on('error', () => {}); // it exited without reading its input: its exit status says why
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });

/** CAP_NET_ADMIN is bit 12 of the capability sets (linux/capability.h). */
const CAP_NET_ADMIN = 12n;

/** From /proc/self/status: false when CapEff lacks CAP_NET_ADMIN, undefined when it cannot tell. */
export function hasNetAdmin(procStatus: string): boolean | undefined {
  const match = /^CapEff:\s*([0-9a-f]+)$/im.exec(procStatus);
  if (!match) return undefined;
  return ((BigInt(`0x${match[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

export interface IptablesMasqueradeDeps {
  run?: RunCommand;
  readProcStatus?: () => Promise<string>;
}

/**
 * Checks that masquerading can work here (the capability, the tools, the nat table) before
 * the agent asks for a lease, so a host that cannot masquerade never writes
 * FLANNEL_IPMASQ=true. Throws MasqueradeError otherwise.
 */
export async function prepareMasquerade(deps: IptablesMasqueradeDeps = {}): Promise<Masquerade> {
  const run = deps.run ?? runCommand;
  const status = await (deps.readProcStatus ?? (() => readFile('/proc/self/status', 'utf8')))().catch(
    () => '',
  );
  if (hasNetAdmin(status) === false) {
    throw new MasqueradeError(
      'IP masquerade needs CAP_NET_ADMIN to install its iptables rules: run the agent as root (the systemd unit does).',
    );
  }
  const randomFully = await probeFamily(run, 'ipv4');
  return new IptablesMasquerade(run, { ipv4: randomFully });
}

/** `iptables --version` and a read of the nat table; returns whether --random-fully is supported. */
async function probeFamily(run: RunCommand, family: MasqFamily): Promise<boolean> {
  const { iptables } = commandsOf(family);
  const version = await runIptables(run, iptables, ['--version']);
  await runIptables(run, iptables, ['-w', '5', '-t', 'nat', '-S', 'POSTROUTING']);
  return supportsRandomFully(version.stdout);
}

async function runIptables(
  run: RunCommand,
  command: string,
  args: readonly string[],
  input?: string,
): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await run(command, args, input);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MasqueradeError(
        `IP masquerade needs ${command}, which is not installed (Debian/Ubuntu: apt-get install iptables; Amazon Linux/RHEL: dnf install iptables-nft).`,
      );
    }
    throw new MasqueradeError(`cannot run ${command}: ${(error as Error).message}.`);
  }
  if (result.code !== 0) {
    throw new MasqueradeError(
      `${command} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}.`,
    );
  }
  return result;
}

class IptablesMasquerade implements Masquerade {
  private plans: MasqPlan[] = [];

  constructor(
    private readonly run: RunCommand,
    /** --random-fully support per family probed so far */
    private readonly randomFully: Partial<Record<MasqFamily, boolean>>,
  ) {}

  async apply(targets: readonly MasqTarget[]): Promise<void> {
    const plans: MasqPlan[] = [];
    for (const target of targets) {
      this.randomFully[target.family] ??= await probeFamily(this.run, target.family);
      plans.push(planMasqRules(target, { randomFully: this.randomFully[target.family]! }));
    }
    for (const plan of plans) await this.write(plan);
    this.plans = plans;
  }

  async ensure(): Promise<'intact' | 'restored'> {
    let restored = false;
    for (const plan of this.plans) {
      if (await this.intact(plan)) continue;
      await this.write(plan);
      restored = true;
    }
    return restored ? 'restored' : 'intact';
  }

  async remove(): Promise<void> {
    const families = new Set<MasqFamily>(['ipv4', ...this.plans.map((p) => p.family)]);
    for (const family of families) {
      const { iptables } = commandsOf(family);
      const jump = MASQ_JUMP;
      // A jump added twice by hand would keep a deleted chain referenced: delete every copy.
      while (await this.exists(iptables, jump)) {
        await runIptables(this.run, iptables, ['-w', '5', '-t', 'nat', '-D', jump.chain, ...jump.spec]);
      }
      if (await this.chainExists(iptables)) {
        await runIptables(this.run, iptables, ['-w', '5', '-t', 'nat', '-F', MASQ_CHAIN]);
        await runIptables(this.run, iptables, ['-w', '5', '-t', 'nat', '-X', MASQ_CHAIN]);
      }
    }
    this.plans = [];
  }

  private async write(plan: MasqPlan): Promise<void> {
    const { iptables, restore } = commandsOf(plan.family);
    const withJump = !(await this.exists(iptables, plan.jump));
    await runIptables(this.run, restore, ['-w', '5', '--noflush'], restoreInput(plan, { withJump }));
  }

  private async intact(plan: MasqPlan): Promise<boolean> {
    const { iptables } = commandsOf(plan.family);
    if (!(await this.chainExists(iptables))) return false;
    for (const rule of [...plan.rules, plan.jump]) {
      if (!(await this.exists(iptables, rule))) return false;
    }
    return true;
  }

  /** iptables -C: 0 when the rule is there, 1 when not (or its chain is missing). */
  private async exists(iptables: string, rule: NatRule): Promise<boolean> {
    const result = await this.run(iptables, ['-w', '5', '-t', 'nat', '-C', rule.chain, ...rule.spec]);
    return result.code === 0;
  }

  private async chainExists(iptables: string): Promise<boolean> {
    const result = await this.run(iptables, ['-w', '5', '-t', 'nat', '-S', MASQ_CHAIN]);
    return result.code === 0;
  }
}

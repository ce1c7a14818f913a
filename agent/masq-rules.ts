/**
 * The masquerade rules of flanneld's --ip-masq, planned without touching the kernel.
 *
 * Same rules and order as flannel's MasqRules (flannel-io/flannel,
 * pkg/trafficmngr/iptables/iptables.go, `masqRules` / `masqIP6Rules`), in the agent's own
 * chain of the nat table instead of FLANNEL-POSTRTG:
 *
 *   POSTROUTING       -j VPCLEASE-POSTRTG                      (jump to our chain)
 *   VPCLEASE-POSTRTG  -m mark --mark 0x4000/0x4000 -j RETURN   kube-proxy already masquerades these
 *                     -s SUBNET  -d NETWORK -j RETURN           container -> container: keep the source
 *                     -s NETWORK -d SUBNET  -j RETURN           (both directions)
 *                     ! -s NETWORK -d SUBNET -j RETURN          outside -> this host's containers: untouched
 *                     -s NETWORK ! -d 224.0.0.0/4 -j MASQUERADE containers -> anywhere else: the host's address
 *                     ! -s NETWORK -d NETWORK -j MASQUERADE     the host itself -> remote containers
 *
 * The first RETURNs are why the VPC, and the receiving container, see the sending
 * container's address; the MASQUERADE is why egress works at all, since an internet gateway
 * (or NAT gateway) translates only addresses the VPC assigned to the instance.
 */
export type MasqFamily = 'ipv4' | 'ipv6';

/** The agent's own nat chain; everything in it is the agent's, so it may be rewritten whole. */
export const MASQ_CHAIN = 'VPCLEASE-POSTRTG';
export const MASQ_COMMENT = 'vpc-lease masq';
/** kube-proxy's masquerade mark (flannel's trafficmngr.KubeProxyMark) */
export const KUBE_PROXY_MARK = '0x4000/0x4000';

/** POSTROUTING -> the agent's chain (the same for both families) */
export const MASQ_JUMP: NatRule = {
  chain: 'POSTROUTING',
  spec: ['-m', 'comment', '--comment', MASQ_COMMENT, '-j', MASQ_CHAIN],
};

const MULTICAST: Record<MasqFamily, string> = { ipv4: '224.0.0.0/4', ipv6: 'ff00::/8' };

/** One rule of the nat table: the chain it goes in and its match/target words, as iptables takes them. */
export interface NatRule {
  readonly chain: string;
  readonly spec: readonly string[];
}

export interface MasqTarget {
  family: MasqFamily;
  /** the overlay network (FLANNEL_NETWORK / Network), e.g. 10.244.0.0/16 */
  network: string;
  /** this host's subnet in network form, e.g. 10.244.7.0/24 */
  subnet: string;
}

export interface MasqPlan {
  readonly family: MasqFamily;
  /** POSTROUTING -> our chain; installed once, never duplicated */
  readonly jump: NatRule;
  /** the whole contents of MASQ_CHAIN, in order */
  readonly rules: readonly NatRule[];
}

/**
 * flannel adds --random-fully when iptables supports it (go-iptables: iptables 1.6.2 or
 * later): without it, two containers connecting to the same destination from the same
 * source port can get the same translated port and one connection is lost.
 */
export function planMasqRules(target: MasqTarget, options: { randomFully: boolean }): MasqPlan {
  const { network, subnet, family } = target;
  const comment = ['-m', 'comment', '--comment', MASQ_COMMENT];
  const masquerade = options.randomFully ? ['-j', 'MASQUERADE', '--random-fully'] : ['-j', 'MASQUERADE'];
  const rule = (...spec: string[]): NatRule => ({ chain: MASQ_CHAIN, spec });
  return {
    family,
    jump: MASQ_JUMP,
    rules: [
      rule('-m', 'mark', '--mark', KUBE_PROXY_MARK, ...comment, '-j', 'RETURN'),
      rule('-s', subnet, '-d', network, ...comment, '-j', 'RETURN'),
      rule('-s', network, '-d', subnet, ...comment, '-j', 'RETURN'),
      rule('!', '-s', network, '-d', subnet, ...comment, '-j', 'RETURN'),
      rule('-s', network, '!', '-d', MULTICAST[family], ...comment, ...masquerade),
      rule('!', '-s', network, '-d', network, ...comment, ...masquerade),
    ],
  };
}

/** `iptables v1.8.9 (nf_tables)` -> whether MASQUERADE takes --random-fully (1.6.2 and later). */
export function supportsRandomFully(versionOutput: string): boolean {
  const match = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (!match) return false;
  const [major, minor, patch] = match.slice(1).map(Number) as [number, number, number];
  if (major !== 1) return major > 1;
  if (minor !== 6) return minor > 6;
  return patch >= 2;
}

/**
 * The iptables-restore input (applied with --noflush, so nothing else is touched) that makes
 * MASQ_CHAIN exactly `plan.rules`: declaring the chain creates it, or empties it when it
 * exists, and the rules follow in one transaction, so no packet sees half a chain.
 * The jump is added only when `withJump` (the caller found it missing).
 */
export function restoreInput(plan: MasqPlan, options: { withJump: boolean }): string {
  const lines = ['*nat', `:${MASQ_CHAIN} - [0:0]`];
  for (const rule of plan.rules) lines.push(restoreLine('-A', rule));
  if (options.withJump) lines.push(restoreLine('-A', plan.jump));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

function restoreLine(action: '-A' | '-D', rule: NatRule): string {
  const words = rule.spec.map((word) => (/^[A-Za-z0-9_./:!-]+$/.test(word) ? word : `"${word}"`));
  return [action, rule.chain, ...words].join(' ');
}

/** iptables or ip6tables, with their -restore */
export function commandsOf(family: MasqFamily): { iptables: string; restore: string } {
  return family === 'ipv4'
    ? { iptables: 'iptables', restore: 'iptables-restore' }
    : { iptables: 'ip6tables', restore: 'ip6tables-restore' };
}

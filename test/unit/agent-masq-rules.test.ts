import { describe, expect, it } from 'vitest';
import { MASQ_CHAIN, planMasqRules, restoreInput, supportsRandomFully } from '../../agent/masq-rules.js';
import { hasNetAdmin } from '../../agent/masquerade.js';

const C = ['-m', 'comment', '--comment', 'vpc-lease masq'];

describe('masquerade rules (flannel MasqRules, in the chain VPCLEASE-POSTRTG)', () => {
  it('keeps traffic inside the network unmasqueraded and masquerades the rest, in flannel order', () => {
    const plan = planMasqRules(
      { family: 'ipv4', network: '10.244.0.0/16', subnet: '10.244.7.0/24' },
      { randomFully: true },
    );
    expect(MASQ_CHAIN).toBe('VPCLEASE-POSTRTG');
    expect(plan.jump).toEqual({ chain: 'POSTROUTING', spec: [...C, '-j', 'VPCLEASE-POSTRTG'] });
    expect(plan.rules.map((r) => [r.chain, ...r.spec].join(' '))).toEqual([
      'VPCLEASE-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment vpc-lease masq -j RETURN',
      'VPCLEASE-POSTRTG -s 10.244.7.0/24 -d 10.244.0.0/16 -m comment --comment vpc-lease masq -j RETURN',
      'VPCLEASE-POSTRTG -s 10.244.0.0/16 -d 10.244.7.0/24 -m comment --comment vpc-lease masq -j RETURN',
      'VPCLEASE-POSTRTG ! -s 10.244.0.0/16 -d 10.244.7.0/24 -m comment --comment vpc-lease masq -j RETURN',
      'VPCLEASE-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment vpc-lease masq -j MASQUERADE --random-fully',
      'VPCLEASE-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment vpc-lease masq -j MASQUERADE --random-fully',
    ]);
  });

  it('leaves out --random-fully when iptables does not support it', () => {
    const plan = planMasqRules(
      { family: 'ipv4', network: '172.30.0.0/16', subnet: '172.30.176.0/21' },
      { randomFully: false },
    );
    expect(plan.rules.slice(4).map((r) => r.spec.join(' '))).toEqual([
      '-s 172.30.0.0/16 ! -d 224.0.0.0/4 -m comment --comment vpc-lease masq -j MASQUERADE',
      '! -s 172.30.0.0/16 -d 172.30.0.0/16 -m comment --comment vpc-lease masq -j MASQUERADE',
    ]);
  });

  it('spares IPv6 multicast (ff00::/8) in the IPv6 plan', () => {
    const plan = planMasqRules(
      { family: 'ipv6', network: 'fd00:10:244::/56', subnet: 'fd00:10:244:7::/64' },
      { randomFully: true },
    );
    expect(plan.rules[4]!.spec.join(' ')).toBe(
      '-s fd00:10:244::/56 ! -d ff00::/8 -m comment --comment vpc-lease masq -j MASQUERADE --random-fully',
    );
    expect(plan.rules[1]!.spec.slice(0, 4)).toEqual(['-s', 'fd00:10:244:7::/64', '-d', 'fd00:10:244::/56']);
  });

  it('rewrites the whole chain in one iptables-restore transaction, adding the jump only when asked', () => {
    const plan = planMasqRules(
      { family: 'ipv4', network: '10.244.0.0/16', subnet: '10.244.7.0/24' },
      { randomFully: false },
    );
    expect(restoreInput(plan, { withJump: true })).toBe(
      [
        '*nat',
        ':VPCLEASE-POSTRTG - [0:0]',
        '-A VPCLEASE-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "vpc-lease masq" -j RETURN',
        '-A VPCLEASE-POSTRTG -s 10.244.7.0/24 -d 10.244.0.0/16 -m comment --comment "vpc-lease masq" -j RETURN',
        '-A VPCLEASE-POSTRTG -s 10.244.0.0/16 -d 10.244.7.0/24 -m comment --comment "vpc-lease masq" -j RETURN',
        '-A VPCLEASE-POSTRTG ! -s 10.244.0.0/16 -d 10.244.7.0/24 -m comment --comment "vpc-lease masq" -j RETURN',
        '-A VPCLEASE-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "vpc-lease masq" -j MASQUERADE',
        '-A VPCLEASE-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "vpc-lease masq" -j MASQUERADE',
        '-A POSTROUTING -m comment --comment "vpc-lease masq" -j VPCLEASE-POSTRTG',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(restoreInput(plan, { withJump: false })).not.toContain('POSTROUTING');
  });

  it.each([
    ['iptables v1.8.9 (nf_tables)', true],
    ['iptables v1.6.2', true],
    ['iptables v1.6.1', false],
    ['iptables v1.4.21', false],
    ['ip6tables v1.8.7 (legacy)', true],
    ['something else', false],
  ])('%s supports --random-fully: %s', (version, expected) => {
    expect(supportsRandomFully(version)).toBe(expected);
  });

  it('reads CAP_NET_ADMIN (bit 12) from CapEff in /proc/self/status', () => {
    expect(hasNetAdmin('Name:\tnode\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t0000000000001000\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasNetAdmin('CapEff:\t00000000a80425fb\n')).toBe(false);
    expect(hasNetAdmin('no capabilities here')).toBeUndefined();
  });
});

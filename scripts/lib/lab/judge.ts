/** What `npm run lab` calls a success: one line per claim of the lab, judged from its report. */
import { parseSubnetEnv } from '../../../agent/subnet-env.js';
import type { LabReport } from './run-lab.js';

export interface LabCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export function judgeLab(report: LabReport): LabCheck[] {
  const checks: LabCheck[] = [];
  const check = (name: string, ok: boolean, detail: unknown) =>
    checks.push({ name, ok, detail: typeof detail === 'string' ? detail : JSON.stringify(detail) });

  for (const host of report.hosts) {
    const env = parseSubnetEnv(host.subnetEnv);
    check(`${host.ns}: subnet.env says FLANNEL_IPMASQ=true`, env.ipMasq === true, host.subnetEnv);
    check(
      `${host.ns}: the agent's masquerade chain holds 6 rules and POSTROUTING jumps to it once`,
      host.masqRules.length === 6 && host.masqJumps.length === 1,
      { rules: host.masqRules, jumps: host.masqJumps },
    );
    check(
      `${host.ns}: container MTU is FLANNEL_MTU`,
      env.mtu !== undefined && host.container.mtu === env.mtu,
      `container ${host.container.mtu}, FLANNEL_MTU ${env.mtu}`,
    );
  }
  for (const ask of report.crossHost) {
    check(
      `container ${ask.from} -> ${ask.to} arrives with its own source address`,
      ask.ok && ask.peer === ask.from,
      ask,
    );
  }
  for (const [i, ask] of report.egress.entries()) {
    const host = report.hosts[i]!;
    check(
      `egress from ${ask.from} is masqueraded to its host's address ${host.privateIp}`,
      ask.ok && ask.peer === host.privateIp,
      ask,
    );
  }
  check(
    `${report.reassert.host}: the agent puts back its flushed masquerade rules`,
    report.reassert.rulesAfterFlush === 0 && report.reassert.rulesRestored.length === 6,
    report.reassert,
  );
  const { terminated, revoked, released } = report;
  check(
    `terminated ${terminated.instanceId}: route gone from moto and the router, containers unreachable`,
    !terminated.routeInMoto &&
      terminated.routerRoutes.includes(`unreachable ${terminated.subnet}`) &&
      !terminated.ask.ok,
    terminated,
  );
  check(
    `revoked ${revoked.subnet}: route gone from moto and the router, containers unreachable`,
    revoked.status === 200 &&
      !revoked.routeInMoto &&
      revoked.routerRoutes.includes(`unreachable ${revoked.subnet}`) &&
      !revoked.ask.ok,
    revoked,
  );
  check(
    `released ${released.instanceId}: lease, subnet.env and masquerade rules gone with --release-on-exit`,
    released.agentExit === 0 &&
      released.rulesAfter.length === 0 &&
      released.jumpsAfter.length === 0 &&
      !released.subnetFileLeft &&
      !released.leaseLeft,
    released,
  );
  check('nothing left behind', report.cleanupFailures.length === 0, report.cleanupFailures);
  return checks;
}

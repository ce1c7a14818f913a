/**
 * What the lab needs of this machine: root on Linux (network namespaces, veth, iptables),
 * iproute2, iptables, and Debian's CNI plugins. Missing pieces are named with the Debian
 * packages that bring them.
 */
import { spawnSync } from 'node:child_process';
import { access, constants } from 'node:fs/promises';

export const CNI_PATH = '/usr/lib/cni';
export const LAB_PACKAGES = 'containernetworking-plugins iproute2 iptables iputils-ping';

export class LabPrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabPrerequisiteError';
  }
}

/** Throws LabPrerequisiteError listing everything that is missing. */
export async function checkLabPrerequisites(): Promise<void> {
  if (process.platform !== 'linux') {
    throw new LabPrerequisiteError(
      'The lab needs Linux network namespaces; run it on a Linux machine or VM.',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new LabPrerequisiteError(
      'The lab creates network namespaces, veth pairs and iptables rules, which needs root: run `sudo npm run lab` ' +
        `(with the Debian packages it uses: apt-get install -y ${LAB_PACKAGES}).`,
    );
  }
  const missing: string[] = [];
  for (const [command, args] of [
    ['ip', ['-V']],
    ['iptables', ['--version']],
    ['iptables-restore', ['--version']],
  ] as const) {
    if (spawnSync(command, [...args], { stdio: 'ignore' }).error) missing.push(command);
  }
  for (const plugin of ['bridge', 'host-local']) {
    try {
      await access(`${CNI_PATH}/${plugin}`, constants.X_OK);
    } catch {
      missing.push(`${CNI_PATH}/${plugin}`);
    }
  }
  if (missing.length > 0) {
    throw new LabPrerequisiteError(
      `The lab needs ${missing.join(', ')}. On Debian/Ubuntu: apt-get install -y ${LAB_PACKAGES}`,
    );
  }
}

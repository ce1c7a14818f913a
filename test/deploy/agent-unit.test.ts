/**
 * The agent's systemd unit (agent/systemd/vpc-lease-agent.service) as a security reviewer
 * reads it: systemd's own exposure score, offline (no systemd needs to run here), and the
 * few settings the agent cannot work without inside that sandbox.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const UNIT = fileURLToPath(new URL('../../agent/systemd/vpc-lease-agent.service', import.meta.url));
const ENV_EXAMPLE = fileURLToPath(new URL('../../agent/systemd/vpc-lease-agent.env', import.meta.url));
/** the bar: "OK" or better on systemd's 0 (safe) to 10 (unsafe) scale */
const MAX_EXPOSURE = 3.0;

/** Every `Key=value` of [Service], in order (a key may repeat). */
async function serviceSettings(): Promise<[string, string][]> {
  const text = await readFile(UNIT, 'utf8');
  const service = text.split(/^\[Service\]$/m)[1]?.split(/^\[/m)[0] ?? '';
  return service
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)];
    });
}

const valuesOf = (settings: [string, string][], key: string) =>
  settings.filter(([k]) => k === key).map(([, v]) => v);

describe('the agent systemd unit', () => {
  it(`rates ${MAX_EXPOSURE.toFixed(1)} or less in systemd-analyze security --offline=yes`, async () => {
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], {
      env: { ...process.env, SYSTEMD_COLORS: '0' },
    });
    const match = /Overall exposure level for vpc-lease-agent\.service: (\d+\.\d) (\w+)/.exec(stdout);
    expect(match, stdout).not.toBeNull();
    expect(Number(match![1]), stdout).toBeLessThanOrEqual(MAX_EXPOSURE);
    expect(match![2]).toBe('OK');
  });

  it('has no setting systemd does not know (systemd-analyze verify)', async () => {
    // verify exits non-zero here because /usr/local/bin/vpc-lease-agent is not installed on
    // this machine; what matters is that it reads every line of the unit
    const result = await run('systemd-analyze', ['verify', UNIT]).then(
      ({ stderr }) => stderr,
      (error: { stderr?: string }) => error.stderr ?? '',
    );
    const problems = result
      .split('\n')
      .filter((line) => line.trim() !== '' && !/is not executable/.test(line));
    expect(problems).toEqual([]);
  });

  it('keeps only the capabilities of the masquerade rules, and writes only /run/flannel and the xtables lock', async () => {
    const settings = await serviceSettings();
    expect(valuesOf(settings, 'CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN CAP_NET_RAW']);
    expect(valuesOf(settings, 'AmbientCapabilities')).toEqual(['CAP_NET_ADMIN CAP_NET_RAW']);
    expect(valuesOf(settings, 'ProtectSystem')).toEqual(['strict']);
    expect(valuesOf(settings, 'ReadWritePaths')).toEqual(['/run/flannel -/run/xtables.lock']);
    expect(valuesOf(settings, 'RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX AF_NETLINK']);
    expect(valuesOf(settings, 'SystemCallFilter')[0]).toBe('@system-service');
    // the executable the install puts in place, settings from the environment file
    expect(valuesOf(settings, 'ExecStart')).toEqual(['/usr/local/bin/vpc-lease-agent']);
    expect(valuesOf(settings, 'EnvironmentFile')).toEqual(['/etc/vpc-lease/agent.env']);
    // subnet.env stays across stops: the next start asks for the same subnet
    expect(valuesOf(settings, 'RuntimeDirectory')).toEqual(['flannel']);
    expect(valuesOf(settings, 'RuntimeDirectoryPreserve')).toEqual(['yes']);
  });

  it('ships an environment example with the API URL left to fill in and JSON logs', async () => {
    const text = await readFile(ENV_EXAMPLE, 'utf8');
    // empty: the agent exits 2 (no restart) until an operator sets it
    expect(text).toMatch(/^VPCLEASE_API_URL=$/m);
    expect(text).toMatch(/^VPCLEASE_LOG_FORMAT=json$/m);
    expect(text).toMatch(/^#VPCLEASE_SUBNET_FILE=\/run\/flannel\/subnet\.env$/m);
  });
});

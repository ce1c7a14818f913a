import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { detectMtu, FALLBACK_MTU } from '../../agent/mtu.js';

const ipv4 = (address: string): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '02:00:00:00:00:01',
  internal: false,
  cidr: `${address}/24`,
});

const interfaces = () => ({
  lo: [{ ...ipv4('127.0.0.1'), internal: true }],
  ens5: [ipv4('10.0.1.23')],
  ens6: [ipv4('10.0.2.50')],
});

describe('MTU of the interface holding the private IP', () => {
  it('reads /sys/class/net/<interface>/mtu of the matching interface', async () => {
    const read: string[] = [];
    const result = await detectMtu('10.0.2.50', {
      networkInterfaces: interfaces,
      readMtuFile: async (path) => {
        read.push(path);
        return '9001\n';
      },
    });
    expect(result).toEqual({ mtu: 9001, interfaceName: 'ens6' });
    expect(read).toEqual(['/sys/class/net/ens6/mtu']);
  });

  it('falls back to 1500 with a warning naming --mtu when no interface has the address', async () => {
    const result = await detectMtu('10.9.9.9', {
      networkInterfaces: interfaces,
      readMtuFile: async () => '9001',
    });
    expect(result.mtu).toBe(FALLBACK_MTU);
    expect(result.warning).toContain('--mtu');
  });

  it('falls back when the sysfs file is missing or holds garbage', async () => {
    const missing = await detectMtu('10.0.1.23', {
      networkInterfaces: interfaces,
      readMtuFile: async () => {
        throw new Error('ENOENT');
      },
    });
    const garbage = await detectMtu('10.0.1.23', {
      networkInterfaces: interfaces,
      readMtuFile: async () => 'x',
    });
    expect(missing).toMatchObject({ mtu: 1500, warning: expect.stringContaining('ENOENT') });
    expect(garbage).toMatchObject({ mtu: 1500, warning: expect.stringContaining('not an MTU') });
  });

  it('finds the loopback MTU on this machine (real os and sysfs)', async () => {
    const result = await detectMtu('127.0.0.1');
    expect(result.mtu).toBeGreaterThanOrEqual(68);
  });
});

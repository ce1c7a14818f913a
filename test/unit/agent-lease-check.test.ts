/**
 * The agent writes what the API answers into a file the container runtime trusts: a lease
 * that does not parse, IPv6 junk included, is refused (502 InvalidLease, retried like a 5xx)
 * before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { checkLease } from '../../agent/lease-api.js';
import { ApiError } from '../../shared/http/api-client.js';

const ipv4 = {
  subnet: '10.244.7.0/24',
  network: '10.244.0.0/16',
  instanceId: 'i-0abc1234def567890',
  privateIp: '10.0.1.23',
  networkInterfaceId: 'eni-0a1b2c3d4e5f60718',
  expiresAt: '2026-05-02T10:00:00.000Z',
  routes: [{ routeTableId: 'rtb-0123456789abcdef0', destination: '10.244.7.0/24', state: 'active' }],
};
const dual = {
  ...ipv4,
  ipv6Subnet: 'fd00:10:244:7::/64',
  ipv6Network: 'fd00:10:244::/56',
  routes: [
    ...ipv4.routes,
    { routeTableId: 'rtb-0123456789abcdef0', destination: 'fd00:10:244:7::/64', state: 'active' },
  ],
};

function refusal(body: unknown): ApiError {
  try {
    checkLease(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

describe('checkLease', () => {
  it('accepts an IPv4 lease and a dual-stack lease as they are', () => {
    expect(checkLease(ipv4)).toEqual(ipv4);
    expect(checkLease(dual)).toEqual(dual);
  });

  it.each([
    ['ipv6Subnet without ipv6Network', { ...ipv4, ipv6Subnet: 'fd00:10:244:7::/64' }, 'must come together'],
    ['ipv6Network without ipv6Subnet', { ...ipv4, ipv6Network: 'fd00:10:244::/56' }, 'must come together'],
    ['ipv6Subnet as a number', { ...dual, ipv6Subnet: 7 }, 'must come together'],
    ['ipv6Subnet outside ipv6Network', { ...dual, ipv6Subnet: 'fd00:10:245:7::/64' }, 'is not inside'],
    ['ipv6Subnet an IPv4 CIDR', { ...dual, ipv6Subnet: '10.244.7.0/24' }, 'not an IPv6 address'],
    ['ipv6Network with host bits', { ...dual, ipv6Network: 'fd00:10:244::1/56' }, 'host bits'],
    ['ipv6Subnet junk', { ...dual, ipv6Subnet: 'fd00:::7::/64' }, 'not an IPv6 address'],
  ])('refuses %s with 502 InvalidLease, naming the problem', (_name, body, fragment) => {
    const error = refusal(body);
    expect(error.status).toBe(502);
    expect(error.code).toBe('InvalidLease');
    expect(error.message).toContain(fragment);
    expect(error.message).toContain('--api-url');
  });
});

/**
 * Publishing a dual-stack config on a real control plane (moto): it is validated in full,
 * against the VPC too, and published. Every refusal is a 400 ValidationError naming the
 * field, and changes nothing. (Leases and routes in dual stack: dual-stack-routes.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { formatCidr, parseIpv6Cidr } from '../../shared/cidr.js';
import { ValidationError } from '../../shared/errors.js';
import { useMoto } from '../support/aws.js';
import { type ControlPlane, createControlPlane } from '../support/control-plane.js';

const aws = useMoto();

async function refusalOf(plane: ControlPlane, input: object): Promise<ValidationError> {
  const before = await plane.configs.get();
  const error = await plane.configs.publish(input).then(
    () => {
      throw new Error(`expected ${JSON.stringify(input)} to be refused`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as ValidationError).status).toBe(400);
  // nothing changed: same version, same config
  expect(await plane.configs.get()).toEqual(before);
  return error as ValidationError;
}

const dual = (plane: ControlPlane, rest: object = {}) => ({
  Network: '10.244.0.0/16',
  Backend: { Type: 'aws-vpc', RouteTableID: plane.vpc.routeTableId },
  EnableIPv6: true,
  IPv6Network: 'fd00:10:244::/56',
  ...rest,
});

describe('publishing a dual-stack config (against moto)', () => {
  it('publishes a good dual-stack config with every IPv6 default filled in', async () => {
    const plane = await createControlPlane(aws);
    const stored = await plane.configs.publish(dual(plane));
    expect(stored.version).toBe(2);
    expect(formatCidr(stored.config.ipv6!.network)).toBe('fd00:10:244::/56');
    expect(stored.config.ipv6!.subnetLen).toBe(64);
    expect((await plane.configs.get()).config).toEqual(stored.config);
  });

  it("refuses the VPC's own Amazon-provided IPv6 block as IPv6Network", async () => {
    const plane = await createControlPlane(aws);
    expect(plane.vpc.ipv6Cidr).toMatch(/::\/56$/);
    const error = await refusalOf(plane, dual(plane, { IPv6Network: plane.vpc.ipv6Cidr }));
    // moto may write a group with a leading zero (…:0300::/56); the message prints RFC 5952's form
    const canonical = formatCidr(parseIpv6Cidr(plane.vpc.ipv6Cidr!));
    expect(error.message).toContain(`IPv6Network: ${canonical} is not a unique local`);
  });

  it('checks the IPv4 Network of a dual-stack config against the VPC', async () => {
    const plane = await createControlPlane(aws);
    const error = await refusalOf(plane, dual(plane, { Network: '10.0.0.0/16' }));
    expect(error.message).toMatch(/^Network 10\.0\.0\.0\/16 overlaps 10\.0\.0\.0\/16/);
  });

  it('checks the route tables of a dual-stack config', async () => {
    const plane = await createControlPlane(aws);
    const error = await refusalOf(
      plane,
      dual(plane, { Backend: { Type: 'aws-vpc', RouteTableID: 'rtb-0123456789abcdef0' } }),
    );
    expect(error.message).toContain('rtb-0123456789abcdef0 does not exist in VPC');
  });

  it.each([
    ['IPv6Network', { IPv6Network: 'fd00:10:244::1/56' }, 'host bits set'],
    ['IPv6Network', { IPv6Network: '2001:db8::/32' }, 'unique local'],
    ['IPv6SubnetLen', { IPv6SubnetLen: 127 }, 'at most 126'],
    ['IPv6SubnetMin', { IPv6SubnetMin: 'fd00:10:244:1::1' }, 'not on a /64 boundary'],
    ['IPv6SubnetMax', { IPv6SubnetMax: 'fd00:10:245::' }, 'not inside IPv6Network'],
    ['IPv6SubnetMin..IPv6SubnetMax', { IPv6Network: 'fd00:10:244::/60' }, 'fewer than the 255 IPv4 subnets'],
  ])('refuses a bad %s with 400 and changes nothing', async (field, rest, fragment) => {
    const plane = await createControlPlane(aws);
    const error = await refusalOf(plane, dual(plane, rest));
    expect(error.message.startsWith(field)).toBe(true);
    expect(error.message).toContain(fragment);
  });

  it('still publishes an IPv4-only config that says "EnableIPv6": false', async () => {
    const plane = await createControlPlane(aws);
    const stored = await plane.configs.publish({
      Network: '10.244.0.0/16',
      Backend: { Type: 'aws-vpc', RouteTableID: plane.vpc.routeTableId, RouteLimit: 40 },
      EnableIPv6: false,
    });
    expect(stored.version).toBe(2);
    expect(stored.config.ipv6).toBeUndefined();
    expect(stored.config.backend.routeLimit).toBe(40);
  });
});

/** The lab's pure parts: the bridge configuration flannel's CNI plugin delegates, and the router's routes. */
import { describe, expect, it } from 'vitest';
import { flannelDelegateConf } from '../../scripts/lib/lab/cni.js';
import { planRouterRoutes } from '../../scripts/lib/lab/router-routes.js';

describe("the bridge plugin configuration flannel's CNI plugin builds from subnet.env", () => {
  it('takes ranges, routes, mtu and ipMasq from the file, with kube-flannel delegate settings', () => {
    const env =
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=9001\nFLANNEL_IPMASQ=true\n';
    expect(flannelDelegateConf(env, '/tmp/lab/cni')).toEqual({
      cniVersion: '0.3.1',
      name: 'cbr0',
      type: 'bridge',
      hairpinMode: true,
      isDefaultGateway: true,
      ipMasq: false,
      mtu: 9001,
      isGateway: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.244.7.0/24' }]],
        routes: [{ dst: '10.244.0.0/16' }],
        dataDir: '/tmp/lab/cni',
      },
    });
  });

  it('lets the bridge plugin masquerade when the agent does not (FLANNEL_IPMASQ=false)', () => {
    const env =
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n';
    expect(flannelDelegateConf(env, '/d')).toMatchObject({ ipMasq: true, mtu: 1500 });
  });

  it('adds the IPv6 range and route of a dual-stack subnet.env, as flannel does', () => {
    const env =
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n' +
      'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n' +
      'FLANNEL_MTU=9001\nFLANNEL_IPMASQ=true\n';
    expect(flannelDelegateConf(env, '/d').ipam).toEqual({
      type: 'host-local',
      ranges: [[{ subnet: '10.244.7.0/24' }], [{ subnet: 'fd00:10:244:7::/64' }]],
      routes: [{ dst: '10.244.0.0/16' }, { dst: 'fd00:10:244::/56' }],
      dataDir: '/d',
    });
  });

  it('refuses a subnet.env without the four lines', () => {
    expect(() => flannelDelegateConf('FLANNEL_SUBNET=10.244.7.1/24\n', '/d')).toThrow(/lacks/);
  });
});

describe('the router routes mirrored from the VPC route table', () => {
  const eniAddress = new Map([['eni-a', '10.0.0.4']]);

  it('routes a lease to its ENI private IP, the default to the internet, and skips local', () => {
    const routes = planRouterRoutes({
      routes: [
        { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', State: 'active' },
        { DestinationCidrBlock: '0.0.0.0/0', GatewayId: 'igw-1', State: 'active' },
        { DestinationCidrBlock: '10.244.7.0/24', NetworkInterfaceId: 'eni-a', State: 'active' },
      ],
      eniAddress,
      internetVia: '198.51.100.2',
      previous: new Set(),
    });
    expect(routes).toEqual([
      { destination: '0.0.0.0/0', kind: 'via', via: '198.51.100.2' },
      { destination: '10.244.7.0/24', kind: 'via', via: '10.0.0.4' },
    ]);
  });

  it("routes a lease's IPv6 subnet to its host's IPv6 address, and no IPv6 default to the IPv4-only internet", () => {
    const routes = planRouterRoutes({
      routes: [
        { DestinationIpv6CidrBlock: '2600:1f18::/56', GatewayId: 'local', State: 'active' },
        { DestinationIpv6CidrBlock: '::/0', GatewayId: 'igw-1', State: 'active' },
        { DestinationIpv6CidrBlock: 'fd00:10:244:7::/64', NetworkInterfaceId: 'eni-a', State: 'active' },
        { DestinationIpv6CidrBlock: 'fd00:10:244:8::/64', NetworkInterfaceId: 'eni-gone', State: 'active' },
        { DestinationCidrBlock: '10.244.7.0/24', NetworkInterfaceId: 'eni-a', State: 'active' },
      ],
      eniAddress,
      eniAddress6: new Map([['eni-a', '2600:1f18::104']]),
      internetVia: '198.51.100.2',
      previous: new Set(),
    });
    expect(routes).toEqual([
      { destination: '10.244.7.0/24', kind: 'via', via: '10.0.0.4' },
      { destination: 'fd00:10:244:7::/64', kind: 'via', via: '2600:1f18::104' },
      { destination: 'fd00:10:244:8::/64', kind: 'unreachable' },
    ]);
  });

  it('makes blackholes, routes to vanished interfaces and routes that disappeared unreachable', () => {
    const routes = planRouterRoutes({
      routes: [
        { DestinationCidrBlock: '10.244.1.0/24', NetworkInterfaceId: 'eni-a', State: 'blackhole' },
        { DestinationCidrBlock: '10.244.2.0/24', NetworkInterfaceId: 'eni-gone', State: 'active' },
      ],
      eniAddress,
      internetVia: '198.51.100.2',
      previous: new Set(['10.244.3.0/24', '10.244.2.0/24']),
    });
    expect(routes).toEqual([
      { destination: '10.244.1.0/24', kind: 'unreachable' },
      { destination: '10.244.2.0/24', kind: 'unreachable' },
      { destination: '10.244.3.0/24', kind: 'unreachable' },
    ]);
  });
});

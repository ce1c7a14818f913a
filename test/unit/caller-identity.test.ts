import { describe, expect, it } from 'vitest';
import { EnvironmentError, readHostIdentity } from '../../shared/adapters/environment.js';
import { type HostIdentityPolicy, hostInstanceId, operatorArn } from '../../shared/caller-identity.js';
import { ForbiddenError } from '../../shared/errors.js';

const POLICY: HostIdentityPolicy = {
  accountId: '123456789012',
  hostRoleNames: ['vpc-lease-host', 'legacy-nodes'],
};
const VICTIM = 'i-0123456789abcdef0';
const session = (role: string, name: string, account = '123456789012', partition = 'aws') =>
  `arn:${partition}:sts::${account}:assumed-role/${role}/${name}`;

describe('who speaks for an instance (host routes)', () => {
  it("accepts an instance-profile session of this account's host role, in every STS partition", () => {
    expect(hostInstanceId(session('vpc-lease-host', VICTIM), POLICY)).toBe(VICTIM);
    expect(hostInstanceId(session('legacy-nodes', 'i-0123abcd'), POLICY)).toBe('i-0123abcd');
    expect(hostInstanceId(session('vpc-lease-host', VICTIM, '123456789012', 'aws-cn'), POLICY)).toBe(VICTIM);
    expect(hostInstanceId(session('vpc-lease-host', VICTIM, '123456789012', 'aws-us-gov'), POLICY)).toBe(
      VICTIM,
    );
  });

  const hostile: [string, string | undefined][] = [
    ['another account, same role name', session('vpc-lease-host', VICTIM, '999999999999')],
    ['another role of the account, session named like the victim', session('ci-deploy', VICTIM)],
    [
      'a role path in front of the host role',
      `arn:aws:sts::123456789012:assumed-role/team/vpc-lease-host/${VICTIM}`,
    ],
    ['a session name of i- plus junk', session('vpc-lease-host', 'i-0123456789abcdef0x')],
    ['a session of 9 hex digits (neither 8 nor 17)', session('vpc-lease-host', 'i-0123456789')],
    ['an upper-case instance id', session('vpc-lease-host', VICTIM.toUpperCase())],
    ['an empty session name', 'arn:aws:sts::123456789012:assumed-role/vpc-lease-host/'],
    ['an unknown partition', session('vpc-lease-host', VICTIM, '123456789012', 'aws-iso')],
    ['an IAM user', 'arn:aws:iam::123456789012:user/i-0123456789abcdef0'],
    ['a federated user', `arn:aws:sts::123456789012:federated-user/${VICTIM}`],
    ['the role itself, not a session', 'arn:aws:iam::123456789012:role/vpc-lease-host'],
    ['no identity', undefined],
    ['an empty ARN', ''],
  ];
  for (const [name, arn] of hostile) {
    it(`refuses ${name} with 403 Forbidden`, () => {
      expect(() => hostInstanceId(arn, POLICY)).toThrow(ForbiddenError);
    });
  }

  it('names the reason in the message: the account, the role, the session', () => {
    expect(() => hostInstanceId(session('vpc-lease-host', VICTIM, '999999999999'), POLICY)).toThrow(
      /another account/,
    );
    expect(() => hostInstanceId(session('ci-deploy', VICTIM), POLICY)).toThrow(
      /ci-deploy is not a host role/,
    );
    expect(() => hostInstanceId(session('vpc-lease-host', 'i-junk'), POLICY)).toThrow(/not an instance id/);
  });
});

describe('who may call admin routes', () => {
  it('accepts any other principal of the account', () => {
    const operator = session('vpc-lease-operator', 'alice');
    expect(operatorArn(operator, POLICY)).toBe(operator);
    expect(operatorArn('arn:aws:iam::123456789012:user/bob', POLICY)).toBe(
      'arn:aws:iam::123456789012:user/bob',
    );
  });

  it('refuses any session of a host role, whatever its name, with 403', () => {
    expect(() => operatorArn(session('vpc-lease-host', VICTIM), POLICY)).toThrow(ForbiddenError);
    expect(() => operatorArn(session('legacy-nodes', 'admin'), POLICY)).toThrow(
      /admin routes are for operators/,
    );
    expect(() => operatorArn(undefined, POLICY)).toThrow(ForbiddenError);
  });
});

describe('the host identity settings (ACCOUNT_ID, HOST_ROLE_NAMES)', () => {
  it('reads the account and the comma-separated role names once', () => {
    expect(
      readHostIdentity({ ACCOUNT_ID: '123456789012', HOST_ROLE_NAMES: 'vpc-lease-prod-host, legacy,' }),
    ).toEqual({
      accountId: '123456789012',
      hostRoleNames: ['vpc-lease-prod-host', 'legacy'],
    });
  });

  it('fails at start, naming the variable, when one is missing or malformed', () => {
    expect(() => readHostIdentity({ HOST_ROLE_NAMES: 'h' })).toThrow(/ACCOUNT_ID is not set/);
    expect(() => readHostIdentity({ ACCOUNT_ID: '12345', HOST_ROLE_NAMES: 'h' })).toThrow(EnvironmentError);
    expect(() => readHostIdentity({ ACCOUNT_ID: '123456789012' })).toThrow(/HOST_ROLE_NAMES is not set/);
    expect(() => readHostIdentity({ ACCOUNT_ID: '123456789012', HOST_ROLE_NAMES: 'team/host' })).toThrow(
      /HOST_ROLE_NAMES: "team\/host" is not an IAM role name/,
    );
  });
});

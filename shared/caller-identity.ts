/**
 * Who may speak for an instance (docs/security.md). API Gateway's IAM authorizer proves
 * the caller's ARN; this module decides what that ARN is allowed to be. Pure: the account
 * and the host role names come from the environment, read once by the adapters.
 *
 * An EC2 instance-profile session is `arn:<partition>:sts::<account>:assumed-role/<role>/<instance id>`:
 * EC2 names the session after the instance, and only EC2 can assume the host role (its trust
 * policy), so the session name is trustworthy only for the host roles of this account. Any
 * other role can be assumed with a chosen RoleSessionName, so `i-0abc...` there proves nothing.
 */
import { ForbiddenError } from './errors.js';
import { INSTANCE_ID } from './lease.js';

/** The host roles of this deployment: the stack's own and those of the `hostRoleNames` parameter. */
export interface HostIdentityPolicy {
  /** the 12-digit account the stack runs in */
  readonly accountId: string;
  /** IAM role names (no path: an assumed-role ARN carries none) */
  readonly hostRoleNames: readonly string[];
}

/** The local stack's identities (docs/security.md, "The local stack"): role vpc-lease-host in account 000000000000. */
export const LOCAL_HOST_IDENTITY: HostIdentityPolicy = {
  accountId: '000000000000',
  hostRoleNames: ['vpc-lease-host'],
};

/** IAM role names: 1-64 of letters, digits and +=,.@_- (IAM API reference, CreateRole). */
export const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
export const ACCOUNT_ID = /^\d{12}$/;

/** The three partitions that have STS assumed-role ARNs of this shape. */
const ASSUMED_ROLE = /^arn:(aws|aws-cn|aws-us-gov):sts::(\d{12}):assumed-role\/([^/]+)\/([^/]+)$/;

export interface AssumedRoleSession {
  readonly accountId: string;
  readonly roleName: string;
  readonly sessionName: string;
}

/** The parts of an STS assumed-role session ARN; undefined for any other principal or shape. */
export function parseAssumedRole(arn: string): AssumedRoleSession | undefined {
  const match = ASSUMED_ROLE.exec(arn);
  if (!match) return undefined;
  const [, , accountId, roleName, sessionName] = match as unknown as [string, string, string, string, string];
  if (!ROLE_NAME.test(roleName)) return undefined;
  return { accountId, roleName, sessionName };
}

/** Whether the ARN is a session of one of this account's host roles (whatever the session name). */
export function isHostRoleSession(arn: string, policy: HostIdentityPolicy): boolean {
  const session = parseAssumedRole(arn);
  return (
    session !== undefined &&
    session.accountId === policy.accountId &&
    policy.hostRoleNames.includes(session.roleName)
  );
}

/**
 * The instance a host-route caller speaks for, or ForbiddenError. Only an instance-profile
 * session of a host role of this account, named like an instance id, speaks for that instance.
 */
export function hostInstanceId(arn: string | undefined, policy: HostIdentityPolicy): string {
  if (arn === undefined || arn === '') {
    throw new ForbiddenError(
      'No IAM identity on the request: call with SigV4 credentials of an EC2 instance profile.',
    );
  }
  const session = parseAssumedRole(arn);
  if (!session) {
    throw new ForbiddenError(
      `Caller ${clip(arn)} is not an EC2 instance-profile session: host routes need the host's own instance-profile credentials.`,
    );
  }
  if (session.accountId !== policy.accountId) {
    throw new ForbiddenError(
      `Caller ${clip(arn)} belongs to another account; host routes accept only instances of account ${policy.accountId}.`,
    );
  }
  if (!policy.hostRoleNames.includes(session.roleName)) {
    throw new ForbiddenError(
      `Role ${clip(session.roleName)} is not a host role of this deployment (${policy.hostRoleNames.join(', ')}); ` +
        'only instance-profile sessions of a host role may lease.',
    );
  }
  if (!INSTANCE_ID.test(session.sessionName)) {
    throw new ForbiddenError(
      `Session ${clip(session.sessionName)} is not an instance id: host routes need the instance-profile credentials EC2 delivers.`,
    );
  }
  return session.sessionName;
}

/**
 * Admin routes: any authenticated principal that IAM let through, except a host role's
 * session. A host is never an operator, whatever policies are attached to its role.
 */
export function operatorArn(arn: string | undefined, policy: HostIdentityPolicy): string {
  if (arn === undefined || arn === '')
    throw new ForbiddenError('No IAM identity on the request: sign it with SigV4.');
  if (isHostRoleSession(arn, policy)) {
    throw new ForbiddenError(
      `Caller ${clip(arn)} is a host (a session of a host role); admin routes are for operators only.`,
    );
  }
  return arn;
}

/** Parses the comma-separated role list of HOST_ROLE_NAMES; throws a plain Error naming the bad entry. */
export function parseHostRoleNames(text: string): string[] {
  const names = text
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  for (const name of names) {
    if (!ROLE_NAME.test(name)) throw new Error(`"${clip(name)}" is not an IAM role name`);
  }
  return [...new Set(names)];
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The two host routes the agent uses, over the shared ApiClient, with the answer checked:
 * the agent writes what the API says into a file the container runtime trusts, so a
 * lease that does not parse is refused here rather than written.
 */
import { contains, parseCidr, parseIpv6Cidr } from '../shared/cidr.js';
import { type ApiClient, ApiError } from '../shared/http/api-client.js';
import { type AcquireLeaseRequest, HOST_PATHS, type LeaseJson } from '../shared/http/contract.js';

export interface LeaseApi {
  /** PUT /v1/lease: acquire or renew this host's lease */
  acquire(request: AcquireLeaseRequest): Promise<LeaseJson>;
  /** DELETE /v1/lease; a lease that is already gone counts as released */
  release(): Promise<void>;
}

export function httpLeaseApi(client: Pick<ApiClient, 'request'>): LeaseApi {
  return {
    async acquire(request) {
      const response = await client.request<unknown>('PUT', HOST_PATHS.lease, { body: request });
      return checkLease(response.body);
    },
    async release() {
      try {
        await client.request<unknown>('DELETE', HOST_PATHS.lease);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return;
        throw error;
      }
    },
  };
}

/** A 200 whose body is not a lease: a wrong --api-url (some other service) or an API bug. Retried like a 5xx. */
export function checkLease(body: unknown): LeaseJson {
  const lease = body as Partial<LeaseJson> | undefined;
  const problem = leaseProblem(lease);
  if (problem) {
    throw new ApiError(
      502,
      'InvalidLease',
      `The API answered PUT /v1/lease without a usable lease (${problem}); check that --api-url points at the vpc-lease API.`,
    );
  }
  return lease as LeaseJson;
}

function leaseProblem(lease: Partial<LeaseJson> | undefined): string | undefined {
  if (!lease || typeof lease !== 'object') return 'no JSON body';
  if (typeof lease.subnet !== 'string' || typeof lease.network !== 'string') return 'no subnet or network';
  try {
    if (!contains(parseCidr(lease.network), parseCidr(lease.subnet))) {
      return `subnet ${lease.subnet} is not inside network ${lease.network}`;
    }
  } catch (error) {
    return (error as Error).message;
  }
  const ipv6 = ipv6Problem(lease);
  if (ipv6) return ipv6;
  if (typeof lease.expiresAt !== 'string' || Number.isNaN(Date.parse(lease.expiresAt))) {
    return 'no valid expiresAt';
  }
  if (lease.routes !== undefined && !Array.isArray(lease.routes)) return 'routes is not a list';
  return undefined;
}

/** Dual stack: ipv6Subnet and ipv6Network come together, both IPv6 CIDRs, the subnet inside the network. */
function ipv6Problem(lease: Partial<LeaseJson>): string | undefined {
  if (lease.ipv6Subnet === undefined && lease.ipv6Network === undefined) return undefined;
  if (typeof lease.ipv6Subnet !== 'string' || typeof lease.ipv6Network !== 'string') {
    return 'ipv6Subnet and ipv6Network must come together, as strings';
  }
  try {
    if (!contains(parseIpv6Cidr(lease.ipv6Network), parseIpv6Cidr(lease.ipv6Subnet))) {
      return `ipv6Subnet ${lease.ipv6Subnet} is not inside ipv6Network ${lease.ipv6Network}`;
    }
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

/**
 * The `<subnet>` argument of `lease` and `revoke`. Operators copy subnets from
 * `subnet.env` (`10.244.7.0/24`) as often as from flannel's etcd keys (`10.244.7.0-24`),
 * so both are accepted; the URL always carries the key form.
 */
import { type Cidr, CidrError, formatCidr, parseCidr, parseSubnetKey, toSubnetKey } from '../shared/cidr.js';
import { UsageError } from './exit-codes.js';

const EXPECTED_FORM = 'Write it as 10.244.7.0/24 or 10.244.7.0-24.';

export interface SubnetArgument {
  cidr: Cidr;
  /** `10.244.7.0/24` */
  text: string;
  /** `10.244.7.0-24`, the path segment of /v1/admin/leases/{subnet} */
  key: string;
}

export function parseSubnetArgument(argument: string): SubnetArgument {
  let cidr: Cidr;
  try {
    if (argument.includes('/')) cidr = parseCidr(argument);
    else if (argument.includes('-')) cidr = parseSubnetKey(argument);
    else throw new CidrError(`"${argument}" has no prefix length`);
  } catch (error) {
    if (error instanceof CidrError) {
      // a reason that already suggests the fix ("did you mean 10.244.7.0/24?") needs no more
      const advice = error.message.endsWith('?') ? '' : ` ${EXPECTED_FORM}`;
      throw new UsageError(`Invalid subnet: ${error.message.replace(/[^.?]$/, '$&.')}${advice}`, {
        cause: error,
      });
    }
    throw error;
  }
  return { cidr, text: formatCidr(cidr), key: toSubnetKey(cidr) };
}

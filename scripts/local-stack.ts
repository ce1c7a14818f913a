/**
 * `npm start`: the vpc-lease control plane on this machine (DESIGN.md, "Local stack").
 * Ports: VPCLEASE_API_PORT (3000), VPCLEASE_MOTO_PORT (5000), VPCLEASE_LAMBDA_PORT (3002),
 * all on 127.0.0.1. Ctrl-C (or SIGTERM) stops every process it started.
 */

import { OFFLINE_AUTHORIZER_HEADER, offlineIdentityHeader } from '../shared/http/contract.js';
import {
  DEFAULT_NETWORK_CONFIG,
  LOCAL_TABLE_NAME,
  type LocalStack,
  LocalStackStartError,
  localClients,
  operatorHeaders,
  PortInUseError,
  startLocalStack,
} from './lib/local-stack.js';
import { MotoNotInstalledError } from './lib/moto.js';
import { launchInstances } from './lib/seed.js';

const shellQuote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

let stack: LocalStack | undefined;
let starting: Promise<LocalStack> | undefined;
const abortStart = new AbortController();
let stopping = false;

async function stopAndExit(reason: string, code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.error(`\n${reason}: stopping the local stack...`);
  // during start-up the abort makes startLocalStack stop what it has started, then throw
  abortStart.abort();
  const started = await starting?.catch(() => undefined);
  await (stack ?? started)?.stop().catch((error: unknown) => console.error(String(error)));
  process.exit(code);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stopAndExit('SIGINT', 0));
  process.on('SIGTERM', () => void stopAndExit('SIGTERM', 0));

  console.error('Starting moto_server, seeding the VPC and starting serverless-offline (stage local)...');
  try {
    starting = startLocalStack({
      watch: true,
      quiet: process.env.VPCLEASE_QUIET === '1',
      signal: abortStart.signal,
    });
    stack = await starting;
  } catch (error) {
    if (stopping) return; // the signal handler exits once everything is down
    if (error instanceof MotoNotInstalledError || error instanceof PortInUseError) {
      console.error(`\n${error.message}`);
      process.exit(1);
    }
    if (error instanceof LocalStackStartError) {
      console.error(`\nThe local stack did not start: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  if (stopping) return;

  // One running host, so that the curl example below works as it is.
  const { ec2, dynamo } = localClients(stack.motoEndpoint);
  const [host] = await launchInstances(ec2, stack.vpc.subnetId, 1);
  ec2.destroy();
  dynamo.destroy();
  const hostHeader = offlineIdentityHeader(host!.instanceId)[OFFLINE_AUTHORIZER_HEADER]!;
  const operatorHeader = operatorHeaders()[OFFLINE_AUTHORIZER_HEADER]!;
  const { apiUrl, motoEndpoint, lambdaEndpoint, vpc } = stack;

  console.log(`
vpc-lease local stack is up (stage local; nothing runs in AWS)

  HTTP API        ${apiUrl}
  Lambda invoke   ${lambdaEndpoint}   (vpc-lease-local-lease, -admin, -instanceState, -reconcile)
  moto_server     ${motoEndpoint}   (EC2 + DynamoDB; AWS_ENDPOINT_URL for any SDK or CLI)
  VPC             ${vpc.vpcId}  10.0.0.0/16  Name=vpc-lease-local
  subnet          ${vpc.subnetId}  10.0.0.0/24
  route table     ${vpc.routeTableId}  (0.0.0.0/0 -> ${vpc.internetGatewayId})
  table           ${LOCAL_TABLE_NAME}
  network config  ${JSON.stringify(DEFAULT_NETWORK_CONFIG)}

A host is running: ${host!.instanceId}, private IP ${host!.privateIp}. Lease it a subnet:

  curl -sS -X PUT ${apiUrl}/v1/lease \\
    -H 'content-type: application/json' \\
    -H ${shellQuote(`${OFFLINE_AUTHORIZER_HEADER}: ${hostHeader}`)} \\
    -d '{"privateIp":"${host!.privateIp}"}'

  (the header stands in for the IAM authorizer: the session name is the instance id)

As an operator (or: npx vpc-lease --local leases | routes | config get | reconcile):

  curl -sS ${apiUrl}/v1/admin/leases -H ${shellQuote(`${OFFLINE_AUTHORIZER_HEADER}: ${operatorHeader}`)}

More hosts (each printed with the agent command that leases it a subnet):

  npm run hosts -- 3

Invoke a function directly, e.g. the scheduled reconcile:

  curl -sS -X POST ${lambdaEndpoint}/2015-03-31/functions/vpc-lease-local-reconcile/invocations -d '{}'

Handlers rebuild when functions/ or shared/ change. Ctrl-C stops everything.
`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  void stopAndExit('error', 1);
});

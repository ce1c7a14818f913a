/**
 * `npm start`: the vpc-lease control plane on this machine (docs/local-stack.md).
 * Ports: VPCLEASE_API_PORT (3000), VPCLEASE_MOTO_PORT (5000), VPCLEASE_LAMBDA_PORT (3002),
 * all on 127.0.0.1. Ctrl-C (or SIGTERM) stops every process it started.
 */
import { createInterface } from 'node:readline/promises';
import { DescribeRouteTablesCommand } from '@aws-sdk/client-ec2';

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
import { MOTO_REQUIREMENT, MotoNotInstalledError, setUpMoto } from './lib/moto.js';
import { launchInstances } from './lib/seed.js';

const shellQuote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

// Node 20 here, nodejs22.x in Lambda: the SDK's notice about Node 20 is noise for a person
// running the local stack (the versions in the lock file work). Children inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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
  const running = stack ?? started;
  try {
    await running?.stop();
    if (running) console.error('Stopped: moto_server and serverless-offline are down, their ports are free.');
  } catch (error) {
    console.error(`Stopping did not finish cleanly: ${String(error)}`);
  }
  process.exit(code);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stopAndExit('SIGINT', 0));
  process.on('SIGTERM', () => void stopAndExit('SIGTERM', 0));

  console.error('Starting moto_server, seeding the VPC and starting serverless-offline (stage local)...');
  const start = () => {
    starting = startLocalStack({
      watch: true,
      quiet: process.env.VPCLEASE_QUIET === '1',
      signal: abortStart.signal,
    });
    return starting;
  };
  try {
    try {
      stack = await start();
    } catch (error) {
      if (!(error instanceof MotoNotInstalledError && (await offerMotoSetUp(error)))) throw error;
      stack = await start();
    }
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
  const routeTables = await describeRouteTables(stack);

  console.log(`
vpc-lease local stack is up (stage local; nothing runs in AWS)

  HTTP API        ${apiUrl}
  Lambda invoke   ${lambdaEndpoint}   (vpc-lease-local-lease, -admin, -instanceState, -reconcile)
  moto_server     ${motoEndpoint}   (EC2 + DynamoDB; AWS_ENDPOINT_URL for any SDK or CLI)
  VPC             ${vpc.vpcId}  10.0.0.0/16  Name=vpc-lease-local
  subnet          ${vpc.subnetId}  10.0.0.0/24
  route tables    ${routeTables}
                  (no RouteTableID in the config: every lease is routed in each of them)
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

/** `rtb-a (main), rtb-b (public subnet, 0.0.0.0/0 -> igw-...)`: every table of the VPC. */
async function describeRouteTables(running: LocalStack): Promise<string> {
  const { ec2, dynamo } = localClients(running.motoEndpoint);
  dynamo.destroy();
  try {
    const out = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [running.vpc.vpcId] }] }),
    );
    return (out.RouteTables ?? [])
      .map((table) => {
        const notes: string[] = [];
        if (table.Associations?.some((a) => a.Main)) notes.push('main');
        if (table.RouteTableId === running.vpc.routeTableId) {
          notes.push(`public subnet, 0.0.0.0/0 -> ${running.vpc.internetGatewayId}`);
        }
        return `${table.RouteTableId}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
      })
      .sort()
      .join(', ');
  } finally {
    ec2.destroy();
  }
}

/** moto is missing: on a terminal with python3 + pip, offer `npm run setup:moto` and run it. */
async function offerMotoSetUp(error: MotoNotInstalledError): Promise<boolean> {
  if (!error.canSetUp || !process.stdin.isTTY) return false;
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await prompt.question(
    `\nmoto_server (the local EC2 + DynamoDB) is not installed. Set up ${MOTO_REQUIREMENT} in .venv/ ` +
      'in this repository now (npm run setup:moto)? [Y/n] ',
  );
  prompt.close();
  if (!/^(y|yes)?$/i.test(answer.trim())) return false;
  setUpMoto();
  console.error('moto is ready in .venv/; starting the local stack...');
  return true;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  void stopAndExit('error', 1);
});

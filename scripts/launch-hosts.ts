/**
 * `npm run hosts -- [count]`: launches hosts (moto instances) in the local stack's VPC and
 * prints, per host, its id and private IP and the agent command that leases it a subnet.
 */

import { DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { createEc2Client } from '../shared/adapters/aws-clients.js';
import { findLocalVpc, launchInstances } from './lib/seed.js';

// Node 20 here: the SDK's notice that its 2027 releases need Node 22 is noise for a person
// at the terminal (the versions in the lock file work). Child processes inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const count = Number(process.argv[2] ?? '1');
if (!Number.isInteger(count) || count < 1 || count > 100) {
  console.error('usage: npm run hosts -- [count 1-100]');
  process.exit(2);
}
const motoPort = process.env.VPCLEASE_MOTO_PORT ?? '5000';
const apiPort = process.env.VPCLEASE_API_PORT ?? '3000';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
const ec2 = createEc2Client({
  region: 'us-east-1',
  endpoint: `http://127.0.0.1:${motoPort}`,
  maxAttempts: 1,
});
try {
  const vpcId = await findLocalVpc(ec2);
  if (!vpcId) throw new Error('no vpc-lease-local VPC in moto');
  const subnets = await ec2.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const subnetId = subnets.Subnets?.[0]?.SubnetId;
  if (!subnetId) throw new Error(`no subnet in ${vpcId}`);
  const hosts = await launchInstances(ec2, subnetId, count);
  for (const host of hosts) {
    console.log(`${host.instanceId}  ${host.privateIp}  ${host.networkInterfaceId}`);
    console.log(
      `  npx vpc-lease-agent --api-url http://127.0.0.1:${apiPort} --local-instance-id ${host.instanceId} --private-ip ${host.privateIp} --subnet-file /tmp/${host.instanceId}.env --once`,
    );
  }
  console.log(
    `\n${hosts.length} host${hosts.length === 1 ? '' : 's'} running in ${vpcId}; the command under each leases it a subnet.\n`,
  );
} catch (error) {
  console.error(
    `Could not launch hosts on moto at 127.0.0.1:${motoPort}: ${(error as Error).message}. Is the local stack running (npm start)?`,
  );
  process.exitCode = 1;
} finally {
  ec2.destroy();
}

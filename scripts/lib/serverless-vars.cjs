/**
 * Values serverless.yml cannot compute with its own variables or with CloudFormation
 * intrinsics. Loaded by osls through `${file(./scripts/lib/serverless-vars.cjs):name}`
 * while it resolves the configuration, so it runs offline, before any AWS call.
 *
 * CommonJS on purpose: osls `require()`s variable files.
 */
'use strict';

const ROUTE_TABLE_ID = /^rtb-[0-9a-f]{8,17}$/;

/**
 * The route-table ARNs the route-mutating functions may touch.
 *
 * `--param routeTableIds=rtb-a,rtb-b` gives one ARN per table. CloudFormation cannot
 * prefix every element of a list (Fn::Join takes no intrinsic delimiter), so the list
 * is built here, one `Fn::Sub` per table, with the partition, region and account left
 * to CloudFormation. Without the parameter the tables are discovered at run time: every
 * route-table ARN, fenced by the `ec2:Vpc` condition and the tag condition below.
 */
async function routeTableArns({ resolveVariable }) {
  const raw = String((await resolveVariable('param:routeTableIds, ""')) ?? '').trim();
  const arn = (id) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:route-table/${id}`,
  });
  if (raw === '') return [arn('*')];
  const ids = raw.split(',').map((id) => id.trim());
  const bad = ids.filter((id) => !ROUTE_TABLE_ID.test(id));
  if (bad.length > 0) {
    throw new Error(
      `--param routeTableIds must be a comma-separated list of route table ids (rtb-...), got: ${bad.join(', ')}`,
    );
  }
  return [...new Set(ids)].map(arn);
}

/**
 * The condition on route changes. With --param routeTableIds the ARNs above name the tables;
 * without it the tables are found at run time, so IAM fences them by tag: only route tables
 * of the VPC tagged `vpc-lease=managed` (docs/security.md, "IAM").
 */
async function routeMutationCondition({ resolveVariable }) {
  const raw = String((await resolveVariable('param:routeTableIds, ""')) ?? '').trim();
  const condition = { ArnEquals: { 'ec2:Vpc': await resolveVariable('self:custom.vpcArn') } };
  if (raw === '') condition.StringEquals = { 'aws:ResourceTag/vpc-lease': 'managed' };
  return condition;
}

module.exports = { routeTableArns, routeMutationCondition };

// A fresh Node process's view of a Lambda cold start: import the bundle, invoke its
// handler once, report both times on one marker line. Usage:
//   node cold-start-harness.mjs <bundle.mjs> <event.json>
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bundle, eventFile] = process.argv.slice(2);
const event = JSON.parse(readFileSync(eventFile, 'utf8'));
const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'vpc-lease-bench',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:vpc-lease-bench',
  memoryLimitInMB: '1024',
  awsRequestId: 'bench-request',
  logGroupName: '/aws/lambda/vpc-lease-bench',
  logStreamName: 'bench',
  getRemainingTimeInMillis: () => 15_000,
  done() {},
  fail() {},
  succeed() {},
};

const started = performance.now();
const module = await import(pathToFileURL(bundle).href);
const imported = performance.now();
const result = await module.handler(event, context);
const invoked = performance.now();
const status = result && typeof result === 'object' && 'statusCode' in result ? result.statusCode : 'ok';
process.stdout.write(
  `\nBENCH_RESULT ${JSON.stringify({ importMs: imported - started, invokeMs: invoked - imported, status })}\n`,
);

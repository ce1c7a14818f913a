// A fresh Node process's view of a Lambda cold start: import the bundle, invoke its
// handler once, report both times on one marker line; with a second event, invoke the
// now warm handler once more (the same kind of work without the first-call costs). Usage:
//   node cold-start-harness.mjs <bundle.mjs> <event.json> [<second-event.json>]
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bundle, eventFile, secondEventFile] = process.argv.slice(2);
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
const statusOf = (r) => (r && typeof r === 'object' && 'statusCode' in r ? r.statusCode : 'ok');
let warmMs;
let warmStatus;
if (secondEventFile) {
  const second = JSON.parse(readFileSync(secondEventFile, 'utf8'));
  const warmStarted = performance.now();
  warmStatus = statusOf(await module.handler(second, { ...context, awsRequestId: 'bench-request-2' }));
  warmMs = performance.now() - warmStarted;
}
process.stdout.write(
  `\nBENCH_RESULT ${JSON.stringify({ importMs: imported - started, invokeMs: invoked - imported, status: statusOf(result), warmMs, warmStatus })}\n`,
);

/**
 * The core (every module of shared/ outside shared/adapters and shared/http) speaks to AWS
 * only through the ports: it imports no adapter, no HTTP mapping and no AWS package, and it
 * matches no AWS error code. The adapters translate every SDK error into shared/errors.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SHARED = resolve(dirname(fileURLToPath(import.meta.url)), '../../shared');

/** The core's modules: the .ts files directly in shared/ (adapters and http are folders). */
const coreFiles = readdirSync(SHARED, { withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
  .map((entry) => join(SHARED, entry.name));

/** Every module a file names: static imports and re-exports, and dynamic import(). */
function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  for (const match of source.matchAll(/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g)) {
    specifiers.push(match[1]!);
  }
  for (const match of source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(match[1]!);
  for (const match of source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) specifiers.push(match[1]!);
  return specifiers;
}

/** Where a relative specifier points, relative to shared/ (`adapters/aws-errors.js`); packages as named. */
function target(file: string, specifier: string): string {
  if (!specifier.startsWith('.')) return specifier;
  return relative(SHARED, resolve(dirname(file), specifier));
}

/** AWS error codes as the SDK names them: `InvalidRouteTableID.NotFound`, `...Exception`, throttling codes. */
const AWS_ERROR_CODE =
  /['"`](?:Invalid[A-Za-z]+(?:ID|Id)?\.[A-Za-z]+|[A-Za-z]+Exception|RequestLimitExceeded|Throttling|RouteAlreadyExists|InvalidParameterValue|TransactionConflict|ConditionalCheckFailed)['"`]/;

describe('the core', () => {
  it('is found: the test reads the real modules', () => {
    const names = coreFiles.map((file) => relative(SHARED, file));
    expect(names).toEqual(expect.arrayContaining(['route-writer.ts', 'reconciler.ts', 'lease-service.ts']));
    expect(names.some((name) => name.includes('/'))).toBe(false);
  });

  it.each(coreFiles.map((file) => [relative(SHARED, file), file]))(
    '%s imports no adapter, no HTTP mapping and no AWS or Lambda package',
    (_name, file) => {
      const targets = importsOf(readFileSync(file, 'utf8')).map((specifier) => target(file, specifier));
      const forbidden = targets.filter(
        (t) =>
          t.startsWith('adapters/') ||
          t.startsWith('http/') ||
          t.startsWith('..') ||
          /^@aws-sdk\/|^@smithy\/|^@aws-lambda-powertools\/|^@middy\/|^aws-lambda$/.test(t),
      );
      expect(forbidden).toEqual([]);
    },
  );

  it.each(coreFiles.map((file) => [relative(SHARED, file), file]))(
    '%s matches no AWS error code',
    (_name, file) => {
      const source = readFileSync(file, 'utf8');
      const lines = source
        .split('\n')
        .filter((line) => AWS_ERROR_CODE.test(line) || /\bawsError\b/.test(line));
      expect(lines).toEqual([]);
    },
  );
});

describe('the boundary checks themselves', () => {
  it('see static, type-only, re-exported and dynamic imports', () => {
    const source = [
      "import { isTransient } from './adapters/aws-errors.js';",
      "import type {\n  ReconcileReportJson,\n} from './http/contract.js';",
      "export { x } from '@aws-sdk/client-ec2';",
      "const m = await import('./adapters/dependencies.js');",
    ].join('\n');
    const file = join(SHARED, 'example.ts');
    expect(importsOf(source).map((s) => target(file, s))).toEqual([
      'adapters/aws-errors.js',
      'http/contract.js',
      '@aws-sdk/client-ec2',
      'adapters/dependencies.js',
    ]);
  });

  it('see an AWS error code in a string, and not the domain codes', () => {
    expect(AWS_ERROR_CODE.test("details?.awsError === 'InvalidRouteTableID.NotFound'")).toBe(true);
    expect(AWS_ERROR_CODE.test("errorName(error) === 'ConditionalCheckFailedException'")).toBe(true);
    expect(AWS_ERROR_CODE.test("super('RouteLimitExceeded', 409, message)")).toBe(false);
    expect(AWS_ERROR_CODE.test("super('Throttled', 503, message)")).toBe(false);
  });
});

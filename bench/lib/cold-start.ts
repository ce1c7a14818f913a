/**
 * Cold start of each Lambda function: bundle size and the time a fresh Node process takes
 * to import the bundle and run one invocation against moto, next to baseline bundles that
 * hold only the same SDK clients: one sends 2 requests, the other (the lease function's fair
 * baseline) the lease grant's very 7 requests. Two packagings: the AWS SDK inside the bundle, and the
 * SDK left external (`@aws-sdk/*` resolved from node_modules at run time, as from the
 * runtime's own copy in Lambda).
 *
 * Bundling follows serverless.yml's esbuild settings (ESM, minified, node22, module
 * fields first, the createRequire banner CommonJS dependencies need), via esbuild's API.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HARNESS = fileURLToPath(new URL('./cold-start-harness.mjs', import.meta.url));
export const BASELINE_ENTRY = fileURLToPath(new URL('./baseline-handler.ts', import.meta.url));
export const GRANT_BASELINE_ENTRY = fileURLToPath(new URL('./cold-start-baseline-grant.ts', import.meta.url));

/** The SDK-only baseline of two requests (one GetItem, one DescribeRouteTables). */
export const BASELINE = 'baseline';
/** The SDK-only baseline that sends the lease grant's 7 requests (cold-start-baseline-grant.ts). */
export const GRANT_BASELINE = 'baseline-grant';
export const isBaseline = (name: string): boolean => name === BASELINE || name === GRANT_BASELINE;

export type Packaging = 'sdk-bundled' | 'sdk-external';
export const PACKAGINGS: readonly Packaging[] = ['sdk-bundled', 'sdk-external'];

export interface Bundle {
  readonly name: string;
  readonly packaging: Packaging;
  readonly file: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

const BANNER =
  "import { createRequire as __vlCreateRequire } from 'node:module'; const require = __vlCreateRequire(import.meta.url);";

/**
 * Bundles `entry` into `outDir/<packaging>/<name>.mjs`. The external packaging's folder gets a
 * node_modules link to the repository's, so the SDK resolves as it would from a layer.
 */
export async function bundleFunction(
  name: string,
  entry: string,
  packaging: Packaging,
  outDir: string,
): Promise<Bundle> {
  const dir = join(outDir, packaging);
  await mkdir(dir, { recursive: true });
  if (packaging === 'sdk-external') {
    await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir').catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
  }
  const file = join(dir, `${name}.mjs`);
  await build({
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    mainFields: ['module', 'main'],
    banner: { js: BANNER },
    external: packaging === 'sdk-external' ? ['@aws-sdk/*'] : [],
    logLevel: 'silent',
    absWorkingDir: REPO_ROOT,
  });
  const bytes = (await stat(file)).size;
  const gzipBytes = gzipSync(await readFile(file)).length;
  return { name, packaging, file, bytes, gzipBytes };
}

export interface ColdStartSample {
  readonly importMs: number;
  readonly invokeMs: number;
  /** import + first invocation */
  readonly totalMs: number;
  /** the process from spawn to exit, Node's own start-up included */
  readonly processMs: number;
  readonly status: unknown;
  /** a second invocation in the same process (warm), when a second event was given */
  readonly warmMs?: number;
  readonly warmStatus?: unknown;
}

/** One fresh `node` process: import the bundle, invoke its handler once with `event`. */
export async function measureColdStart(
  bundle: Bundle,
  event: unknown,
  env: NodeJS.ProcessEnv,
  workDir: string,
  secondEvent?: unknown,
): Promise<ColdStartSample> {
  const stem = join(workDir, `event-${basename(bundle.file, '.mjs')}-${Date.now()}`);
  const eventFile = `${stem}.json`;
  await writeFile(eventFile, JSON.stringify(event));
  const files = [eventFile];
  if (secondEvent !== undefined) {
    await writeFile(`${stem}-2.json`, JSON.stringify(secondEvent));
    files.push(`${stem}-2.json`);
  }
  const started = performance.now();
  const { code, stdout, stderr } = await run(process.execPath, [HARNESS, bundle.file, ...files], env);
  const processMs = performance.now() - started;
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (code !== 0 || !line) {
    throw new Error(
      `cold start of ${bundle.name} (${bundle.packaging}) failed with exit ${code}:\n${stderr.slice(-2000)}\n${stdout.slice(-2000)}`,
    );
  }
  const parsed = JSON.parse(line.slice('BENCH_RESULT '.length)) as {
    importMs: number;
    invokeMs: number;
    status: unknown;
    warmMs?: number;
    warmStatus?: unknown;
  };
  return { ...parsed, totalMs: parsed.importMs + parsed.invokeMs, processMs };
}

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// ---------------------------------------------------------------- the runs

export interface ColdStartTarget {
  readonly name: string;
  readonly entry: string;
  /** what the invocation does, for the report */
  readonly invocation: string;
  /**
   * The baseline this function is compared with ("vs baseline"): the SDK-only bundle that sends
   * the same requests where there is one (the lease grant), else the 2-request baseline.
   * Undefined for the baselines themselves.
   */
  readonly baseline?: string;
}

export interface ColdStartRow {
  readonly name: string;
  readonly packaging: Packaging;
  readonly invocation: string;
  /** as ColdStartTarget.baseline */
  readonly baseline?: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly runs: number;
  /** medians over the runs */
  readonly importMs: number;
  readonly invokeMs: number;
  readonly totalMs: number;
  readonly processMs: number;
  /** median of a second, warm invocation in the same process (the same kind of work) */
  readonly warmMs: number;
}

/** The row `row` is compared with: its own baseline (default), or the baseline named, same packaging. */
export function baselineOf(
  rows: readonly ColdStartRow[],
  row: ColdStartRow,
  name: string | undefined = row.baseline,
): ColdStartRow | undefined {
  return name === undefined ? undefined : rows.find((r) => r.name === name && r.packaging === row.packaging);
}

/** The functions of serverless.yml that exist in this checkout, then the baselines. */
export function coldStartTargets(exists: (path: string) => boolean): ColdStartTarget[] {
  const functions: ColdStartTarget[] = [
    {
      name: 'lease',
      entry: 'functions/lease.ts',
      invocation:
        'PUT /v1/lease, a new grant: BatchGetItem, DescribeInstances, PutItem, TransactWriteItems, ' +
        'ModifyNetworkInterfaceAttribute, CreateRoute, TransactWriteItems',
      baseline: GRANT_BASELINE,
    },
    { name: 'admin', entry: 'functions/admin.ts', invocation: 'GET /v1/admin/routes', baseline: BASELINE },
    {
      name: 'instance-state',
      entry: 'functions/instance-state.ts',
      invocation: '`running` event of a leased host',
      baseline: BASELINE,
    },
    {
      name: 'reconcile',
      entry: 'functions/reconcile.ts',
      invocation: 'a scheduled sweep (no change)',
      baseline: BASELINE,
    },
  ];
  return [
    ...functions.map((f) => ({ ...f, entry: join(REPO_ROOT, f.entry) })).filter((f) => exists(f.entry)),
    { name: BASELINE, entry: BASELINE_ENTRY, invocation: 'one GetItem + one DescribeRouteTables (SDK only)' },
    {
      name: GRANT_BASELINE,
      entry: GRANT_BASELINE_ENTRY,
      invocation: "the lease grant's 7 requests, in its order (SDK only)",
    },
  ];
}

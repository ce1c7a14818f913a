/**
 * `npm run build:agent`: what an operator installs on a host, in dist/:
 *
 * - `vpc-lease-agent`: one executable, a Node.js single executable application (the Node
 *   running this build, with the agent's bundle injected by postject). No Node.js, npm or
 *   repository on the host;
 * - `vpc-lease-agent.mjs`: the same agent as one file for hosts that have Node 20+;
 * - `vpc-lease-agent.service` and `vpc-lease-agent.env`: the systemd unit and an example of
 *   its environment file (agent/systemd/);
 * - `SHA256SUMS` of the above, in `sha256sum -c` format.
 *
 * When the executable cannot be built here (not Linux, a Node without the SEA fuse), the
 * build says why and still writes the rest.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type BuildOptions, build } from 'esbuild';

const run = promisify(execFile);
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

export const EXECUTABLE_NAME = 'vpc-lease-agent';
export const BUNDLE_NAME = 'vpc-lease-agent.mjs';
export const UNIT_NAME = 'vpc-lease-agent.service';
export const ENV_EXAMPLE_NAME = 'vpc-lease-agent.env';
export const CHECKSUMS_NAME = 'SHA256SUMS';
/** Node's documented sentinel: the SEA fuse compiled into every Node that can run an injected blob. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

async function agentVersion(): Promise<string> {
  const text = await readFile(join(REPO_ROOT, 'package.json'), 'utf8');
  return String((JSON.parse(text) as { version: string }).version);
}

async function bundleOptions(format: 'esm' | 'cjs', outfile: string): Promise<BuildOptions> {
  return {
    entryPoints: [join(REPO_ROOT, 'agent/bin/entry.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    minify: true,
    legalComments: 'none',
    outfile,
    logLevel: 'warning',
    define: { VPCLEASE_AGENT_VERSION: JSON.stringify(await agentVersion()) },
  };
}

/** The one-file agent for hosts with Node 20+. */
export async function buildAgent(outfile = join('dist', BUNDLE_NAME)): Promise<string> {
  await build({
    ...(await bundleOptions('esm', outfile)),
    // Some bundled dependencies are CommonJS and call require().
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);",
    },
  });
  await chmod(outfile, 0o755);
  return outfile;
}

export type ExecutableResult = { built: true; file: string } | { built: false; reason: string };

/** Why this machine cannot build the executable, or undefined when it can. */
async function seaUnsupported(node: string): Promise<string | undefined> {
  if (process.platform !== 'linux') {
    return `single executables are built on Linux only (this is ${process.platform})`;
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) return `Node ${process.versions.node} has no --experimental-sea-config (Node 20+ needed)`;
  const binary = await readFile(node);
  if (binary.indexOf(SEA_FUSE) < 0) {
    return `${node} was built without single executable support (no SEA fuse); use the official Node.js build`;
  }
  return undefined;
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The agent as a Node.js single executable application: a CommonJS bundle, Node's SEA
 * preparation blob (with V8's code cache, for a quicker start), injected into a copy of
 * this Node binary (symbols stripped when `strip` exists: ~13 MB less, same behaviour).
 */
export async function buildExecutable(
  outfile = join('dist', EXECUTABLE_NAME),
  node: string = process.execPath,
): Promise<ExecutableResult> {
  const unsupported = await seaUnsupported(node);
  if (unsupported) return { built: false, reason: unsupported };

  const work = await mkdtemp(join(tmpdir(), 'vpc-lease-sea-'));
  try {
    const script = join(work, 'agent.cjs');
    await build(await bundleOptions('cjs', script));
    const blob = join(work, 'sea-prep.blob');
    const config = join(work, 'sea-config.json');
    await writeFile(
      config,
      JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
    );
    await run(node, ['--experimental-sea-config', config], { cwd: work });

    const binary = join(work, EXECUTABLE_NAME);
    await copyFile(node, binary);
    await chmod(binary, 0o755);
    const strip = onPath('strip');
    if (strip) await run(strip, [binary]);
    const postject = join(dirname(require.resolve('postject/package.json')), 'dist/cli.js');
    try {
      await run(node, [postject, binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], {
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      return { built: false, reason: `postject failed: ${`${stdout}\n${stderr}`.trim().slice(-2000)}` };
    }

    // The executable must start without Node, npm or any variable: what a host gives it.
    try {
      const { stdout } = await run(binary, ['--version'], { env: {}, cwd: work, timeout: 60_000 });
      if (!stdout.startsWith(`${EXECUTABLE_NAME} `)) {
        return { built: false, reason: `the executable answered --version with ${JSON.stringify(stdout)}` };
      }
    } catch (error) {
      return { built: false, reason: `the executable does not start: ${(error as Error).message}` };
    }
    await mkdir(dirname(outfile), { recursive: true });
    await rename(binary, outfile).catch(async () => {
      // another file system (tmpdir on tmpfs): copy, then make it executable
      await copyFile(binary, outfile);
      await chmod(outfile, 0o755);
    });
    return { built: true, file: outfile };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

export interface AgentArtifacts {
  dir: string;
  /** file names in `dir`, SHA256SUMS last */
  files: string[];
  executable: ExecutableResult;
}

/** Everything `npm run build:agent` writes, in `dir`. */
export async function buildAgentArtifacts(
  dir = 'dist',
  options: { node?: string } = {},
): Promise<AgentArtifacts> {
  await mkdir(dir, { recursive: true });
  // A stale executable of an earlier build must not be shipped beside a newer bundle.
  await rm(join(dir, EXECUTABLE_NAME), { force: true });
  await buildAgent(join(dir, BUNDLE_NAME));
  const executable = await buildExecutable(join(dir, EXECUTABLE_NAME), options.node);
  for (const name of [UNIT_NAME, ENV_EXAMPLE_NAME]) {
    await copyFile(join(REPO_ROOT, 'agent/systemd', name), join(dir, name));
    await chmod(join(dir, name), 0o644);
  }
  const files = [...(executable.built ? [EXECUTABLE_NAME] : []), BUNDLE_NAME, UNIT_NAME, ENV_EXAMPLE_NAME];
  const sums = [];
  for (const name of files) sums.push(`${await sha256(join(dir, name))}  ${name}\n`);
  await writeFile(join(dir, CHECKSUMS_NAME), sums.join(''));
  return { dir, files: [...files, CHECKSUMS_NAME], executable };
}

if (process.argv[1]?.endsWith('build-agent.ts')) {
  const started = performance.now();
  const artifacts = await buildAgentArtifacts();
  for (const name of artifacts.files) {
    const { size } = await stat(join(artifacts.dir, name));
    console.log(`${join(artifacts.dir, name).padEnd(34)} ${(size / 1024 / 1024).toFixed(1).padStart(6)} MB`);
  }
  if (!artifacts.executable.built) {
    console.log(
      `\nNOT BUILT: ${join(artifacts.dir, EXECUTABLE_NAME)}: ${artifacts.executable.reason}.\n` +
        `Hosts need Node 20+ for ${BUNDLE_NAME} (ExecStart=/usr/bin/node /usr/local/bin/${BUNDLE_NAME} in the unit).`,
    );
  }
  console.log(
    `\nbuilt in ${((performance.now() - started) / 1000).toFixed(0)} s; check with: cd dist && sha256sum -c ${CHECKSUMS_NAME}`,
  );
}

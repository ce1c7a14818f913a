/**
 * `npm run build:agent`: the host agent as one file that needs nothing but Node 20+
 * (dist/vpc-lease-agent.mjs), to copy onto hosts or bake into an AMI.
 */
import { chmod } from 'node:fs/promises';
import { build } from 'esbuild';

export async function buildAgent(outfile = 'dist/vpc-lease-agent.mjs'): Promise<string> {
  await build({
    entryPoints: ['agent/bin/entry.ts'],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    legalComments: 'none',
    outfile,
    logLevel: 'warning',
    // Some bundled dependencies are CommonJS and call require().
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);",
    },
  });
  await chmod(outfile, 0o755);
  return outfile;
}

if (process.argv[1]?.endsWith('build-agent.ts')) console.log(`built ${await buildAgent()}`);

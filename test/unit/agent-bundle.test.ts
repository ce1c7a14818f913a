import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../scripts/build-agent.js';

describe('the single-file agent (npm run build:agent)', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs with nothing but Node: no node_modules next to it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vpc-lease-agent-'));
    const file = await buildAgent(join(dir, 'vpc-lease-agent.mjs'));
    const help = spawnSync(process.execPath, [file, '--help'], { cwd: dir, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--api-url/);
    expect(help.stdout).toMatch(/--subnet-file/);
    // a wrong flag is exit 2 (systemd's RestartPreventExitStatus), with a message
    const wrong = spawnSync(process.execPath, [file, '--no-such-flag'], { cwd: dir, encoding: 'utf8' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/no-such-flag/);
  });
});

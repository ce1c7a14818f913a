/**
 * `npm run demo` end to end: runDemo on a fresh local stack, its key lines, and that it
 * leaves nothing running, whether it finishes or is interrupted.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../scripts/demo.js';

async function canBind(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** the ports the demo printed for its stack */
function portsIn(output: string): number[] {
  return [
    ...output.matchAll(/^ {2}(?:HTTP API|Lambda invoke|moto_server)\s+http:\/\/127\.0\.0\.1:(\d+)/gm),
  ].map((m) => Number(m[1]));
}

/** the demo must not use a stack someone else runs */
const freshEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.VPCLEASE_API_URL;
  return env;
};

describe('npm run demo', () => {
  it('tours the system on a fresh stack: join, leases, routes, termination, a full table; then stops it all', async () => {
    let output = '';
    await runDemo({ out: (text) => (output += text), env: freshEnv() });

    expect(output).toMatch(/^\$ vpc-lease config set .*\n {2}Published the network config\./m);
    expect(output).toMatch(/"RouteLimit": 6\b/); // public table: local + igw routes + room for 4 leases
    const joined = [
      ...output.matchAll(
        /^ {2}(i-[0-9a-f]+) \(10\.0\.0\.\d+\): subnet\.env written, FLANNEL_SUBNET=10\.244\.(\d+)\.1\/24, FLANNEL_IPV6_SUBNET=fd00:10:244:([0-9a-f]+)::1\/64$/gm,
      ),
    ];
    expect(joined).toHaveLength(3 + 2);
    // a dual-stack host: IPv4 subnet i is paired with IPv6 subnet i (SubnetMin 10.244.1.0 <-> fd00:10:244:1::)
    for (const [, , third, group] of joined) expect(Number.parseInt(group!, 16)).toBe(Number(third));
    expect(output).toMatch(/^ {2}3 leases$/m);
    expect(output).toMatch(/^ {4}10\.244\.\d+\.0\/24 +-> eni-[0-9a-f]+ \(i-[0-9a-f]+\)$/m);
    expect(output).toMatch(/^ {4}fd00:10:244:[0-9a-f]+::\/64 +-> eni-[0-9a-f]+ \(i-[0-9a-f]+\)$/m);

    const terminated = /^== 5\. (i-[0-9a-f]+) terminates/m.exec(output)?.[1];
    expect(terminated).toBeDefined();
    expect(output).toMatch(
      /instanceState Lambda answered: \{"action":"released","subnet":"10\.244\.\d+\.0\/24","routeTableIds":\["rtb-/,
    );
    expect(output).toMatch(
      /The routes to 10\.244\.\d+\.0\/24 and fd00:10:244:[0-9a-f]+::\/64 are gone from every table, and so is the lease:/,
    );
    expect(output).toMatch(/^ {2}2 leases$/m);

    expect(output).toMatch(
      /^ {2}i-[0-9a-f]+ \(10\.0\.0\.\d+\): agent exited 1: the API answered 409 RouteLimitExceeded: Route table full in route table rtb-[0-9a-f]+: 6\/6 routes in use\./m,
    );
    expect(output).toMatch(/^ {2}rtb-[0-9a-f]+ +IPv4 +6\/6 +100% +4 +2 +0 +0 +WARNING$/m);
    expect(output).toMatch(/^ {2}rtb-[0-9a-f]+ +IPv6 +6\/6 +100% +4 +2 +0 +0 +WARNING$/m);
    expect(output).toContain('Stopped; nothing left running.');

    const ports = portsIn(output);
    expect(ports).toHaveLength(3);
    for (const port of ports) expect(await canBind(port)).toBe(true);
  }, 240_000);

  it('stops everything it started when interrupted (Ctrl-C) half-way', async () => {
    const interrupt = new AbortController();
    let output = '';
    const run = runDemo({
      env: freshEnv(),
      signal: interrupt.signal,
      out: (text) => {
        output += text;
        if (text.includes('== 2.')) interrupt.abort();
      },
    });

    await expect(run).rejects.toThrow();
    expect(output).not.toContain('== 3.');
    expect(output).toContain('Stopped; nothing left running.');
    for (const port of portsIn(output)) expect(await canBind(port)).toBe(true);
  }, 240_000);
});

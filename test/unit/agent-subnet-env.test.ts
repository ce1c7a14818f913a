import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  formatSubnetEnv,
  parseSubnetEnv,
  readSubnetEnv,
  writeSubnetEnvAtomically,
} from '../../agent/subnet-env.js';

describe('subnet.env format', () => {
  // flanneld's WriteSubnetFile (pkg/subnet/subnet.go) for an IPv4 network: NETWORK, SUBNET (first host
  // address + prefix), MTU, IPMASQ, in this order, each line ending in \n, nothing else.
  it('writes the same bytes as flanneld for the same lease', () => {
    const text = formatSubnetEnv({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      mtu: 9001,
      ipMasq: false,
    });

    expect(Buffer.from(text)).toEqual(
      Buffer.from(
        'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=9001\nFLANNEL_IPMASQ=false\n',
      ),
    );
  });

  it('writes ip-masq as true, and subnets other than /24 with their prefix', () => {
    expect(
      formatSubnetEnv({ network: '172.30.0.0/16', subnet: '172.30.176.0/21', mtu: 1500, ipMasq: true }),
    ).toBe(
      'FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.176.1/21\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n',
    );
  });

  it('reads back what it writes (any subnet of any network)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 17, max: 30 }),
        fc.nat(),
        fc.integer({ min: 68, max: 9001 }),
        fc.boolean(),
        (second, subnetLen, pick, mtu, ipMasq) => {
          const count = 2 ** (subnetLen - 16);
          const index = pick % count;
          const base = (10 << 24) | (second << 16);
          const subnetBase = (base + index * 2 ** (32 - subnetLen)) >>> 0;
          const ip = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
          const network = `${ip(base >>> 0)}/16`;
          const subnet = `${ip(subnetBase)}/${subnetLen}`;

          const parsed = parseSubnetEnv(formatSubnetEnv({ network, subnet, mtu, ipMasq }));

          expect(parsed).toEqual({ network, subnet, mtu, ipMasq, problems: [] });
        },
      ),
    );
  });
});

describe('reading an old subnet.env', () => {
  it('takes the subnet from FLANNEL_SUBNET in network form', () => {
    const parsed = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n');
    expect(parsed.subnet).toBe('10.244.7.0/24');
    expect(parsed.network).toBe('10.244.0.0/16');
  });

  it('accepts what other writers produce: CRLF, quotes, export, comments, blank lines', () => {
    const parsed = parseSubnetEnv(
      '# written by hand\r\n\r\nexport FLANNEL_SUBNET="10.1.17.1/24"\r\nFLANNEL_MTU=1472 # jumbo off\r\nFLANNEL_IPMASQ=true\r\n',
    );
    expect(parsed).toMatchObject({ subnet: '10.1.17.0/24', mtu: 1472, ipMasq: true });
  });

  it.each([
    ['FLANNEL_SUBNET=banana\n', 'FLANNEL_SUBNET=banana'],
    ['FLANNEL_SUBNET=10.244.7.1\n', 'FLANNEL_SUBNET=10.244.7.1'],
    ['FLANNEL_SUBNET=10.244.300.1/24\n', 'FLANNEL_SUBNET=10.244.300.1/24'],
    ['FLANNEL_SUBNET=10.244.7.1/33\n', 'FLANNEL_SUBNET=10.244.7.1/33'],
    ['\u0000\u0001\u0002', 'line 1'],
    ['', 'no FLANNEL_SUBNET'],
  ])('ignores garbage (%j) and says what it ignored', (contents, problem) => {
    const parsed = parseSubnetEnv(contents);
    expect(parsed.subnet).toBeUndefined();
    expect(parsed.problems.join('\n')).toContain(problem);
  });

  it('keeps the good values of a partly damaged file', () => {
    const parsed = parseSubnetEnv('FLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=lots\nFLANNEL_IPMASQ=maybe\n');
    expect(parsed.subnet).toBe('10.244.9.0/24');
    expect(parsed.mtu).toBeUndefined();
    expect(parsed.ipMasq).toBeUndefined();
    expect(parsed.problems).toHaveLength(2);
  });
});

describe('subnet.env on disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vpc-lease-subnet-env-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a missing file as missing', async () => {
    expect(await readSubnetEnv(join(dir, 'nope.env'))).toEqual({ status: 'missing' });
  });

  it('reports an unreadable path without throwing', async () => {
    const result = await readSubnetEnv(dir); // a directory
    expect(result.status).toBe('unreadable');
  });

  it('creates the directory and writes mode 0644, leaving no temporary file', async () => {
    const path = join(dir, 'run', 'flannel', 'subnet.env');
    const text = formatSubnetEnv({
      network: '10.244.0.0/16',
      subnet: '10.244.7.0/24',
      mtu: 9001,
      ipMasq: false,
    });

    await writeSubnetEnvAtomically(path, text);

    expect(await readFile(path, 'utf8')).toBe(text);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readdir(join(dir, 'run', 'flannel'))).toEqual(['subnet.env']);
  });

  it('replaces an existing file by rename (a new inode), fixing its mode', async () => {
    const path = join(dir, 'subnet.env');
    await writeFile(path, 'old');
    await chmod(path, 0o600);
    const before = await stat(path);

    await writeSubnetEnvAtomically(path, 'new\n');

    const after = await stat(path);
    expect(await readFile(path, 'utf8')).toBe('new\n');
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o777).toBe(0o644);
  });

  it('fails cleanly, leaving no temporary file, when the target cannot be replaced', async () => {
    const path = join(dir, 'subnet.env');
    await mkdir(join(path, 'child'), { recursive: true }); // a non-empty directory where the file should be

    await expect(writeSubnetEnvAtomically(path, 'x\n')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['subnet.env']);
  });
});

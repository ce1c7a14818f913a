import { describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/log.js';

const now = () => new Date('2026-01-01T00:00:00.000Z');

describe('agent log', () => {
  it('writes one JSON object per line, errors as their message', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', write: (l) => lines.push(l), now });
    const error = Object.assign(new Error('connection refused'), { status: 0, code: 'Unreachable' });

    log.warn('cannot renew', { subnet: '10.244.7.0/24', error, skipped: undefined });

    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({
      time: '2026-01-01T00:00:00.000Z',
      level: 'warn',
      message: 'cannot renew',
      subnet: '10.244.7.0/24',
      error: 'connection refused [Unreachable]',
    });
  });

  it('writes plain lines for a terminal, quoting values with spaces', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', write: (l) => lines.push(l), now });

    log.info('lease held', { subnet: '10.244.7.0/24', note: 'two words', count: 3 });

    expect(lines).toEqual([
      '2026-01-01T00:00:00.000Z INFO  lease held subnet=10.244.7.0/24 note="two words" count=3\n',
    ]);
  });

  it('drops levels below the chosen one', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', level: 'warn', write: (l) => lines.push(l), now });
    log.debug('a');
    log.info('b');
    log.warn('c');
    log.error('d');
    expect(lines.map((l) => l.split(' ')[1])).toEqual(['WARN', 'ERROR']);
  });
});

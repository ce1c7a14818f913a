/** Markdown tables (also what the console shows) and number formatting for the report. */

/** Columns whose every cell reads as a figure are right-aligned, the others left-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-\d≥]/.test(r[i] ?? '')));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${numeric[i] ? ':' : '-'}`).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** A number with `digits` decimals; '-' for NaN. */
export const fixed = (value: number, digits = 2): string =>
  Number.isFinite(value) ? value.toFixed(digits) : '-';

export const seconds = (ms: number, digits = 1): string => fixed(ms / 1000, digits);

export const kib = (bytes: number): string => `${fixed(bytes / 1024, 1)} KiB`;

/** `a/b` as `x.xx×`, prefixed with ≥ when `atLeast`. */
export const times = (value: number, atLeast = false): string =>
  Number.isFinite(value) ? `${atLeast ? '≥ ' : ''}${value.toFixed(value >= 10 ? 1 : 2)}×` : '-';

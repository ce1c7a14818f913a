/**
 * Reading the fields of an operator's JSON (the network config): each failure is a
 * ValidationError that names the field. Pure.
 */
import { CidrError } from './cidr.js';
import { ValidationError } from './errors.js';

/** flannel's zero IP: a SubnetMin/SubnetMax of 0.0.0.0 (or "::") means "use the default" (config.go). */
export const UNSET_IP = 0n;

export function field<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof CidrError) {
      const end = /[.?]$/.test(error.message) ? '' : '.';
      throw new ValidationError(`${name}: ${error.message}${end}`, { cause: error });
    }
    throw error;
  }
}

export function requireString(value: unknown, name: string, example?: string): string {
  if (typeof value !== 'string')
    throw new ValidationError(`${name}: required, as a string${example ? ` (${example})` : ''}.`);
  return value;
}

export function requireInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ValidationError(
      `${name}: must be an integer (got ${clip(JSON.stringify(value) ?? String(value))}).`,
    );
  }
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

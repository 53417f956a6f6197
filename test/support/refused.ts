import { expect } from 'vitest';
import type { SettingsError } from '../../lib/settings.ts';

/** The problems `read` refuses its settings with, as the error of the kind expected; fails if it accepts them. */
export function refusedWith(kind: new (problems: string[]) => SettingsError, read: () => unknown): string[] {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(kind);
    return (error as SettingsError).problems;
  }
  throw new Error(`expected a ${kind.name}`);
}

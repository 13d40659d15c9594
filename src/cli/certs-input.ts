// Shared by the `sidecar certs` subcommands: bad input (exit 2) and reading an input file with the problem in words.
import { readFileSync } from 'node:fs';

/** Bad input: the CLI prints the message and exits 2. */
export class CertsInputError extends Error {}

export function readInput(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new CertsInputError(`cannot read ${what} ${file}: ${why}`);
  }
}

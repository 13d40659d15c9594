// Reading a file that holds a secret (the admin token): its text without the trailing newline, or the problem in words.
import { readFileSync } from 'node:fs';

export type SecretRead = { ok: true; text: string } | { ok: false; problem: string };

export function readSecretFile(file: string): SecretRead {
  let text: string;
  try {
    // A trailing newline (echo "..." > file) is not part of the secret.
    text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    return { ok: false, problem: `cannot read ${file}: ${why}` };
  }
  if (text.trim() === '') return { ok: false, problem: `${file} is empty; write the token into it` };
  return { ok: true, text };
}

/**
 * Where an export goes. With --out DIR: every file written there, each replaced atomically, the files that
 * hold secret values with mode 0600 from their creation on. Without: printed to stdout as one stream (like
 * `podman generate systemd` or `helm template`), each file under a header naming it, except that a file
 * holding secret values is never printed: only its name and the variables it holds, and how to get it.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeOwnedFileAtomic } from '../safe-files.js';
import type { ExportFile } from './common.js';

export type OutputStyle = 'units' | 'yaml';

/** Writes the files; returns their paths. */
export function writeExport(files: readonly ExportFile[], outDir: string): string[] {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  return files.map((file) => {
    const path = join(dir, file.name);
    // Created 0600 (O_EXCL temp file, renamed over the old one): a secret is never readable by others, even for a moment.
    writeOwnedFileAtomic(path, file.content);
    if (!file.secret) chmodSync(path, 0o644);
    return path;
  });
}

function withheld(file: ExportFile, expectedAt: string): string {
  return `${file.name} is not printed: it holds the secret-looking ${(file.holds ?? []).join(', ')}. --out DIR writes it (mode 0600)${expectedAt}.`;
}

/** The stream printed without --out. */
export function printable(files: readonly ExportFile[], style: OutputStyle, envDir: string): string {
  const parts: string[] = [];
  for (const file of files) {
    if (style === 'units') {
      parts.push(file.secret ? `# ==> ${file.name} <==\n# ${withheld(file, `; the units expect it at ${join(envDir, file.name)}`)}\n` : `# ==> ${file.name} <==\n${file.content}`);
    } else {
      // A comment, not a document: `kubectl apply -f -` sees no empty document, and creates no Secret without values.
      parts.push(file.secret ? `# ${withheld(file, '; apply it before the Deployment')}\n` : `---\n# Source: ${file.name}\n${file.content}`);
    }
  }
  return parts.join(style === 'units' ? '\n' : '');
}

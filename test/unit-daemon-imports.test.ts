import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g;

/** Every package the module graph from `entry` can load, statically or by a dynamic import(). */
function packagesReachable(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2]!;
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier.replace(/\.js$/, '.ts'));
        assert.ok(existsSync(target), `${file} imports ${specifier}, not found as ${target}`);
        queue.push(target);
      } else if (!specifier.startsWith('node:')) {
        packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
  }
  assert.ok(seen.size > 20, `the walk found the daemon's modules (${seen.size})`);
  return packages;
}

test('neither the daemon nor the log relay can load zod (it kept ~14 MB resident; requests are checked by src/validate.ts)', () => {
  for (const entry of ['daemon/main.ts', 'logs/relay/main.ts']) {
    const packages = packagesReachable(join(SRC, entry));
    assert.ok(!packages.has('zod'), `${entry} reaches zod: ${[...packages].join(', ')}`);
  }
});

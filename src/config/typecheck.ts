/**
 * Type-checking a `.ts` config before it runs: tsx only strips types, so without this a config with a
 * type error would run (and perhaps start something) anyway. Uses the TypeScript compiler of the
 * config's own project if it has one, else agentpm's; without either, the check is skipped and said so.
 * `import ... from 'agentpm'` is checked against agentpm's own declarations wherever the config lives.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type TypeScript = typeof import('typescript');

const OWN_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OWN_DECLARATIONS = join(OWN_ROOT, 'dist', 'index.d.ts');
/** Errors that come from the environment (a missing @types package), not from the config itself. */
const ENVIRONMENT_CODES = new Set([2580, 2591, 2592, 2688, 2503]);

function loadTypeScript(file: string): TypeScript | null {
  for (const from of [file, join(OWN_ROOT, 'package.json')]) {
    try {
      return createRequire(from)('typescript') as TypeScript;
    } catch {
      // not installed there
    }
  }
  return null;
}

/** The type errors of a config file, formatted; null when no TypeScript compiler is available. */
export function typeErrorsOf(file: string): string[] | null {
  const ts = loadTypeScript(file);
  if (!ts) return null;
  const typeRoots = [join(dirname(file), 'node_modules', '@types'), join(OWN_ROOT, 'node_modules', '@types')].filter((dir) => existsSync(dir));
  const program = ts.createProgram([file], {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    typeRoots,
    types: typeRoots.some((dir) => existsSync(join(dir, 'node'))) ? ['node'] : [],
    paths: { agentpm: [OWN_DECLARATIONS] },
  });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file?.fileName === file.replaceAll('\\', '/') && !ENVIRONMENT_CODES.has(diagnostic.code))
    .map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      if (!diagnostic.file || diagnostic.start === undefined) return message;
      const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      return `${file}:${line + 1}:${character + 1}: TS${diagnostic.code}: ${message}`;
    });
}

/**
 * The argv agentpm's daemon would exec for an app, with the program as an absolute path: the same
 * derivation as a start (commandFor: the interpreter by extension, tsx's loader by absolute path), then a
 * PATH lookup the way spawn() does it, since a unit file must name the program it runs.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { AgentpmError } from '../errors.js';
import type { AppDefinition } from '../protocol.js';
import { commandFor } from '../daemon/spawn.js';

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function onPath(program: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, program);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

export function resolvedCommand(app: AppDefinition, path: string): { file: string; args: string[] } {
  const { file, args } = commandFor(app);
  if (isAbsolute(file)) {
    if (!isExecutableFile(file)) throw new AgentpmError('invalid-config', `app ${app.name}: ${file} is not an executable file; fix \`script\` or \`interpreter\` (or make it executable), then export again`);
    return { file, args };
  }
  const found = file.includes('/') ? null : onPath(file, path);
  if (found === null) {
    throw new AgentpmError('invalid-config', `app ${app.name}: cannot find '${file}' on PATH; a unit must name its program by absolute path: set \`interpreter\` (or \`script\`) to one`);
  }
  return { file: found, args };
}

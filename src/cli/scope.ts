/**
 * Where the CLI may start the daemon in a delegated cgroup: a user (not root, which has cgroups
 * anyway) whose systemd user manager is reachable gets the daemon in a transient scope with
 * Delegate=yes, so it can contain its apps. Anything missing means a plain launch, silently; the
 * daemon's status says which it got.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export function scopePrefix(env: NodeJS.ProcessEnv, uid = process.getuid?.() ?? -1): string[] | null {
  if (process.platform !== 'linux' || uid === 0 || env['AGENTPM_CONTAINMENT'] === 'proc') return null;
  const runtime = env['XDG_RUNTIME_DIR'];
  // The user manager's private socket: systemd-run --user talks to it (or to the session bus).
  if (!runtime || !existsSync(join(runtime, 'systemd', 'private'))) return null;
  const systemdRun = (env['PATH'] ?? '').split(delimiter).map((dir) => join(dir, 'systemd-run')).find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return systemdRun ? [systemdRun, '--user', '--scope', '--quiet', '--collect', '-p', 'Delegate=yes', '--'] : null;
}

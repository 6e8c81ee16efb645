/**
 * Node flags for the daemon, which runs for weeks.
 *
 * 1 MB semi-spaces instead of V8's default (up to 16 MB): each tick allocates a little for every
 * process of the machine and keeps almost none of it, and with a large young generation that garbage
 * stays resident. Measured with 200 apps x 15 processes (3,000 processes; bench/footprint.ts, 2026-11-29):
 * 92 MB instead of 122 MB, the daemon's CPU at a 1 s tick the same (5.6 against 5.5 % of a core);
 * no difference idle or with 20 apps. The log relay gains nothing from it at rest, so it runs without.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

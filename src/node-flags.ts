/**
 * Node flags for agentpm's resident processes: the daemon and the log relay, which run for weeks.
 *
 * Semi-spaces of 1 MB instead of V8's default of up to 16 MB. The daemon allocates a few MB a second
 * (most of it /proc scans: a little per process of the machine, kept for one pass) and keeps almost
 * none of it, and V8 answers that rate by doubling its young generation step by step towards 2 x 16 MB,
 * all of it touched by the scavenges and rarely given back: that is the daemon's RSS climbing in 8 and
 * 16 MB steps over a soak while its live heap stays flat (bench/RESULTS.md, "Soak"). A 1 MB nursery
 * costs more scavenges, each short because almost nothing survives. With 200 apps x 15 processes
 * (bench/footprint.ts, 2026-11-29) the daemon holds 92 MB instead of 122 MB at the same CPU.
 */
export const RESIDENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

// CPU time and memory of process trees, read from /proc (Linux). CPU is user + system time of every
// live process in the tree plus what its members collected from children they reaped, so work of
// short-lived helpers (PostgreSQL backends, a restarted server) is not lost between two readings.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on every Linux we run on

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const num = (i: number) => Number(rest[i]);
    return { pid, ppid: num(1), ticks: num(11) + num(12) + num(13) + num(14) };
  } catch {
    return undefined;
  }
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) out.push(stat);
  }
  return out;
}

/** The pids of the trees rooted at `roots` (roots included, when alive). */
export function treePids(roots: number[], stats: ProcStat[] = allStats()): number[] {
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const alive = new Set(stats.map((s) => s.pid));
  const out: number[] = [];
  const queue = roots.filter((pid) => alive.has(pid));
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Total CPU seconds of the trees rooted at `roots`. */
export function treeCpuSeconds(roots: number[]): number {
  const stats = allStats();
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  let ticks = 0;
  for (const pid of treePids(roots, stats)) ticks += byPid.get(pid)?.ticks ?? 0;
  return ticks / TICKS_PER_SECOND;
}

function statusField(pid: number, field: string): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Current resident memory of the trees, in bytes. */
export function treeRssBytes(roots: number[]): number {
  return treePids(roots).reduce((sum, pid) => sum + statusField(pid, 'VmRSS'), 0);
}

/** The pid of the local PostgreSQL postmaster (the `postgres` process whose parent is not one). */
export function findPostmasterPid(): number | undefined {
  const stats = allStats();
  const names = new Map<number, string>();
  for (const s of stats) {
    try {
      names.set(s.pid, readFileSync(`/proc/${s.pid}/comm`, 'utf8').trim());
    } catch {
      // gone
    }
  }
  const postgres = stats.filter((s) => names.get(s.pid) === 'postgres');
  return postgres.find((s) => names.get(s.ppid) !== 'postgres')?.pid;
}

/** Samples the RSS of named process trees and keeps each one's peak. */
export class PeakRssSampler {
  private readonly peaks = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly trees: () => Record<string, number[]>) {}

  start(intervalMs = 500): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): Record<string, number> {
    clearInterval(this.timer);
    this.sample();
    return Object.fromEntries(this.peaks);
  }

  private sample(): void {
    for (const [name, roots] of Object.entries(this.trees())) {
      const rss = treeRssBytes(roots);
      if (rss > (this.peaks.get(name) ?? 0)) this.peaks.set(name, rss);
    }
  }
}

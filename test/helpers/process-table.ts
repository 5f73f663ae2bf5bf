// Reads Linux's /proc to prove that processes are gone (no orphan servers after a stop).
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessEntry {
  pid: number;
  ppid: number;
  pgid: number;
  command: string;
}

export function listProcesses(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      entries.push({ pid: Number(name), ppid: Number(fields[1]), pgid: Number(fields[2]), command });
    } catch {
      // exited while we were reading
    }
  }
  return entries;
}

export const processesInGroup = (pgid: number): ProcessEntry[] => listProcesses().filter((p) => p.pgid === pgid);
export const childrenOf = (pid: number): ProcessEntry[] => listProcesses().filter((p) => p.ppid === pid);

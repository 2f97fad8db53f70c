/**
 * CPU time and RSS of other processes, from /proc (Linux).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`, usually 100). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticks = NaN;
    }
    if (!Number.isFinite(ticks) || ticks <= 0) {
      process.stderr.write('bench: getconf CLK_TCK failed, assuming 100 ticks per second\n');
      ticks = 100;
    }
  }
  return ticks;
}

/** Fields of /proc/<pid>/stat, numbered as in proc(5) (1 = pid, 14 = utime...). */
function statFields(pid: number | 'self', numbers: number[]): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may contain spaces: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return numbers.map((n) => {
    const v = Number(fields[n - 3]);
    if (!Number.isFinite(v)) throw new Error(`cannot parse field ${n} of /proc/${pid}/stat: ${stat}`);
    return v;
  });
}

/** utime + stime of a process, all threads, in seconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

/** CPU seconds of a process in user space and in the kernel (on loopback the kernel's share includes delivering what it writes to the peer). */
export function cpuSplit(pid: number): { user: number; system: number } {
  const [utime, stime] = statFields(pid, [14, 15]);
  return { user: utime / clockTicks(), system: stime / clockTicks() };
}

/**
 * CPU seconds of this process plus its children already waited for
 * (utime, stime, cutime, cstime): the bench itself and every finished wrk.
 */
export function selfAndReapedCpuSeconds(): number {
  return statFields('self', [14, 15, 16, 17]).reduce((a, b) => a + b, 0) / clockTicks();
}

/** CPU seconds spent in user and system mode by the whole machine (/proc/stat "cpu" line: user, nice, system). */
export function machineCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system] = line.trim().split(/\s+/).slice(1, 4).map(Number);
  return (user + nice + system) / clockTicks();
}

/** CPU seconds the hypervisor gave other guests while this machine wanted to run (/proc/stat "cpu" line, steal). */
export function machineStealSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  return Number(line.trim().split(/\s+/)[8]) / clockTicks();
}

/** Resident set size in MiB (VmRSS of /proc/<pid>/status). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * RSS of each pid once it stops moving: sampled every 250 ms until three
 * consecutive samples of every pid are within 0.5 MiB of each other, or 6 s.
 */
export async function settledRss(pids: readonly number[]): Promise<number[]> {
  let prev = pids.map(rssMiB);
  let stable = 0;
  for (let i = 0; i < 24 && stable < 2; i++) {
    await sleep(250);
    const now = pids.map(rssMiB);
    stable = now.every((v, j) => Math.abs(v - prev[j]) < 0.5) ? stable + 1 : 0;
    prev = now;
  }
  return prev;
}

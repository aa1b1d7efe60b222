/**
 * Other processes' CPU while a benchmark runs (Linux): busy jiffies of the whole machine from
 * /proc/stat minus this process's own, over wall time, in cores. A 2-core timing is trustworthy
 * only when this stays near zero; results record it so quiet runs can be told from busy ones.
 */
import { readFileSync } from 'node:fs';

const HZ = 100; // USER_HZ on Linux

function machineBusy(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
  const [user, nice, system, , , irq, softirq, steal] = cpu.map(Number) as number[];
  return user! + nice! + system! + irq! + softirq! + steal!;
}

function ownBusy(children: boolean): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const own = Number(fields[11]) + Number(fields[12]); // utime, stime
  // cutime, cstime: children this process has waited for
  return children ? own + Number(fields[13]) + Number(fields[14]) : own;
}

export interface CpuWatch {
  /** Mean cores used by other processes since start (null where /proc is not there). */
  stop(): { otherCores: number | null; seconds: number };
}

/**
 * Starts watching other processes' CPU.
 *
 * @param opts - `{ children: true }` counts this process's children (waited for) as its own: a
 *   benchmark that runs a peer in a child process (performer-pytorch in Python, say)
 */
export function watchOtherCpu(opts: { children?: boolean } = {}): CpuWatch {
  const children = opts.children === true;
  const t0 = performance.now();
  let start: [number, number] | null = null;
  try {
    start = [machineBusy(), ownBusy(children)];
  } catch {
    start = null;
  }
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      if (start === null) return { otherCores: null, seconds };
      const other = machineBusy() - start[0] - (ownBusy(children) - start[1]);
      return { otherCores: Math.max(0, other / HZ / seconds), seconds };
    },
  };
}

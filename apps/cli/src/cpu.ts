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

function ownBusy(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

export interface CpuWatch {
  /** Mean cores used by other processes since start (null where /proc is not there). */
  stop(): { otherCores: number | null; seconds: number };
}

export function watchOtherCpu(): CpuWatch {
  const t0 = performance.now();
  let start: [number, number] | null = null;
  try {
    start = [machineBusy(), ownBusy()];
  } catch {
    start = null;
  }
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      if (start === null) return { otherCores: null, seconds };
      const other = machineBusy() - start[0] - (ownBusy() - start[1]);
      return { otherCores: Math.max(0, other / HZ / seconds), seconds };
    },
  };
}

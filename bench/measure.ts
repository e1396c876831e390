/** What every scenario measures alike: CPU use over a window (broker, load, Kafka, everything else) and latency quantiles. */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { RunningBroker } from './brokers';
import { cpuOf } from './processes';

export interface CpuUse {
  brokerCpu: number;
  loadCpu: number;
  /** Cores used by anything but broker, load and Kafka: other builds or tests on the machine. */
  otherCpu: number;
  /** CPU cores per broker process (several for tributary-kafka), and of its Kafka broker. */
  processCpu: Record<string, number>;
  kafkaCpu?: number;
}

/** Starts measuring CPU use; the returned function gives the cores used on average since then. */
export function cpuWindow(broker: RunningBroker): () => CpuUse {
  const kafkaCpuNow = (): number => broker.kafka?.cpuSeconds() ?? NaN;
  const procCpu = (): number[] => broker.processes.map((x) => cpuOf(x.pid));
  const start = { t: performance.now(), bc: broker.cpuSeconds(), pc: procCpu(), kc: kafkaCpuNow(), lc: process.cpuUsage(), mc: machineBusySeconds() };
  return () => {
    const seconds = (performance.now() - start.t) / 1000;
    const lc = process.cpuUsage(start.lc);
    const brokerCpu = (broker.cpuSeconds() - start.bc) / seconds;
    const loadCpu = (lc.user + lc.system) / 1e6 / seconds;
    const pc = procCpu();
    const processCpu = Object.fromEntries(broker.processes.map((x, i) => [x.role, (pc[i]! - start.pc[i]!) / seconds]));
    const kafkaCpu = (kafkaCpuNow() - start.kc) / seconds;
    // CPU used by anything else (other builds, tests) competes with broker and load on 2 cores. The
    // Kafka broker under tributary-kafka is part of what is measured, not a disturbance.
    const otherCpu = Math.max(0, (machineBusySeconds() - start.mc) / seconds - brokerCpu - loadCpu - (Number.isFinite(kafkaCpu) ? kafkaCpu : 0));
    return { brokerCpu, loadCpu, otherCpu, processCpu, ...(Number.isFinite(kafkaCpu) ? { kafkaCpu } : {}) };
  };
}

/** User + system CPU seconds of all processes (all cores), from /proc/stat; irq time is nobody's. */
function machineBusySeconds(): number {
  const [user = 0, nice = 0, system = 0] = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(1).map(Number);
  return (user + nice + system) / 100;
}

/** CPU use for the JSON: broker (and each of its processes, when several), Kafka, load, others. */
export function cpuDiag(r: CpuUse): Record<string, number> {
  return {
    brokerCpuCores: r.brokerCpu,
    ...(Object.keys(r.processCpu).length > 1 ? Object.fromEntries(Object.entries(r.processCpu).map(([role, c]) => [`cpuCores.${role}`, c])) : {}),
    ...(r.kafkaCpu !== undefined ? { kafkaCpuCores: r.kafkaCpu } : {}),
    loadCpuCores: r.loadCpu,
    otherCpuCores: r.otherCpu,
  };
}

/** Sorted latencies (ms) → the value at quantile q, in µs. */
export function quantiles(latencyMs: number[]): (q: number) => number {
  const s = Float64Array.from(latencyMs).sort();
  return (q) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]! * 1000;
}

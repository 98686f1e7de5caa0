/**
 * Prometheus metrics, hand-written (ADR 0025: prom-client cost ~40 ms of start-up per pod shim).
 * Counters, gauges and histograms with labels, and the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). No I/O here.
 *
 * Bounded: each metric keeps at most MAX_SERIES label combinations; later ones are not
 * recorded (the label values come from method names, status codes, handler names and backend
 * subcommands, all small sets: the bound is a guard, never reached in normal operation).
 */

export const MAX_SERIES = 1000;

export type Labels = Readonly<Record<string, string>>;

/** Seconds buckets for RPCs and backend commands: 1 ms .. 60 s (Create of a gVisor sandbox takes seconds). */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

type Kind = 'counter' | 'gauge' | 'histogram';

abstract class Metric<S> {
  protected readonly series = new Map<string, { labels: Labels; value: S }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
    readonly labelNames: readonly string[],
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not valid`);
    for (const l of labelNames) if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l) || l.startsWith('__')) throw new Error(`label name ${JSON.stringify(l)} is not valid`);
  }

  protected abstract fresh(): S;

  /** The series of `labels` (created on first use; undefined past MAX_SERIES). */
  protected at(labels: Labels | undefined): S | undefined {
    const values = this.labelNames.map((n) => labels?.[n] ?? '');
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) return undefined;
      const own: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (own[n] = values[i]!));
      s = { labels: own, value: this.fresh() };
      this.series.set(key, s);
    }
    return s.value;
  }

  /** Forget every series (gauges recomputed at each scrape). */
  reset(): void {
    this.series.clear();
  }

  abstract lines(out: string[]): void;

  protected header(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.kind}`);
  }
}

export class Counter extends Metric<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'counter', labelNames);
  }
  protected fresh() {
    return { v: 0 };
  }
  inc(labels?: Labels, n = 1): void {
    if (!(n >= 0)) return; // a counter never goes down
    const s = this.at(labels);
    if (s) s.v += n;
  }
  get(labels?: Labels): number {
    return this.at(labels)?.v ?? 0;
  }
  lines(out: string[]): void {
    this.header(out);
    for (const { labels, value } of this.series.values()) out.push(`${this.name}${labelText(labels)} ${num(value.v)}`);
  }
}

export class Gauge extends Metric<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'gauge', labelNames);
  }
  protected fresh() {
    return { v: 0 };
  }
  set(labels: Labels | undefined, v: number): void {
    const s = this.at(labels);
    if (s) s.v = v;
  }
  inc(labels?: Labels, n = 1): void {
    const s = this.at(labels);
    if (s) s.v += n;
  }
  lines(out: string[]): void {
    this.header(out);
    for (const { labels, value } of this.series.values()) out.push(`${this.name}${labelText(labels)} ${num(value.v)}`);
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramSeries> {
  readonly buckets: readonly number[];
  constructor(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DURATION_BUCKETS) {
    super(name, help, 'histogram', labelNames);
    if (labelNames.includes('le')) throw new Error('a histogram cannot have a label named "le"');
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  protected fresh(): HistogramSeries {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(labels: Labels | undefined, v: number): void {
    const s = this.at(labels);
    if (!s || Number.isNaN(v)) return;
    // Only the first bucket that holds v is counted here; exposition makes them cumulative.
    const i = this.buckets.findIndex((b) => v <= b);
    if (i >= 0) s.counts[i]! += 1;
    s.sum += v;
    s.count += 1;
  }
  /** The number of observations of `labels` so far. */
  count(labels?: Labels): number {
    return this.at(labels)?.count ?? 0;
  }
  lines(out: string[]): void {
    this.header(out);
    for (const { labels, value } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += value.counts[i]!;
        out.push(`${this.name}_bucket${labelText(labels, ['le', num(b)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(labels, ['le', '+Inf'])} ${value.count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${num(value.sum)}`);
      out.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
  }
}

/** A set of metrics exposed together; `collectors` refresh gauges just before an exposition. */
export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();
  private readonly collectors: Array<() => void | Promise<void>> = [];

  private add<M extends Metric<unknown>>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }
  /** fn runs before each exposition (e.g. to set gauges from live state); its failure is not the scrape's. */
  onCollect(fn: () => void | Promise<void>): void {
    this.collectors.push(fn);
  }

  /** The text exposition format (version 0.0.4). */
  async exposition(): Promise<string> {
    await Promise.allSettled(this.collectors.map(async (fn) => fn()));
    const out: string[] = [];
    for (const m of this.metrics.values()) m.lines(out);
    return out.length ? out.join('\n') + '\n' : '';
  }
}

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** A sample value as Prometheus writes it: +Inf, -Inf, NaN, or a Go-parsable float. */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

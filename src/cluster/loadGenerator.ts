/**
 * A bounded load generator: a few concurrent clients asking the load balancer for
 * lesson pages until stopped (or a request or time limit), classifying every answer as
 * the old lesson's, the new lesson's, either (the page did not change), or neither
 * (a failure, or a mix).
 */
/** `either`: a page both lessons answer the same way, which tells nothing of the version. */
export type AnswerKind = 'old' | 'new' | 'either' | 'neither';

export interface LoadOptions {
  baseUrl: string;
  paths: string[];
  concurrency: number;
  /** Hard bounds, so a load never runs away. */
  maxRequests: number;
  maxDurationMs: number;
  classify: (path: string, status: number, body: string) => AnswerKind;
  /** Each client waits this long between requests, so the load stays a load and not a flood. */
  pauseMs?: number;
}

export interface LoadResult {
  requests: number;
  failed: number;
  old: number;
  new: number;
  either: number;
  neither: number;
  /** First answer from the new lesson to last answer from the old one, in ms (0 when they never overlapped). */
  mixedWindowMs: number;
  failures: string[];
  /** The answers that bound the mixed window: when (ms since start) and which satellite (X-Satellite). */
  firstNew?: { atMs: number; satellite: string };
  lastOld?: { atMs: number; satellite: string };
}

/** Classifies an answer by comparing it with each lesson's expected body for the path. */
export function classifyByAnswers(oldAnswers: Map<string, string>, newAnswers: Map<string, string>): LoadOptions['classify'] {
  return (path, status, body) => {
    if (status !== 200) return 'neither';
    const [wasOld, isNew] = [body === oldAnswers.get(path), body === newAnswers.get(path)];
    return wasOld && isNew ? 'either' : wasOld ? 'old' : isNew ? 'new' : 'neither';
  };
}

export interface RunningLoad {
  stop(): Promise<LoadResult>;
}

export function startLoad(options: LoadOptions): RunningLoad {
  const result: LoadResult = { requests: 0, failed: 0, old: 0, new: 0, either: 0, neither: 0, mixedWindowMs: 0, failures: [] };
  let firstNew: number | undefined;
  let lastOld: number | undefined;
  const t0 = performance.now();
  let stopped = false;
  const until = Date.now() + options.maxDurationMs;

  const client = async (worker: number) => {
    let i = worker;
    while (!stopped && Date.now() < until && result.requests < options.maxRequests) {
      if (options.pauseMs && i !== worker) await new Promise((r) => setTimeout(r, options.pauseMs));
      const path = options.paths[i++ % options.paths.length]!;
      result.requests += 1;
      const sentAt = performance.now();
      try {
        const response = await fetch(`${options.baseUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
        const body = await response.text();
        const kind = options.classify(path, response.status, body);
        result[kind] += 1;
        if (response.status !== 200) {
          result.failed += 1;
          if (result.failures.length < 20)
            result.failures.push(`${path}: HTTP ${response.status} from ${response.headers.get('x-satellite') ?? 'the load balancer itself'}`);
        } else if (kind === 'neither' && result.failures.length < 20) {
          result.failures.push(`${path}: an answer from neither lesson`);
        }
        const receivedAt = performance.now();
        const satellite = response.headers.get('x-satellite') ?? '?';
        if (kind === 'new' && firstNew === undefined) {
          firstNew = sentAt;
          result.firstNew = { atMs: Math.round(sentAt - t0), satellite };
        }
        if (kind === 'old') {
          lastOld = receivedAt;
          result.lastOld = { atMs: Math.round(receivedAt - t0), satellite };
        }
      } catch (err) {
        result.failed += 1;
        result.neither += 1;
        if (result.failures.length < 20) result.failures.push(`${path}: ${(err as Error).message}`);
      }
    }
  };
  const clients = Promise.all(Array.from({ length: options.concurrency }, (_, w) => client(w)));
  return {
    async stop() {
      stopped = true;
      await clients;
      if (firstNew !== undefined && lastOld !== undefined && lastOld > firstNew) result.mixedWindowMs = Math.round(lastOld - firstNew);
      return result;
    },
  };
}

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** The state of one asynchronous load: its value, its error text, and a reload. */
export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload(): void;
}

/**
 * Runs `load` now, whenever `deps` change, and every `everyMs` if given; keeps the last good
 * value while a reload runs, and the error text of the last failure.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const live = useRef(true);
  useEffect(() => {
    live.current = true;
    return () => void (live.current = false);
  }, []);
  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    load().then(
      (v) => {
        if (cancelled || !live.current) return;
        setData(v);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (cancelled || !live.current) return;
        setError(e instanceof Error ? e.message : String(e));
        setLoading(false);
      },
    );
    return () => void (cancelled = true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!everyMs) return;
    const t = setInterval(() => setTick((n) => n + 1), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, loading, reload };
}

/** Runs a change (add, delete) and reloads `list` after it; keeps the failure's text. */
export function useAction(list: { reload(): void }): { error: string | undefined; act(fn: () => Promise<unknown>): Promise<void> } {
  const [error, setError] = useState<string | undefined>(undefined);
  const act = async (fn: () => Promise<unknown>): Promise<void> => {
    setError(undefined);
    try {
      await fn();
      list.reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return { error, act };
}

import { useEffect, useState } from 'preact/hooks';

/**
 * Client-side routing on the History API: the server answers index.html for every path that is
 * not under /api, so /clients/abc can be reloaded or linked.
 */
const listeners = new Set<() => void>();

/** Goes to `path` (pushState) and re-renders the app. */
export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  for (const l of listeners) l();
}

window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

/** The current path, re-rendering on navigation. */
export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const l = (): void => setPath(location.pathname);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return path;
}

/** An in-app link: a plain <a href> that navigates without reloading. */
export function onLink(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null)?.getAttribute('href');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a);
}

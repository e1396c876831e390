/**
 * Whether `p` resolves within `ms`: true if it did, false if it rejected or took longer (it is
 * not cancelled; a later rejection is absorbed).
 */
export function resolvesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true, () => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]).finally(() => clearTimeout(timer));
}

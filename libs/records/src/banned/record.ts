/** What a ban matches a client by (EMQX's `as`): exact values, regular expressions (_re) or a CIDR block (peerhost_net). */
export type BannedAs = 'clientid' | 'username' | 'peerhost' | 'clientid_re' | 'username_re' | 'peerhost_net';

export const BANNED_AS: readonly BannedAs[] = ['clientid', 'username', 'peerhost', 'clientid_re', 'username_re', 'peerhost_net'];

/** One ban (banned table, key: `<as>/<who>`), EMQX's field names. */
export interface BannedRecord {
  as: BannedAs;
  who: string;
  /** Who made the ban ("mgmt_api", "flapping_detect", an operator's name). */
  by: string;
  reason: string;
  /** Seconds since the epoch when the ban was made. */
  at: number;
  /** Seconds since the epoch when the ban ends, or "infinity". */
  until: number | 'infinity';
}

/** The table key of a ban: `as` never contains a slash, `who` may. */
export function bannedKey(as: BannedAs, who: string): string {
  return `${as}/${who}`;
}

import type * as JoseModule from 'jose' with { 'resolution-mode': 'import' };

/** The `jose` module (ESM only: loaded with import() from this CommonJS package). */
export type Jose = typeof JoseModule;
export type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose' with { 'resolution-mode': 'import' };

let loading: Promise<Jose> | undefined;

/** Loads `jose` once. */
export function loadJose(): Promise<Jose> {
  return (loading ??= import('jose'));
}

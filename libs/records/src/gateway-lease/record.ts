/** A gateway's lease (gateways table, key: node name): renewed while it runs; a lapsed or replaced lease orphans its sessions. */
export interface GatewayLease {
  /** Random per process start: a restarted gateway does not own its predecessor's sessions. */
  incarnation: string;
  startedAt: number;
  /** Milliseconds since the epoch after which the gateway counts as dead. */
  until: number;
}

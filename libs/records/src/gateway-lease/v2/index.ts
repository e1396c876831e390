import { avroType, readAvro } from '../../codec';
import type { GatewayLease } from '../record';

/** io.tributary.v2.GatewayLease (schemas/gateway-lease/v2.avsc): the first Avro version, same fields as the JSON v1. */
export const GATEWAY_LEASE_V2 = 'io.tributary.v2.GatewayLease';
export const gatewayLeaseV2Type = avroType('gateway-lease', 2);

export function encodeGatewayLeaseV2(lease: GatewayLease): Buffer {
  return gatewayLeaseV2Type.toBuffer({ incarnation: lease.incarnation, startedAt: lease.startedAt, until: lease.until });
}

export function decodeGatewayLeaseV2(body: Buffer): GatewayLease {
  const a = readAvro<GatewayLease>(gatewayLeaseV2Type, body);
  return { incarnation: a.incarnation, startedAt: a.startedAt, until: a.until };
}
